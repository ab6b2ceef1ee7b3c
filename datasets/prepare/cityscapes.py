"""Prepare Cityscapes for detectron2's loaders plus our depth (`datasets/cityscapes.py`).

Input: the official packages unpacked in one folder: `leftImg8bit/`, `gtFine/` (polygons json, labelIds,
instanceIds), `disparity/` and `camera/` (`*_camera.json` with `extrinsic.baseline` in metres and
`intrinsic.{fx,fy,u0,v0}` in pixels). Disparity PNGs are 16-bit: d = (p - 1) / 256 for p > 0, p = 0 invalid;
depth = baseline * fx / d.

Output (`out`, may equal `raw`): a Cityscapes tree detectron2 reads: `leftImg8bit` (a link to the raw
one), `gtFine/<split>/<city>/` (links to the raw files plus the `*_gtFine_labelTrainIds.png` that
cityscapesscripts' trainIds encoding gives: drawn from the polygons json, or mapped from `labelIds` by its label
table where the json is absent), `depth/<split>/<city>/*_depth.png` (uint16 mm; 0 = invalid or
beyond 65.535 m), `rgbd_{train,val}.json` (image, depth, intrinsics) and `meta.json`."""

import glob
import io
import os
import time
from dataclasses import dataclass

import numpy as np

from datasets.fileio import (
    DataError,
    decode_image,
    png_header,
    read_bytes,
    read_json,
    read_label_png,
    write_bytes,
    write_depth_mm,
    write_image,
    write_json,
)
from datasets.prepare.jobs import run_parallel
from datasets.prepare.tree import check_rerun, claim, made_by, remove_temps, unusable

FORMAT_VERSION = 1
SPLITS = ("train", "val")


@dataclass(frozen=True)
class CityscapesOptions:
    raw: str  # Cityscapes root with leftImg8bit/ gtFine/ disparity/ camera/
    out: str  # prepared folder, normally DATA_ROOT/cityscapes (may be `raw`)
    workers: int = 1


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
    """(baseline, K) of a `*_camera.json`; a baseline or focal length that is not positive would turn every
    disparity into zero or negative depth, so it is an error."""
    cam = read_json(path)
    try:
        baseline, k = float(cam["extrinsic"]["baseline"]), cam["intrinsic"]
        fx, fy, u0, v0 = (float(k[n]) for n in ("fx", "fy", "u0", "v0"))
    except (KeyError, TypeError, ValueError):
        raise DataError(
            f"{path}: expected extrinsic.baseline and intrinsic.fx/fy/u0/v0 (a Cityscapes camera json)"
        ) from None
    if not (np.isfinite([baseline, fx, fy]).all() and baseline > 0 and fx > 0 and fy > 0):
        raise DataError(
            f"{path}: baseline {baseline} m, fx {fx} px and fy {fy} px must be positive; the camera "
            f"file is damaged: re-extract camera_trainvaltest.zip"
        )
    return baseline, [[fx, 0.0, u0], [0.0, fy, v0], [0.0, 0.0, 1.0]]


def _train_id_table() -> np.ndarray:
    """labelId -> trainId lookup from cityscapesscripts' label table; ids without a train id map to 255."""
    from cityscapesscripts.helpers.labels import labels

    table = np.full(256, 255, np.uint8)
    for lab in labels:
        if 0 <= lab.id < 256 and 0 <= lab.trainId < 255:
            table[lab.id] = lab.trainId
    return table


def write_train_ids(gt_raw, base, dst, raw):
    """`dst` from the polygons json as cityscapesscripts' json2labelImg draws it, or, when the json is not
    there, from the `labelIds` PNG through the same label table."""
    polygons = os.path.join(gt_raw, base + "_gtFine_polygons.json")
    label_ids = os.path.join(gt_raw, base + "_gtFine_labelIds.png")
    if os.path.isfile(polygons):
        from cityscapesscripts.helpers.annotation import Annotation
        from cityscapesscripts.preparation.json2labelImg import createLabelImage

        ann = Annotation()
        try:
            ann.fromJsonFile(polygons)
            img = createLabelImage(ann, "trainIds")
        except Exception as e:  # noqa: BLE001 - report any parse failure with the file name
            raise DataError(f"{polygons}: cannot convert polygons to trainIds ({e})") from None
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        write_bytes(dst, buf.getvalue())
    elif os.path.isfile(label_ids):
        write_image(dst, _train_id_table()[read_label_png(label_ids, (np.uint8,))])
    else:
        raise DataError(
            f"{polygons}: missing, and so is {os.path.basename(label_ids)}; unpack gtFine_trainvaltest.zip into {raw}"
        )


