"""Prepare ScanNet (or the synthetic tree in its layout) for the Detectron2 registrar in `datasets/scannet.py`.

Reads either layout of the official release and writes one prepared tree:
- `exported`: `scans/sceneXXXX_XX/{color/N.jpg, depth/N.png, pose/N.txt, intrinsic/intrinsic_color.txt,
  label-filt/N.png, instance-filt/N.png}` (SensReader export + the `_2d-label-filt` / `_2d-instance-filt`
  archives), with `scannetv2-labels.combined.tsv` and `scannetv2_{train,val}.txt` beside `scans/`.
  label-filt holds 16-bit ScanNet label ids and instance-filt 8-bit object ids, both at colour resolution
  (1296x968 while depth is 640x480).
- `frames25k`: `scannet_frames_25k/sceneXXXX_XX/{color,depth,label,instance,pose}/NNNNNN.*` with
  `intrinsics_color.txt`; labels are already NYU40 ids (8-bit), instances are 16-bit `nyu40 * 1000 + id`.

Output (`out`): `scenes/<scene>/{color/<f>.jpg, depth/<f>.png (uint16 mm), label/<f>.png (uint8 train
ids), record/<f>.json}`, `index_{train,val}.json` (frames), `instances_{train,val}.json` (their instance
annotations), `poses_{train,val}.json` (camera-to-world poses, `datasets.poses`; a missing raw pose file
only leaves its frame without a pose) and `meta.json` (prefix, classes, options, scene splits, pose counts).
Colour, labels and depth are resized to one resolution (default the depth's, 640x480 on ScanNet; nearest for
labels and depth) and the colour intrinsics scaled with them.
"""

import csv
import io
import os
import time
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from datasets import labels as L
from datasets.fileio import (
    REDUCED_COLOR_FLAGS,
    DataError,
    check_depth_png,
    decode_image,
    mask_annotation,
    read_bytes,
    read_depth_png,
    read_json,
    read_label_png,
    write_bytes,
    write_image,
    write_index,
    write_json,
)
from datasets.poses import collect_poses, write_poses
from datasets.prepare.jobs import run_parallel
from datasets.prepare.tree import check_rerun, claim, made_by, remove_temps, unusable

FORMAT_VERSION = 1
SPLITS = ("train", "val")
# Dataset name prefixes, each the folder of its tree under the data root: real ScanNet, and the synthetic trees of
# `make data-synthetic` (labelled fine-tuning scenes) and `make data-synthetic-extra` (an unlabelled pre-training
# pool, labelled scenes for a supervised control), generated with different seeds so no scene is shared.
PREFIXES = ("scannet", "synthetic", "synthetic_pool", "synthetic_control")
# (label, instance) PNG types per layout; a wrong type means the wrong files (e.g. NYU40-converted labels
# under label-filt would otherwise be read as ScanNet ids and silently mislabelled).
LABEL_DTYPES = {"exported": (np.uint16, np.uint8), "frames25k": (np.uint8, np.uint16)}
# Colour and depth of one frame may differ in size (ScanNet: 1296x968 beside 640x480, 0.4 % apart in aspect
# ratio) but not in shape: beyond this relative aspect difference they are not views of one frame.
MAX_ASPECT_DIFFERENCE = 0.01


@dataclass(frozen=True)
class ScanNetOptions:
    """What to prepare and how; None means the default that depends on the input."""

    raw: str  # ScanNet root (holding scans/ and the tsv) or scannet_frames_25k
    out: str  # prepared folder, normally DATA_ROOT/scannet
    layout: str | None = None  # "exported" or "frames25k"; None: detected
    frame_skip: int | None = None  # keep every K-th frame; None: 25 exported, 1 frames25k
    workers: int = 1
    classes: int = 20  # semantic label set, 20 or 40
    resolution: tuple[int, int] | None = None  # (H, W); None: the depth's (640x480 on ScanNet)
    min_instance_fraction: float = 0.0005  # drop instances smaller than this fraction of the image
    label_map: str | None = None  # path of the tsv; None: RAW/scannetv2-labels.combined.tsv
    splits_dir: str | None = None  # folder with scannetv2_{train,val}.txt; None: RAW
    prefix: str | None = None  # dataset name prefix, one of PREFIXES; None: the out folder's name if one, else scannet
    skip_bad: bool = False  # leave out frames with bad input instead of failing


