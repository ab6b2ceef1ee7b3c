"""The prepared tree's `meta.json` across reruns: a rerun with other options must not mix into a tree, and a
finished tree stays usable (complete) while a rerun fills in what is missing."""
import os

from datasets.fileio import DataError, read_json, write_json


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
