"""Prepare Cityscapes for detectron2's loaders plus our depth (`datasets/cityscapes.py`).

Input: the official packages unpacked in one folder: `leftImg8bit/`, `gtFine/` (polygons json, labelIds,
instanceIds), `disparity/` and `camera/` (`*_camera.json` with `extrinsic.baseline` in metres and
`intrinsic.{fx,fy,u0,v0}` in pixels). Disparity PNGs are 16-bit: d = (p - 1) / 256 for p > 0, p = 0 invalid;
depth = baseline * fx / d.

Output (`--out`, may equal `--raw`): a Cityscapes tree detectron2 reads: `leftImg8bit` (a link to the raw
one), `gtFine/<split>/<city>/` (links to the raw files plus the `*_gtFine_labelTrainIds.png` that
cityscapesscripts' trainIds encoding gives), `depth/<split>/<city>/*_depth.png` (uint16 mm; 0 = invalid or
beyond 65.535 m), `rgbd_{train,val}.json` (image, depth, intrinsics) and `meta.json`."""
import argparse
import glob
import io
import os
import sys
import time

import numpy as np

from datasets.fileio import DataError, decode_image, read_json, write_bytes, write_depth_mm, write_json
from datasets.jobs import run_parallel

FORMAT_VERSION = 1
SPLITS = ("train", "val")


def _link(src, dst):
    """Make dst point at src (absolute symlink), replacing a stale link; an existing real file is kept."""
    if os.path.islink(dst):
        if os.readlink(dst) == src:
            return
        os.unlink(dst)
    elif os.path.exists(dst):
        return
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    os.symlink(src, dst)


def list_images(raw, split):
    """(city, base) of every leftImg8bit image of a split; base is `<city>_<seq>_<frame>`."""
    folder = os.path.join(raw, "leftImg8bit", split)
    if not os.path.isdir(folder):
        raise DataError(f"{folder}: missing; unpack leftImg8bit_trainvaltest.zip into {raw}")
    files = sorted(glob.glob(os.path.join(folder, "*", "*_leftImg8bit.png")))
    if not files:
        raise DataError(f"{folder}: no *_leftImg8bit.png images")
    return [(os.path.basename(os.path.dirname(f)), os.path.basename(f)[: -len("_leftImg8bit.png")]) for f in files]


def read_camera(path):
    cam = read_json(path)
    try:
        baseline, k = float(cam["extrinsic"]["baseline"]), cam["intrinsic"]
        fx, fy, u0, v0 = (float(k[n]) for n in ("fx", "fy", "u0", "v0"))
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{path}: expected extrinsic.baseline and intrinsic.fx/fy/u0/v0 (cityscapes camera json)")
    return baseline, [[fx, 0.0, u0], [0.0, fy, v0], [0.0, 0.0, 1.0]]


def disparity_to_depth(disp_png: np.ndarray, baseline: float, fx: float) -> np.ndarray:
    """Metres; 0 where the disparity is invalid (p = 0) or zero (p = 1)."""
    d = (disp_png.astype(np.float64) - 1.0) / 256.0
    with np.errstate(divide="ignore"):
        return np.where(d > 0, baseline * fx / np.where(d > 0, d, 1.0), 0.0)


_CFG = {}


def init_worker(cfg):
    _CFG.clear()
    _CFG.update(cfg)