# ---------------------------------------------------------------- raw tree discovery (main process)
def detect_layout(raw: str) -> str:
    if os.path.isdir(os.path.join(raw, "scans")):
        return "exported"
    if _scene_dirs(_frames25k_root(raw)):
        return "frames25k"
    raise DataError(
        f"{raw}: neither a ScanNet export (scans/sceneXXXX_XX/...) nor scannet_frames_25k "
        f"(sceneXXXX_XX/{{color,depth,label,instance}}); check --raw"
    )


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
    lut, known = np.zeros(65536, np.uint8), np.zeros(65536, bool)
    known[0] = True
    try:
        with open(tsv_path, newline="") as f:
            reader = csv.DictReader(f, delimiter="\t")
            if not {"id", "nyu40id"} <= set(reader.fieldnames or ()):
                raise DataError(
                    f"{tsv_path}: header lacks the 'id' and 'nyu40id' columns; use the official "
                    f"{L.SCANNET_TSV_NAME} from the ScanNet release"
                )
            for line, row in enumerate(reader, start=2):
                try:
                    sid, nyu = int(row["id"]), int(row["nyu40id"] or 0)
                except ValueError:
                    raise DataError(
                        f"{tsv_path}:{line}: non-integer id/nyu40id {row['id']!r}/{row['nyu40id']!r}"
                    ) from None
                if not (0 < sid < 65536 and 0 <= nyu <= 40):
                    raise DataError(f"{tsv_path}:{line}: id {sid} or nyu40id {nyu} out of range")
                lut[sid], known[sid] = nyu, True
    except FileNotFoundError:
        raise DataError(
            f"{tsv_path}: missing; put {L.SCANNET_TSV_NAME} from the ScanNet release there (or pass --label-map)"
        ) from None
    return lut, known


def split_path(splits_dir: str, split: str) -> str:
    return os.path.join(splits_dir, f"scannetv2_{split}.txt")


def read_split(splits_dir: str, split: str):
    """The scenes of one split list; a scene listed twice would give every one of its frames twice."""
    path = split_path(splits_dir, split)
    try:
        with open(path) as f:
            names = [s.strip() for s in f]
    except FileNotFoundError:
        raise DataError(
            f"{path}: missing split list; copy scannetv2_{split}.txt from ScanNet's "
            f"Tasks/Benchmark folder there (or pass --splits-dir)"
        ) from None
    first = {}
    for line, name in enumerate(names, 1):
        if name and name in first:
            raise DataError(
                f"{path}:{line}: {name} is listed again (first on line {first[name]}); its frames would "
                f"count twice: remove the repeat"
            )
        first.setdefault(name, line)
    return [s for s in names if s]


def read_splits(splits_dir: str) -> dict:
    """split -> listed scenes; a scene in two splits is an error (evaluation would see training frames)."""
    scenes = {split: read_split(splits_dir, split) for split in SPLITS}
    shared = sorted(set(scenes["train"]) & set(scenes["val"]))
    if shared:
        raise DataError(
            f"{split_path(splits_dir, 'val')}: {len(shared)} scene(s) also in {split_path(splits_dir, 'train')} "
            f"({', '.join(shared[:5])}); evaluation would see training frames: keep each scene in one list"
        )
    return scenes


def _sort_stems(stems):
    return sorted(stems, key=lambda s: (int(s), s) if s.isdigit() else (float("inf"), s))


def read_intrinsics(path: str) -> np.ndarray:
    try:
        k = np.loadtxt(path)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read the 4x4 intrinsics matrix ({e}); re-export the scene") from None
    if k.shape != (4, 4) or not np.isfinite(k).all():
        raise DataError(f"{path}: expected a finite 4x4 matrix, got shape {k.shape}")
    if not (k[0, 0] > 0 and k[1, 1] > 0):  # a zero focal length breaks every later use of the camera
        raise DataError(
            f"{path}: focal lengths fx {k[0, 0]:g} and fy {k[1, 1]:g} px must be positive; re-export the scene"
        )
    return k[:3, :3]


