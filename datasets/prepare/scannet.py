"""Prepare ScanNet (or the synthetic tree in its layout) for the Detectron2 registrars in `datasets/scannet.py`.

Reads either layout of the official release and writes one prepared tree:
- `exported`: `scans/sceneXXXX_XX/{color/N.jpg, depth/N.png, pose/N.txt, intrinsic/intrinsic_color.txt,
  label-filt/N.png, instance-filt/N.png}` (SensReader export + the `_2d-label-filt` / `_2d-instance-filt`
  archives), with `scannetv2-labels.combined.tsv` and `scannetv2_{train,val}.txt` beside `scans/`.
  label-filt holds 16-bit ScanNet label ids and instance-filt 8-bit object ids, both at colour resolution
  (1296x968 while depth is 640x480).
- `frames25k`: `scannet_frames_25k/sceneXXXX_XX/{color,depth,label,instance,pose}/NNNNNN.*` with
  `intrinsics_color.txt`; labels are already NYU40 ids (8-bit), instances are 16-bit `nyu40 * 1000 + id`.

Output (`--out`): `scenes/<scene>/{color/<f>.jpg, depth/<f>.png (uint16 mm), label/<f>.png (uint8 train
ids), record/<f>.json}`, `index_{train,val}.json` (frames), `instances_{train,val}.json` (their instance
annotations) and `meta.json` (prefix, classes, options, scene splits). Colour, labels and depth are resized to
one resolution (default the depth's, 640x480 on ScanNet; nearest for labels and depth) and the colour
intrinsics scaled with them.
"""
import argparse
import io
import os
import sys
import time

import cv2
import numpy as np
from PIL import Image

from datasets import labels as L
from datasets.fileio import (DataError, check_depth_png, decode_image, mask_annotation, read_bytes,
                             read_depth_png, read_json, read_label_png, write_bytes, write_image, write_index,
                             write_json)
from datasets.jobs import run_parallel

FORMAT_VERSION = 1
SPLITS = ("train", "val")
# (label, instance) PNG types per layout; a wrong type means the wrong files (e.g. NYU40-converted labels
# under label-filt would otherwise be read as ScanNet ids and silently mislabelled).
LABEL_DTYPES = {"exported": (np.uint16, np.uint8), "frames25k": (np.uint8, np.uint16)}
TSV_NAME = "scannetv2-labels.combined.tsv"


# ---------------------------------------------------------------- raw tree discovery (main process)
def detect_layout(raw: str) -> str:
    if os.path.isdir(os.path.join(raw, "scans")):
        return "exported"
    if _scene_dirs(_frames25k_root(raw)):
        return "frames25k"
    raise DataError(f"{raw}: neither a ScanNet export (scans/sceneXXXX_XX/...) nor scannet_frames_25k "
                    f"(sceneXXXX_XX/{{color,depth,label,instance}}); check --raw")


def _frames25k_root(raw):
    sub = os.path.join(raw, "scannet_frames_25k")
    return sub if os.path.isdir(sub) else raw


def _scene_dirs(folder):
    if not os.path.isdir(folder):
        return []
    return sorted(d for d in os.listdir(folder) if d.startswith("scene") and os.path.isdir(os.path.join(folder, d)))


def scenes_root(raw: str, layout: str) -> str:
    return os.path.join(raw, "scans") if layout == "exported" else _frames25k_root(raw)


