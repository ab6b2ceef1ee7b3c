"""The prepared tree's `meta.json` across reruns: a rerun with other options must not mix into a tree, and a
finished tree stays usable (complete) while a rerun fills in what is missing. A tree is complete only when
every split has frames and some valid depth: an empty split or a depth export of zeros is a failed
preparation, not a dataset."""
import os

from datasets.fileio import DataError, read_depth_png, read_json, write_json


def check_options(out: str, options: dict) -> None:
    """Refuse to continue a tree that was prepared with other options."""
    meta_path = os.path.join(out, "meta.json")
    if not os.path.exists(meta_path):
        return
    old = read_json(meta_path).get("options")
    if old != options:
        raise DataError(f"{meta_path}: this folder was prepared with options {old}, now {options}; "
                        f"use a new --out or delete the folder")


def claim(out: str, meta: dict) -> None:
    """Write the first, incomplete `meta.json` of a new tree; an existing one is kept until the run ends."""
    meta_path = os.path.join(out, "meta.json")
    if not os.path.exists(meta_path):
        write_json(meta_path, meta)


def unusable(out: str, depth_by_split: dict) -> str | None:
    """Why the prepared splits (split -> depth maps of its frames) cannot be used, or None. Depth is decoded
    only until a valid pixel turns up, so a good split costs one decode."""
    for split, paths in depth_by_split.items():
        if not paths:
            return f"{out}: the {split} split has no usable frames; check the raw tree and its split lists"
        if not any(read_depth_png(p).any() for p in paths):
            return (f"{out}: no frame of the {split} split has a valid depth pixel (all {len(paths)} depth maps "
                    f"are zero, e.g. {paths[0]}); check the depth export")
    return None