def list_tasks(raw, layout, splits_dir, frame_skip):
    """(tasks, scenes per split, listed scenes absent from the raw tree): one task per selected frame (split,
    scene, stem, colour K, paths...)."""
    root = scenes_root(raw, layout)
    present = set(_scene_dirs(root))
    tasks, scenes, absent = [], {}, []
    label_dir, inst_dir = ("label-filt", "instance-filt") if layout == "exported" else ("label", "instance")
    for split, listed in read_splits(splits_dir).items():
        scenes[split] = [s for s in listed if s in present]
        absent += [s for s in listed if s not in present]
        for scene in scenes[split]:
            sdir = os.path.join(root, scene)
            kpath = (
                os.path.join(sdir, "intrinsic", "intrinsic_color.txt")
                if layout == "exported"
                else os.path.join(sdir, "intrinsics_color.txt")
            )
            k = read_intrinsics(kpath)
            cdir = os.path.join(sdir, "color")
            stems = _sort_stems([f[:-4] for f in os.listdir(cdir) if f.endswith(".jpg")]) if os.path.isdir(cdir) else []
            if not stems:
                raise DataError(
                    f"{cdir}: no colour frames; export the .sens file with SensReader "
                    f"(--export_color_images --export_depth_images ...)"
                )
            for stem in stems[::frame_skip]:
                tasks.append(
                    {
                        "split": split,
                        "scene": scene,
                        "stem": stem,
                        "K": k.tolist(),
                        "color": os.path.join(cdir, stem + ".jpg"),
                        "depth": os.path.join(sdir, "depth", stem + ".png"),
                        "label": os.path.join(sdir, label_dir, stem + ".png"),
                        "instance": os.path.join(sdir, inst_dir, stem + ".png"),
                        "pose": os.path.join(sdir, "pose", stem + ".txt"),
                    }
                )
    return tasks, scenes, absent


# ---------------------------------------------------------------- per-frame work (worker processes)
def out_paths(out, scene, stem):
    base = os.path.join(out, "scenes", scene)
    return {
        "color": os.path.join(base, "color", stem + ".jpg"),
        "depth": os.path.join(base, "depth", stem + ".png"),
        "label": os.path.join(base, "label", stem + ".png"),
        "record": os.path.join(base, "record", stem + ".json"),
    }


def frame_done(out, scene, stem) -> bool:
    """A frame is finished when its record exists: it is written last, after the atomic image writes."""
    paths = out_paths(out, scene, stem)
    return all(os.path.isfile(p) for p in paths.values())


def _missing(path, what):
    hint = {
        "depth": "export depth with SensReader --export_depth_images",
        "label": "unzip the scene's _2d-label-filt.zip (frames25k: label/) into the scene folder",
        "instance": "unzip the scene's _2d-instance-filt.zip (frames25k: instance/) into the scene folder",
    }[what]
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
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_AREA if img.shape[0] >= 2 * hw[0] else cv2.INTER_LINEAR
    return cv2.resize(img, (hw[1], hw[0]), interpolation=interp)