def read_scannet_to_nyu40(tsv_path: str):
    """(lut, known): uint8 table ScanNet label id -> NYU40 id over all 16-bit values, and which ids the tsv
    defines (id 0, unannotated, is known and maps to 0). Columns are looked up by header name."""
    import csv

    lut, known = np.zeros(65536, np.uint8), np.zeros(65536, bool)
    known[0] = True
    try:
        with open(tsv_path, newline="") as f:
            reader = csv.DictReader(f, delimiter="\t")
            if not {"id", "nyu40id"} <= set(reader.fieldnames or ()):
                raise DataError(f"{tsv_path}: header lacks the 'id' and 'nyu40id' columns; use the official "
                                f"{TSV_NAME} from the ScanNet release")
            for line, row in enumerate(reader, start=2):
                try:
                    sid, nyu = int(row["id"]), int(row["nyu40id"] or 0)
                except ValueError:
                    raise DataError(f"{tsv_path}:{line}: non-integer id/nyu40id {row['id']!r}/{row['nyu40id']!r}")
                if not (0 < sid < 65536 and 0 <= nyu <= 40):
                    raise DataError(f"{tsv_path}:{line}: id {sid} or nyu40id {nyu} out of range")
                lut[sid], known[sid] = nyu, True
    except FileNotFoundError:
        raise DataError(f"{tsv_path}: missing; put {TSV_NAME} from the ScanNet release there "
                        f"(or pass --label-map)") from None
    return lut, known


def read_split(splits_dir: str, split: str):
    path = os.path.join(splits_dir, f"scannetv2_{split}.txt")
    try:
        with open(path) as f:
            return [s.strip() for s in f if s.strip()]
    except FileNotFoundError:
        raise DataError(f"{path}: missing split list; copy scannetv2_{split}.txt from ScanNet's "
                        f"Tasks/Benchmark folder there (or pass --splits-dir)") from None


def _sort_stems(stems):
    return sorted(stems, key=lambda s: (int(s), s) if s.isdigit() else (float("inf"), s))


def read_intrinsics(path: str) -> np.ndarray:
    try:
        k = np.loadtxt(path)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read the 4x4 intrinsics matrix ({e}); re-export the scene") from None
    if k.shape != (4, 4) or not np.isfinite(k).all():
        raise DataError(f"{path}: expected a finite 4x4 matrix, got shape {k.shape}")
    return k[:3, :3]


def list_tasks(raw, layout, splits_dir, frame_skip):
    """One task per selected frame: (split, scene, stem, colour K, paths...). Scenes missing from the raw
    tree are reported, not fatal (partial downloads are common)."""
    root = scenes_root(raw, layout)
    present = set(_scene_dirs(root))
    tasks, scenes, absent = [], {}, 0
    label_dir, inst_dir = ("label-filt", "instance-filt") if layout == "exported" else ("label", "instance")
    for split in SPLITS:
        listed = read_split(splits_dir, split)
        scenes[split] = [s for s in listed if s in present]
        absent += len(listed) - len(scenes[split])
        for scene in scenes[split]:
            sdir = os.path.join(root, scene)
            kpath = os.path.join(sdir, "intrinsic", "intrinsic_color.txt") if layout == "exported" else \
                os.path.join(sdir, "intrinsics_color.txt")
            k = read_intrinsics(kpath)
            cdir = os.path.join(sdir, "color")
            stems = _sort_stems([f[:-4] for f in os.listdir(cdir) if f.endswith(".jpg")]) if os.path.isdir(cdir) \
                else []
            if not stems:
                raise DataError(f"{cdir}: no colour frames; export the .sens file with SensReader "
                                f"(--export_color_images --export_depth_images ...)")
            for stem in stems[::frame_skip]:
                tasks.append({"split": split, "scene": scene, "stem": stem, "K": k.tolist(),
                              "color": os.path.join(cdir, stem + ".jpg"),
                              "depth": os.path.join(sdir, "depth", stem + ".png"),
                              "label": os.path.join(sdir, label_dir, stem + ".png"),
                              "instance": os.path.join(sdir, inst_dir, stem + ".png")})
    return tasks, scenes, absent


# ---------------------------------------------------------------- per-frame work (worker processes)
_CFG = {}


def init_worker(cfg):
    _CFG.clear()
    _CFG.update(cfg)


def out_paths(out, scene, stem):
    base = os.path.join(out, "scenes", scene)
    return {"color": os.path.join(base, "color", stem + ".jpg"), "depth": os.path.join(base, "depth", stem + ".png"),
            "label": os.path.join(base, "label", stem + ".png"), "record": os.path.join(base, "record", stem + ".json")}


