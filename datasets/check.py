"""One pass over a registered dataset: every file exists and decodes, sizes agree, values are in range, no image
is listed twice or shared with the train/val partner split.
`tools.check_dataset` is its command line."""

from collections import Counter

import numpy as np
from pycocotools import mask as mask_util

from datasets.fileio import DataError, read_depth_png, read_label_png, read_rgb
from datasets.poses import pose_problem

# Depth medians outside this band (mm) suggest metres stored as mm or a wrong scale.
PLAUSIBLE_MEDIAN_MM = (100, 80000)


def _decode_segmentation(seg, h, w):
    if isinstance(seg, dict):
        rle = mask_util.frPyObjects(seg, h, w) if isinstance(seg["counts"], list) else seg
        return mask_util.decode(rle)
    return mask_util.decode(mask_util.merge(mask_util.frPyObjects(seg, h, w)))


def check_dict(d, meta, stats):
    """Problems of one dataset dict as (file, message); updates the running statistics."""
    problems = []
    try:
        img = read_rgb(d["file_name"])
    except DataError as e:
        return [(d["file_name"], str(e).split(": ", 1)[-1])]
    h, w = img.shape[:2]
    if (h, w) != (d["height"], d["width"]):
        problems.append((d["file_name"], f"image is {w}x{h}, the dataset dict says {d['width']}x{d['height']}"))
    if "depth_file_name" in d:
        try:
            depth = read_depth_png(d["depth_file_name"])
        except DataError as e:
            problems.append((d["depth_file_name"], str(e).split(": ", 1)[-1]))
        else:
            valid = depth[depth > 0]
            stats["depth"] += 1
            stats["depth_valid"].append(valid.size / depth.size)
            if depth.shape != (h, w):
                problems.append((d["depth_file_name"], f"depth is {depth.shape[1]}x{depth.shape[0]}, image {w}x{h}"))
            if valid.size == 0:
                problems.append((d["depth_file_name"], "no valid depth pixel (all zero)"))
            else:
                stats["depth_range"] = (
                    min(stats["depth_range"][0], int(valid.min())),
                    max(stats["depth_range"][1], int(valid.max())),
                )
                med = float(np.median(valid))
                if not PLAUSIBLE_MEDIAN_MM[0] <= med <= PLAUSIBLE_MEDIAN_MM[1]:
                    problems.append(
                        (
                            d["depth_file_name"],
                            f"implausible median depth {med:.0f} mm (expected millimetres, {PLAUSIBLE_MEDIAN_MM})",
                        )
                    )
    if "pose" in d:
        stats["poses"] += 1
        problem = pose_problem(d["pose"])
        if problem:
            problems.append((d["file_name"], problem))
    if "sem_seg_file_name" in d:
        try:
            label = read_label_png(d["sem_seg_file_name"], (np.uint8,))
        except DataError as e:
            problems.append((d["sem_seg_file_name"], str(e).split(": ", 1)[-1]))
        else:
            stats["labels"] += 1
            if label.shape != (h, w):
                problems.append((d["sem_seg_file_name"], f"label is {label.shape[1]}x{label.shape[0]}, image {w}x{h}"))
            values = np.nonzero(np.bincount(label.ravel(), minlength=256))[0]
            n, ignore = len(meta.stuff_classes), meta.get("ignore_label", 255)
            bad = [int(v) for v in values if v >= n and v != ignore]
            if bad:
                problems.append((d["sem_seg_file_name"], f"label values {bad} outside 0..{n - 1} and {ignore}"))
            stats["classes"].update(int(v) for v in values if v < n)
    for i, a in enumerate(d.get("annotations", [])):
        where = f"{d['file_name']} (annotation {i})"
        if not 0 <= a["category_id"] < len(meta.thing_classes):
            problems.append((where, f"category_id {a['category_id']} outside 0..{len(meta.thing_classes) - 1}"))
        try:
            mask = _decode_segmentation(a["segmentation"], h, w)
        except Exception as e:  # noqa: BLE001 - any decode failure is a problem to report
            problems.append((where, f"segmentation does not decode ({e})"))
            continue
        stats["instances"] += 1
        if mask.shape[:2] != (h, w):
            problems.append((where, f"mask is {mask.shape[1]}x{mask.shape[0]}, image {w}x{h}"))
        elif not mask.any():
            problems.append((where, "empty instance mask"))
    return problems


def split_partners(name: str) -> list[str]:
    """The other side of a train/evaluation pair: `x_val`, `x_test` <-> `x_train` (also `x_train_20pct`)."""
    for held in ("_val", "_test"):
        if name.endswith(held):
            return [name[: -len(held)] + "_train"]
    base, sep, _ = name.rpartition("_train")
    return [base + "_val", base + "_test"] if sep else []


def duplicates_and_leaks(name, dicts) -> list:
    """Problems no single dict shows: an image listed twice, and images shared with the split's partner
    (`split_partners`), where evaluation would see training data."""
    from detectron2.data import DatasetCatalog

    from datasets.builtin import get_dicts

    problems = []
    twice = [i for i, n in Counter(d["image_id"] for d in dicts).items() if n > 1]
    if twice:
        problems.append(
            (
                name,
                f"{len(twice)} image ids listed more than once (e.g. {twice[0]}); prepare it again from split "
                "lists without repeats",
            )
        )
    ours = {d["file_name"] for d in dicts}
    for partner in (p for p in split_partners(name) if p in DatasetCatalog):
        shared = sorted(ours.intersection(d["file_name"] for d in get_dicts(partner)))
        if shared:
            problems.append(
                (
                    name,
                    f"{len(shared)} images are also in {partner} (e.g. {shared[0]}); evaluation would see training "
                    "data: prepare it again with disjoint split lists",
                )
            )
    return problems


def check(name, limit=None):
    """(summary rows, problems) for the first `limit` dicts of a registered dataset."""
    from detectron2.data import MetadataCatalog
    from tqdm import tqdm

    from datasets.builtin import get_dicts

    dicts = get_dicts(name)
    meta = MetadataCatalog.get(name)
    todo = dicts[:limit] if limit else dicts
    stats = {
        "depth": 0,
        "depth_valid": [],
        "depth_range": (1 << 16, 0),
        "labels": 0,
        "classes": set(),
        "instances": 0,
        "poses": 0,
    }
    problems = []
    for d in tqdm(todo, desc=f"checking {name}", unit="image"):
        problems += check_dict(d, meta, stats)
    if not dicts:
        problems.append((name, "the dataset has no images (an empty split); prepare it again"))
    problems += duplicates_and_leaks(name, dicts)
    rows = [("images", f"{len(todo)} checked of {len(dicts)}")]
    if stats["depth"]:
        rows.append(
            (
                "depth maps",
                f"{stats['depth']} (valid {100 * np.mean(stats['depth_valid']):.1f}%, "
                f"{stats['depth_range'][0]}..{stats['depth_range'][1]} mm)",
            )
        )
    if stats["poses"]:
        rows.append(("camera poses", f"{stats['poses']} of {len(todo)} images"))
    if stats["labels"]:
        rows.append(
            ("label maps", f"{stats['labels']} ({len(stats['classes'])} of {len(meta.stuff_classes)} classes present)")
        )
    if any("annotations" in d for d in todo):
        rows.append(("instances", f"{stats['instances']} in {len(todo)} images"))
    rows.append(("problems", str(len(problems))))
    return rows, problems