@dataclass
class FrameJob:
    """Converts one frame (a task of `list_tasks`) into the prepared tree; picklable, sent once per worker."""

    out: str
    layout: str
    resolution: tuple | None
    min_instance_fraction: float
    train_lut: np.ndarray  # NYU40 id -> train id
    thing_index: np.ndarray  # NYU40 id -> contiguous thing id, -1 for stuff
    tsv: str | None = None  # exported layout: the label map and its tables
    scannet_to_nyu40: np.ndarray | None = None
    known: np.ndarray | None = None

    @classmethod
    def build(cls, opts: ScanNetOptions, layout: str) -> "FrameJob":
        thing_index = np.full(41, -1, np.int64)
        thing_index[list(L.SCANNET_THING_NYU40_IDS)] = np.arange(len(L.SCANNET_THING_NYU40_IDS))
        job = cls(
            opts.out,
            layout,
            opts.resolution,
            opts.min_instance_fraction,
            L.nyu40_to_train_lut(L.semantic_nyu40_ids(opts.classes)),
            thing_index,
        )
        if layout == "exported":
            job.tsv = opts.label_map or os.path.join(opts.raw, L.SCANNET_TSV_NAME)
            job.scannet_to_nyu40, job.known = read_scannet_to_nyu40(job.tsv)
        return job

    def __call__(self, task) -> dict:
        """Convert one frame; returns its record. Raises DataError naming the offending file. Label ids are
        checked against the tsv after resizing: an id no output pixel keeps cannot mislabel anything."""
        paths = out_paths(self.out, task["scene"], task["stem"])
        for what in ("depth", "label", "instance"):
            _missing(task[what], what)

        depth_bytes = read_bytes(task["depth"])
        depth_hw = check_depth_png(task["depth"], depth_bytes)
        hw = tuple(self.resolution or depth_hw)

        color_bytes = read_bytes(task["color"])
        try:
            cw, ch = Image.open(io.BytesIO(color_bytes.tobytes())).size
        except Exception:  # noqa: BLE001 - any header failure means an unreadable image
            raise DataError(
                f"{task['color']}: truncated or corrupt image (unreadable JPEG header); re-export it"
            ) from None
        aspect = (cw / ch) / (depth_hw[1] / depth_hw[0]) - 1
        if abs(aspect) > MAX_ASPECT_DIFFERENCE:
            raise DataError(
                f"{task['color']} ({cw}x{ch}) and {task['depth']} ({depth_hw[1]}x{depth_hw[0]}): colour "
                f"and depth differ in aspect ratio by {abs(aspect):.1%} (more than "
                f"{MAX_ASPECT_DIFFERENCE:.0%}), so they are not one frame; re-export the scene"
            )
        reduce = _reduce_factor((ch, cw), hw)
        color = decode_image(task["color"], REDUCED_COLOR_FLAGS[reduce], color_bytes)  # BGR, written back as BGR

        label_dtype, inst_dtype = LABEL_DTYPES[self.layout]
        label = read_label_png(task["label"], (label_dtype,))
        inst = read_label_png(task["instance"], (inst_dtype,))
        for name, arr in (("label", label), ("instance", inst)):  # ScanNet's are at colour resolution
            if arr.shape not in ((ch, cw), depth_hw):
                raise DataError(
                    f"{task[name]}: size {arr.shape[1]}x{arr.shape[0]} matches neither the colour "
                    f"image {task['color']} ({cw}x{ch}) nor the depth map "
                    f"({depth_hw[1]}x{depth_hw[0]})"
                )
        label, inst = _resize(label, hw, True), _resize(inst, hw, True)

        if self.layout == "exported":
            unknown = ~self.known[label]
            if unknown.any():
                ids = sorted(set(np.unique(label[unknown]).tolist()))
                raise DataError(
                    f"{task['label']}: ScanNet label ids {ids[:10]} are absent from {self.tsv}; "
                    f"use the tsv of the same ScanNet release"
                )
            nyu40 = self.scannet_to_nyu40[label]
        else:
            if int(label.max(initial=0)) > 40:
                raise DataError(
                    f"{task['label']}: frames25k labels must be NYU40 ids (0..40), found {int(label.max())}"
                )
            nyu40 = label
        semantic = self.train_lut[nyu40]

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
        record = {
            "image_id": f"{task['scene']}_{task['stem']}",
            "scene": task["scene"],
            "frame": task["stem"],
            "height": hw[0],
            "width": hw[1],
            "intrinsics": k.tolist(),
            "annotations": self._instances(inst, nyu40),
        }
        write_json(paths["record"], record)
        return record

    def _instances(self, inst, nyu40):
        """Thing instances as COCO-style annotations. Exported instance ids take the majority NYU40 label of
        their pixels; frames25k instance values already are nyu40 * 1000 + id."""
        min_area = self.min_instance_fraction * inst.size
        thing_index = self.thing_index
        inst_f = np.asfortranarray(inst)  # masks compared in Fortran order feed pycocotools without copies
        anns = []
        if self.layout == "exported":
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
def _recorded_options(opts: ScanNetOptions, layout, prefix, frame_skip) -> dict:
    """The options that shape the output; a rerun with others must not mix into the same tree."""
    return {
        "format": FORMAT_VERSION,
        "prefix": prefix,
        "layout": layout,
        "classes": opts.classes,
        "frame_skip": frame_skip,
        "resolution": list(opts.resolution) if opts.resolution else None,
        "min_instance_fraction": opts.min_instance_fraction,
    }