def frame_done(out, scene, stem) -> bool:
    """A frame is finished when its record exists: it is written last, after the atomic image writes."""
    paths = out_paths(out, scene, stem)
    return all(os.path.isfile(p) for p in paths.values())


def _missing(path, what):
    hint = {"depth": "export depth with SensReader --export_depth_images",
            "label": "unzip the scene's _2d-label-filt.zip (frames25k: label/) into the scene folder",
            "instance": "unzip the scene's _2d-instance-filt.zip (frames25k: instance/) into the scene folder"}[what]
    if not os.path.isfile(path):
        raise DataError(f"{path}: {what} file is missing; {hint}")


def _reduce_factor(src_hw, dst_hw):
    for f in (8, 4, 2):
        if -(-src_hw[0] // f) >= dst_hw[0] and -(-src_hw[1] // f) >= dst_hw[1]:
            return f
    return 1


def _resize(img, hw, nearest):
    if img.shape[:2] == tuple(hw):
        return img
    interp = cv2.INTER_NEAREST if nearest else \
        cv2.INTER_AREA if img.shape[0] >= 2 * hw[0] else cv2.INTER_LINEAR
    return cv2.resize(img, (hw[1], hw[0]), interpolation=interp)


def prepare_frame(task):
    """Convert one frame; returns its record. Raises DataError naming the offending file. Label ids are
    checked against the tsv after resizing: an id no output pixel keeps cannot mislabel anything."""
    cfg, out = _CFG, _CFG["out"]
    paths = out_paths(out, task["scene"], task["stem"])
    for what in ("depth", "label", "instance"):
        _missing(task[what], what)

    depth_bytes = read_bytes(task["depth"])
    depth_hw = check_depth_png(task["depth"], depth_bytes)
    hw = tuple(cfg["resolution"] or depth_hw)

    color_bytes = read_bytes(task["color"])
    try:
        cw, ch = Image.open(io.BytesIO(color_bytes.tobytes())).size
    except Exception:  # noqa: BLE001 - any header failure means an unreadable image
        raise DataError(f"{task['color']}: truncated or corrupt image (unreadable JPEG header); re-export it")
    reduce = _reduce_factor((ch, cw), hw)
    flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
             8: cv2.IMREAD_REDUCED_COLOR_8}[reduce]
    color = decode_image(task["color"], flags, color_bytes)  # BGR, written back as BGR

    label_dtype, inst_dtype = LABEL_DTYPES[cfg["layout"]]
    label = read_label_png(task["label"], (label_dtype,))
    inst = read_label_png(task["instance"], (inst_dtype,))
    for name, arr in (("label", label), ("instance", inst)):  # ScanNet's are at colour resolution
        if arr.shape not in ((ch, cw), depth_hw):
            raise DataError(f"{task[name]}: size {arr.shape[1]}x{arr.shape[0]} matches neither the colour image "
                            f"{task['color']} ({cw}x{ch}) nor the depth map ({depth_hw[1]}x{depth_hw[0]})")
    label, inst = _resize(label, hw, True), _resize(inst, hw, True)

    if cfg["layout"] == "exported":
        unknown = ~cfg["known"][label]
        if unknown.any():
            ids = sorted(set(np.unique(label[unknown]).tolist()))
            raise DataError(f"{task['label']}: ScanNet label ids {ids[:10]} are absent from {cfg['tsv']}; "
                            f"use the tsv of the same ScanNet release")
        nyu40 = cfg["scannet_to_nyu40"][label]
    else:
        if int(label.max(initial=0)) > 40:
            raise DataError(f"{task['label']}: frames25k labels must be NYU40 ids (0..40), "
                            f"found {int(label.max())}")
        nyu40 = label
    semantic = cfg["train_lut"][nyu40]

    if color.shape[:2] == hw and reduce == 1:
        write_bytes(paths["color"], color_bytes.tobytes())
    else:
        write_image(paths["color"], _resize(color, hw, False))
    if depth_hw == hw:  # the common case: copy the validated bytes, no decode
        write_bytes(paths["depth"], depth_bytes.tobytes())
    else:
        write_image(paths["depth"], _resize(read_depth_png(task["depth"], depth_bytes), hw, True))
    write_image(paths["label"], semantic)

    k = np.asarray(task["K"], np.float64)
    k[0] *= hw[1] / cw
    k[1] *= hw[0] / ch
    record = {"image_id": f"{task['scene']}_{task['stem']}", "scene": task["scene"], "frame": task["stem"],
              "height": hw[0], "width": hw[1], "intrinsics": k.tolist(),
              "annotations": _instances(inst, nyu40, cfg)}
    write_json(paths["record"], record)
    return record