def disparity_to_depth(disp_png: np.ndarray, baseline: float, fx: float) -> np.ndarray:
    """Metres; 0 where the disparity is invalid (p = 0) or zero (p = 1)."""
    d = (disp_png.astype(np.float64) - 1.0) / 256.0
    with np.errstate(divide="ignore"):
        return np.where(d > 0, baseline * fx / np.where(d > 0, d, 1.0), 0.0)


@dataclass(frozen=True)
class ImageJob:
    """Links the gtFine files, writes labelTrainIds and depth for one (split, city, base); picklable."""

    raw: str
    out: str

    def __call__(self, item) -> dict:
        return prepare_image(self.raw, self.out, *item)


def prepare_image(raw, out, split, city, base) -> dict:
    """Link the gtFine files, write labelTrainIds and depth for one image; returns its rgbd record."""
    gt_raw, gt_out = os.path.join(raw, "gtFine", split, city), os.path.join(out, "gtFine", split, city)
    if gt_raw != gt_out:
        for f in os.listdir(gt_raw) if os.path.isdir(gt_raw) else ():
            if f.startswith(base + "_gtFine_") and not f.endswith("_labelTrainIds.png"):
                _link(os.path.join(gt_raw, f), os.path.join(gt_out, f))
    train_ids = os.path.join(gt_out, base + "_gtFine_labelTrainIds.png")
    if not os.path.isfile(train_ids):
        write_train_ids(gt_raw, base, train_ids, raw)

    image = os.path.join(raw, "leftImg8bit", split, city, base + "_leftImg8bit.png")
    disp_path = os.path.join(raw, "disparity", split, city, base + "_disparity.png")
    cam_path = os.path.join(raw, "camera", split, city, base + "_camera.json")
    depth_path = os.path.join(out, "depth", split, city, base + "_depth.png")
    size = png_header(image, read_bytes(image))  # CRC of every chunk: a truncated download is named here
    if not os.path.isfile(disp_path):
        raise DataError(f"{disp_path}: missing; unpack disparity_trainvaltest.zip into {raw}")
    baseline, k = read_camera(cam_path)
    if not os.path.isfile(depth_path):
        disp = decode_image(disp_path)
        if disp.dtype != np.uint16 or disp.ndim != 2:
            raise DataError(
                f"{disp_path}: disparity must be a single-channel 16-bit PNG, got {disp.dtype} "
                f"with shape {disp.shape}; re-extract disparity_trainvaltest.zip"
            )
        write_depth_mm(depth_path, disparity_to_depth(disp, baseline, k[0][0]))
    h, w = _png_size(depth_path)
    if (h, w) != (size["height"], size["width"]):
        raise DataError(
            f"{image}: {size['width']}x{size['height']} but its disparity {disp_path} is {w}x{h}; "
            f"re-extract both packages"
        )
    return {
        "file_name": os.path.relpath(os.path.join(out, "leftImg8bit", split, city, base + "_leftImg8bit.png"), out),
        "depth_file_name": os.path.relpath(depth_path, out),
        "image_id": base,
        "height": h,
        "width": w,
        "intrinsics": k,
    }


def _png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    return int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big")


def prepare(opts: CityscapesOptions) -> dict:
    """Labels and depth for every image of train and val, the rgbd indexes and `meta.json`; returns a summary
    dict (errors, counts per split, seconds)."""
    raw, out = os.path.abspath(opts.raw), os.path.abspath(opts.out)
    for what in ("gtFine", "disparity", "camera"):
        if not os.path.isdir(os.path.join(raw, what)):
            raise DataError(f"{os.path.join(raw, what)}: missing; unpack the Cityscapes {what} package into {raw}")
    items = [(split, city, base) for split in SPLITS for city, base in list_images(raw, split)]
    if raw != out:
        _link(os.path.join(raw, "leftImg8bit"), os.path.join(out, "leftImg8bit"))
    options, made = {"format": FORMAT_VERSION}, made_by(__name__, FORMAT_VERSION)
    check_rerun(out, options, made)
    remove_temps(out)
    claim(out, {"options": options, "made_by": made, "complete": False, "raw": raw})
    t0 = time.perf_counter()
    records, errors = run_parallel(ImageJob(raw, out), items, opts.workers, desc="cityscapes images")
    counts, depths = {}, {}
    for split in SPLITS:
        recs = [r for (s, _, _), r in zip(items, records, strict=True) if s == split and r is not None]
        write_json(os.path.join(out, f"rgbd_{split}.json"), recs)
        counts[split] = len(recs)
        depths[split] = [os.path.join(out, r["depth_file_name"]) for r in recs]
    problem = None if errors else unusable(out, depths)
    write_json(
        os.path.join(out, "meta.json"),
        {
            "options": options,
            "made_by": made,
            "complete": not errors and problem is None,
            "raw": raw,
            "num_images": counts,
        },
    )
    if problem:
        raise DataError(problem)
    return {"errors": errors, "counts": counts, "seconds": time.perf_counter() - t0}