def prepare_image(item):
    """Link the gtFine files, write labelTrainIds and depth for one image; returns its rgbd record."""
    from cityscapesscripts.helpers.annotation import Annotation
    from cityscapesscripts.preparation.json2labelImg import createLabelImage

    split, city, base = item
    raw, out = _CFG["raw"], _CFG["out"]
    gt_raw, gt_out = os.path.join(raw, "gtFine", split, city), os.path.join(out, "gtFine", split, city)
    polygons = os.path.join(gt_raw, base + "_gtFine_polygons.json")
    if not os.path.isfile(polygons):
        raise DataError(f"{polygons}: missing; unpack gtFine_trainvaltest.zip into {raw}")
    if gt_raw != gt_out:
        for f in os.listdir(gt_raw):
            if f.startswith(base + "_gtFine_") and not f.endswith("_labelTrainIds.png"):
                _link(os.path.join(gt_raw, f), os.path.join(gt_out, f))
    train_ids = os.path.join(gt_out, base + "_gtFine_labelTrainIds.png")
    if not os.path.isfile(train_ids):
        ann = Annotation()
        try:
            ann.fromJsonFile(polygons)
            img = createLabelImage(ann, "trainIds")
        except Exception as e:  # noqa: BLE001 - report any parse failure with the file name
            raise DataError(f"{polygons}: cannot convert polygons to trainIds ({e})") from None
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        write_bytes(train_ids, buf.getvalue())

    image = os.path.join(out, "leftImg8bit", split, city, base + "_leftImg8bit.png")
    disp_path = os.path.join(raw, "disparity", split, city, base + "_disparity.png")
    cam_path = os.path.join(raw, "camera", split, city, base + "_camera.json")
    depth_path = os.path.join(out, "depth", split, city, base + "_depth.png")
    if not os.path.isfile(disp_path):
        raise DataError(f"{disp_path}: missing; unpack disparity_trainvaltest.zip into {raw}")
    baseline, k = read_camera(cam_path)
    if not os.path.isfile(depth_path):
        disp = decode_image(disp_path)
        if disp.dtype != np.uint16 or disp.ndim != 2:
            raise DataError(f"{disp_path}: disparity must be a single-channel 16-bit PNG, got {disp.dtype} "
                            f"with shape {disp.shape}; re-extract disparity_trainvaltest.zip")
        write_depth_mm(depth_path, disparity_to_depth(disp, baseline, k[0][0]))
    h, w = _png_size(depth_path)
    return {"file_name": os.path.relpath(image, out), "depth_file_name": os.path.relpath(depth_path, out),
            "image_id": base, "height": h, "width": w, "intrinsics": k}


def _png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    return int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big")


def prepare(args):
    raw, out = os.path.abspath(args.raw), os.path.abspath(args.out)
    for what in ("gtFine", "disparity", "camera"):
        if not os.path.isdir(os.path.join(raw, what)):
            raise DataError(f"{os.path.join(raw, what)}: missing; unpack the Cityscapes {what} package into {raw}")
    items = [(split, city, base) for split in SPLITS for city, base in list_images(raw, split)]
    if raw != out:
        _link(os.path.join(raw, "leftImg8bit"), os.path.join(out, "leftImg8bit"))
    meta_path = os.path.join(out, "meta.json")
    meta = {"options": {"format": FORMAT_VERSION}, "complete": False, "raw": raw}
    if not os.path.exists(meta_path):  # claim the folder; a finished one stays usable while rerunning
        write_json(meta_path, meta)
    t0 = time.perf_counter()
    records, errors = run_parallel(prepare_image, items, args.workers, init_worker, ({"raw": raw, "out": out},),
                                   desc="cityscapes images")
    counts = {}
    for split in SPLITS:
        recs = [r for (s, _, _), r in zip(items, records) if s == split and r is not None]
        write_json(os.path.join(out, f"rgbd_{split}.json"), recs)
        counts[split] = len(recs)
    meta.update(complete=not errors, num_images=counts)
    write_json(meta_path, meta)
    return {"errors": errors, "counts": counts, "seconds": time.perf_counter() - t0}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--raw", required=True, help="Cityscapes root with leftImg8bit/ gtFine/ disparity/ camera/")
    p.add_argument("--out", required=True, help="prepared folder, normally DATA_ROOT/cityscapes (may be --raw)")
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 1) - 1))
    args = p.parse_args(argv)
    try:
        res = prepare(args)
    except DataError as e:
        print(f"prepare_cityscapes: error: {e}", file=sys.stderr)
        return 1
    for e in res["errors"]:
        print(f"prepare_cityscapes: bad input: {e}", file=sys.stderr)
    print(f"prepare_cityscapes: train {res['counts']['train']} / val {res['counts']['val']} images with "
          f"labelTrainIds and depth in {args.out} ({res['seconds']:.1f} s, {len(res['errors'])} bad)")
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