def prepare(opts: ScanNetOptions) -> dict:
    """Convert every missing frame and write the indexes and `meta.json`; returns a summary dict (frames,
    converted, skipped, errors, seconds, counts per split, prefix). Bad inputs are collected in `errors`."""
    raw, out = opts.raw, opts.out
    layout = opts.layout or detect_layout(raw)
    print(f"prepare_scannet: {raw} is in the '{layout}' layout" + ("" if opts.layout else " (detected)"))
    frame_skip = opts.frame_skip or (25 if layout == "exported" else 1)
    folder = os.path.basename(os.path.normpath(out))
    prefix = opts.prefix or (folder if folder in PREFIXES else "scannet")
    options = _recorded_options(opts, layout, prefix, frame_skip)
    job = FrameJob.build(opts, layout)
    made = made_by(__name__, FORMAT_VERSION, **({"label_map": job.tsv} if job.tsv else {}))
    check_rerun(out, options, made)
    tasks, scenes, absent = list_tasks(raw, layout, opts.splits_dir or raw, frame_skip)
    if absent and not opts.skip_bad:  # a partial dataset is never taken for the whole one
        raise DataError(
            f"{scenes_root(raw, layout)}: {len(absent)} scene(s) of the split lists are missing "
            f"({', '.join(absent[:5])}); add them, or pass --skip-bad to prepare the others"
        )
    if absent:
        print(f"prepare_scannet: {len(absent)} scenes listed in the split files are not under {raw}; skipped")
    if not tasks:
        raise DataError(f"{raw}: no frames of the train/val scenes found")
    meta = {"options": options, "made_by": made, "complete": False, "splits": scenes}
    remove_temps(out)
    claim(out, meta)

    todo = [t for t in tasks if not frame_done(out, t["scene"], t["stem"])]
    t0 = time.perf_counter()
    _, errors = run_parallel(job, todo, opts.workers, desc="scannet frames")
    seconds = time.perf_counter() - t0
    frame_errors = len(errors)

    counts, depths, poses = {}, {}, {"raw": os.path.abspath(scenes_root(raw, layout))}
    for split in SPLITS:
        done = [t for t in tasks if t["split"] == split and frame_done(out, t["scene"], t["stem"])]
        records = [read_json(out_paths(out, t["scene"], t["stem"])["record"]) for t in done]
        write_index(out, split, records)
        counts[split] = len(done)
        depths[split] = [out_paths(out, t["scene"], t["stem"])["depth"] for t in done]
        found, pose_counts, pose_errors = collect_poses(
            (r["image_id"], t["pose"]) for r, t in zip(records, done, strict=True)
        )
        poses[split] = {"file": write_poses(out, split, found), **pose_counts}
        errors += pose_errors
    problem = unusable(out, depths) if not errors or opts.skip_bad else None
    meta.update(complete=(not errors or opts.skip_bad) and problem is None, num_frames=counts, poses=poses)
    write_json(os.path.join(out, "meta.json"), meta)
    if problem:
        raise DataError(problem)
    return {
        "frames": len(tasks),
        "converted": len(todo) - frame_errors,
        "skipped": len(tasks) - len(todo),
        "errors": errors,
        "seconds": seconds,
        "counts": counts,
        "prefix": prefix,
        "poses": poses,
    }