def _instances(inst, nyu40, cfg):
    """Thing instances as COCO-style annotations. Exported instance ids take the majority NYU40 label of
    their pixels; frames25k instance values already are nyu40 * 1000 + id."""
    min_area = cfg["min_instance_fraction"] * inst.size
    thing_index = cfg["thing_index"]
    inst_f = np.asfortranarray(inst)  # masks compared in Fortran order feed pycocotools without copies
    anns = []
    if cfg["layout"] == "exported":
        hist = np.bincount(inst.astype(np.int64).ravel() * 256 + nyu40.ravel(), minlength=256 * 256)
        hist = hist.reshape(256, 256)
        for iid in np.nonzero(hist[1:].sum(1))[0] + 1:
            votes = hist[iid, 1:41]
            cls = int(votes.argmax()) + 1 if votes.any() else 0
            if thing_index[cls] >= 0 and hist[iid].sum() >= min_area:
                anns.append(mask_annotation(inst_f == iid, thing_index[cls]))
    else:
        counts = np.bincount(inst.ravel(), minlength=65536)
        for value in np.nonzero(counts)[0]:
            cls = int(value) // 1000
            if value % 1000 and cls <= 40 and thing_index[cls] >= 0 and counts[value] >= min_area:
                anns.append(mask_annotation(inst_f == value, thing_index[cls]))
    return anns


# ---------------------------------------------------------------- driver
def _options(args, layout, prefix, frame_skip):
    return {"format": FORMAT_VERSION, "prefix": prefix, "layout": layout, "classes": args.classes,
            "frame_skip": frame_skip, "resolution": args.resolution,
            "min_instance_fraction": args.min_instance_fraction}


def _check_resume(out, options):
    meta_path = os.path.join(out, "meta.json")
    if not os.path.exists(meta_path):
        return
    old = read_json(meta_path).get("options")
    if old != options:
        raise DataError(f"{meta_path}: this folder was prepared with options {old}, now {options}; "
                        f"use a new --out or delete the folder")


def build_config(args, layout, raw):
    cfg = {"out": args.out, "layout": layout, "resolution": args.resolution,
           "min_instance_fraction": args.min_instance_fraction,
           "train_lut": L.nyu40_to_train_lut(L.semantic_nyu40_ids(args.classes)),
           "thing_index": np.full(41, -1, np.int64)}
    cfg["thing_index"][list(L.SCANNET_THING_NYU40_IDS)] = np.arange(len(L.SCANNET_THING_NYU40_IDS))
    if layout == "exported":
        cfg["tsv"] = args.label_map or os.path.join(raw, TSV_NAME)
        cfg["scannet_to_nyu40"], cfg["known"] = read_scannet_to_nyu40(cfg["tsv"])
    return cfg


