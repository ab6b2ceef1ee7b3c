"""The prepared tree's `meta.json` across reruns. It records what made the tree (tool, format version, the
label maps read, by path and sha256); a rerun with other options or another label map must not mix into the
tree (its labels would be stale); a finished tree stays usable (complete) while a rerun fills in what is
missing. A tree is complete only when every split has frames and some valid depth: an empty split or a depth
export of zeros is a failed preparation, not a dataset. The temp files of an interrupted run's writes are removed
when the next run starts."""

import hashlib
import os

from core import io
from core.cli import DISK_ERRNOS
from datasets.fileio import DataError, read_depth_png, read_json, write_json


def made_by(tool: str, version: int, **label_maps: str) -> dict:
    """The `made_by` entry of `meta.json`: the module, its output format version and each label map read."""
    inputs = {}
    for role, path in label_maps.items():
        with open(path, "rb") as f:
            inputs[role] = {"path": os.path.abspath(path), "sha256": hashlib.file_digest(f, "sha256").hexdigest()}
    return {"tool": tool, "version": version, "inputs": inputs}


def check_rerun(out: str, options: dict, made: dict) -> None:
    """Refuse to continue a tree prepared with other options or from another label map. A tree from before
    `made_by` was recorded is judged by its options alone."""
    meta_path = os.path.join(out, "meta.json")
    if not os.path.exists(meta_path):
        return
    meta = read_json(meta_path)
    if meta.get("options") != options:
        raise DataError(
            f"{meta_path}: this folder was prepared with options {meta.get('options')}, now {options}; "
            f"use a new --out or delete the folder"
        )
    before = meta.get("made_by", {}).get("inputs")
    if before is None:
        return
    for role, now in made["inputs"].items():
        was = before.get(role)
        if was is None or was["sha256"] != now["sha256"]:
            source = f"{was['path']} (sha256 {was['sha256'][:12]})" if was else "none"
            raise DataError(
                f"{meta_path}: this folder was prepared with the {role} {source}, now "
                f"{now['path']} (sha256 {now['sha256'][:12]}); its labels would be stale: use a new "
                f"--out or delete the folder"
            )


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
            return (
                f"{out}: no frame of the {split} split has a valid depth pixel (all {len(paths)} depth maps "
                f"are zero, e.g. {paths[0]}); check the depth export"
            )
    return None


def remove_temps(out: str) -> list:
    """Delete the temp files that writes of an interrupted run left anywhere under `out` (symlinks not
    followed); returns them. One listing per folder, no stat per file, so it stays cheap on a large tree.
    Run it before the workers start: a concurrent writer's temp file would be removed too."""
    removed = []
    for folder, _, files in os.walk(out):
        if any(f.startswith(".") and f.endswith(io.TEMP_SUFFIX) for f in files):
            removed += io.remove_stale_temps(folder)
    return removed


INTERRUPTED = "interrupted; finished frames are kept: rerun the same command to convert the rest"


def failure_message(e: Exception) -> str | None:
    """The one line a preparation tool prints for `e`: bad input, or an output the file system refuses
    (read-only, full); None for anything else, which is a bug and keeps its traceback."""
    if isinstance(e, DataError):
        return str(e)
    if isinstance(e, OSError) and e.errno in DISK_ERRNOS:
        return (
            f"{e.filename or 'output'}: {e.strerror}; choose a writable --out, or free space / fix its "
            "permissions, then rerun (finished frames are kept)"
        )
    return None