def prepare(args) -> dict:
    raw, out = args.raw, args.out
    layout = args.layout or detect_layout(raw)
    print(f"prepare_scannet: {raw} is in the '{layout}' layout" + ("" if args.layout else " (detected)"))
    frame_skip = args.frame_skip or (25 if layout == "exported" else 1)
    folder = os.path.basename(os.path.normpath(out))
    prefix = args.prefix or (folder if folder in ("scannet", "synthetic") else "scannet")
    options = _options(args, layout, prefix, frame_skip)
    _check_resume(out, options)
    cfg = build_config(args, layout, raw)
    tasks, scenes, absent = list_tasks(raw, layout, args.splits_dir or raw, frame_skip)
    if absent:
        print(f"prepare_scannet: {absent} scenes listed in the split files are not under {raw}; skipped")
    if not tasks:
        raise DataError(f"{raw}: no frames of the train/val scenes found")
    meta = {"options": options, "complete": False, "splits": scenes}
    if not os.path.exists(os.path.join(out, "meta.json")):  # claim the folder; a finished one stays usable
        write_json(os.path.join(out, "meta.json"), meta)

    todo = [t for t in tasks if not frame_done(out, t["scene"], t["stem"])]
    t0 = time.perf_counter()
    _, errors = run_parallel(prepare_frame, todo, args.workers, init_worker, (cfg,), desc="scannet frames")
    seconds = time.perf_counter() - t0

    counts = {}
    for split in SPLITS:
        records = []
        for t in tasks:
            if t["split"] == split and frame_done(out, t["scene"], t["stem"]):
                records.append(read_json(out_paths(out, t["scene"], t["stem"])["record"]))
        write_index(out, split, records)
        counts[split] = len(records)
    meta.update(complete=not errors or args.skip_bad, num_frames=counts)
    write_json(os.path.join(out, "meta.json"), meta)
    return {"frames": len(tasks), "converted": len(todo) - len(errors), "skipped": len(tasks) - len(todo),
            "errors": errors, "seconds": seconds, "counts": counts, "prefix": prefix}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--raw", required=True, help="ScanNet root (holding scans/ and the tsv) or scannet_frames_25k")
    p.add_argument("--out", required=True, help="prepared folder, normally DATA_ROOT/scannet")
    p.add_argument("--layout", choices=("exported", "frames25k"), help="default: detected")
    p.add_argument("--frame-skip", type=int, help="keep every K-th frame (default 25 exported, 1 frames25k)")
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 1) - 1))
    p.add_argument("--classes", type=int, choices=(20, 40), default=20, help="semantic label set")
    p.add_argument("--resolution", type=int, nargs=2, metavar=("H", "W"), help="default: the depth's (640x480)")
    p.add_argument("--min-instance-fraction", type=float, default=0.0005,
                   help="drop instances smaller than this fraction of the image (0.0005 = 154 px at 640x480)")
    p.add_argument("--label-map", help=f"path of {TSV_NAME} (default RAW/{TSV_NAME})")
    p.add_argument("--splits-dir", help="folder with scannetv2_{train,val}.txt (default RAW)")
    p.add_argument("--prefix", choices=("scannet", "synthetic"), help="dataset name prefix (default from --out)")
    p.add_argument("--skip-bad", action="store_true", help="leave out frames with bad input instead of failing")
    args = p.parse_args(argv)
    if args.frame_skip is not None and args.frame_skip < 1:
        p.error("--frame-skip must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        res = prepare(args)
    except DataError as e:
        print(f"prepare_scannet: error: {e}", file=sys.stderr)
        return 1
    for e in res["errors"][:50]:
        print(f"prepare_scannet: bad input: {e}", file=sys.stderr)
    fps = res["converted"] / res["seconds"] if res["seconds"] > 0 else 0.0
    print(f"prepare_scannet: {res['prefix']} train {res['counts']['train']} / val {res['counts']['val']} frames "
          f"in {args.out} ({res['converted']} converted at {fps:.1f} frames/s, {res['skipped']} already done, "
          f"{len(res['errors'])} bad)")
    if res["errors"] and not args.skip_bad:
        print("prepare_scannet: fix the files above (or pass --skip-bad) and rerun; finished frames are kept",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
