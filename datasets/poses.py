"""Camera poses of ScanNet-layout trees, for objectives that relate frames of one scene (`pri3d`).

Raw: `pose/<frame>.txt` beside `color/` in both layouts (SensReader's export: `<frame>` is the frame number;
scannet_frames_25k: six digits), a 4x4 camera-to-world matrix in metres, one row per line, OpenCV camera axes
(x right, y down, z forward). Frames the reconstruction lost track of carry a non-finite matrix (SensReader
writes `-inf` throughout; `nan` is treated alike): they have no pose and are never used.

Prepared: `poses_<split>.json` = {image_id: 4x4 list of floats, or null where the raw pose is invalid}; a
frame whose raw pose file was absent is not in it. `meta.json`'s "poses" entry names the raw scenes folder and,
per split, the file and its counts (valid, invalid, missing). Poses live in their own files so that every
other prepared file stays as it was: a tree prepared before poses were kept still registers (its dicts
lack `pose`), and rerunning the preparation adds the files without converting a frame again.
"""

import os
from collections import defaultdict

import numpy as np

from datasets.catalog import read_meta
from datasets.fileio import DataError, read_json, write_json

POSES_FILE = "poses_{split}.json"
# A rotation read back from SensReader's '%f' text is orthonormal to ~1e-6; beyond this the matrix is not a
# camera pose (a transposed or world-to-camera matrix, or garbage).
MAX_ROTATION_ERROR = 1e-3


def poses_path(folder: str, split: str) -> str:
    return os.path.join(folder, POSES_FILE.format(split=split))


def read_pose(path: str):
    """The 4x4 camera-to-world matrix of one raw pose file, or None for an invalid (non-finite) pose. A file
    that does not hold a rigid 4x4 matrix raises DataError naming it."""
    try:
        with open(path) as f:
            rows = [line.split() for line in f if line.strip()]
        pose = np.array([[float(v) for v in row] for row in rows], np.float64)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read the 4x4 camera pose ({e}); re-export the scene's poses") from None
    if pose.shape != (4, 4):
        raise DataError(
            f"{path}: expected a 4x4 camera-to-world matrix (4 lines of 4 numbers), got "
            f"{' + '.join(str(len(r)) for r in rows) or 'nothing'}; re-export the scene's poses"
        )
    if not np.isfinite(pose).all():
        return None
    problem = pose_problem(pose)
    if problem:
        raise DataError(f"{path}: {problem}; re-export the scene's poses")
    return pose


def pose_problem(pose):
    """Why a finite 4x4 matrix is not a camera-to-world rigid transform, or None."""
    pose = np.asarray(pose, np.float64)
    if pose.shape != (4, 4) or not np.isfinite(pose).all():
        return f"a pose must be a finite 4x4 matrix, got shape {pose.shape}"
    rot = pose[:3, :3]
    error = np.abs(rot @ rot.T - np.eye(3)).max()
    if not np.array_equal(pose[3], [0, 0, 0, 1]) or error > MAX_ROTATION_ERROR or np.linalg.det(rot) < 0:
        return (
            f"not a camera-to-world rigid transform (last row {pose[3].tolist()}, rotation off orthonormal "
            f"by {error:.2g})"
        )
    return None


def collect_poses(frames):
    """Read the raw poses of (image_id, pose path) pairs: ({image_id: 4x4 list or None}, counts, errors)."""
    poses, errors, missing = {}, [], 0
    for image_id, path in frames:
        if not os.path.isfile(path):
            missing += 1
            continue
        try:
            pose = read_pose(path)
        except DataError as e:
            errors.append(str(e))
            continue
        poses[image_id] = None if pose is None else pose.tolist()
    valid = sum(p is not None for p in poses.values())
    return poses, {"valid": valid, "invalid": len(poses) - valid, "missing": missing}, errors


def write_poses(folder: str, split: str, poses: dict) -> str:
    path = poses_path(folder, split)
    write_json(path, poses)
    return os.path.basename(path)


def load_poses(folder: str, split: str):
    """{image_id: 4x4 list or None} of a prepared split, or None for a tree prepared before poses were kept."""
    path = poses_path(folder, split)
    return read_json(path) if os.path.isfile(path) else None


def _raw_intrinsics(raw, layout, scene):
    if layout == "frames25k":
        return os.path.join(raw, scene, "intrinsics_color.txt")
    return os.path.join(raw, scene, "intrinsic", "intrinsic_color.txt")


def _examples(paths, n=3):
    more = f" and {len(paths) - n} more" if len(paths) > n else ""
    return ", ".join(paths[:n]) + more


def require_poses(dicts, dataset_name: str):
    """(frames with a valid pose and intrinsics, number dropped for an invalid raw pose) of a registered
    dataset's dicts. Frames lacking a pose for any other reason, or lacking usable intrinsics, raise a
    DataError that names the files to add: the prepared tree's poses file, or the raw `pose/<frame>.txt` /
    intrinsics file to prepare again from."""
    from detectron2.data import MetadataCatalog

    meta = MetadataCatalog.get(dataset_name)
    posed, dropped, lacking, bad_k = [], 0, defaultdict(list), []
    poses_file = meta.get("poses_file")
    recorded = read_json(poses_file) if poses_file and os.path.isfile(poses_file) else None
    for d in dicts:
        k = d.get("intrinsics")
        if k is None:
            lacking["intrinsics"].append(d)
        elif not (0 < k[0][2] < d["width"] and 0 < k[1][2] < d["height"]):
            bad_k.append(d)
        if "pose" in d:
            posed.append(d)
        elif recorded is not None and d["image_id"] in recorded:
            dropped += 1  # recorded as null: the raw pose is invalid
        else:
            lacking["pose"].append(d)
    problems = []
    if bad_k:
        d = bad_k[0]
        problems.append(
            f"{len(bad_k)} frame(s) have intrinsics of another resolution (principal point "
            f"({d['intrinsics'][0][2]:g}, {d['intrinsics'][1][2]:g}) outside the {d['width']}x"
            f"{d['height']} frame of {d['file_name']}); prepare the dataset again"
        )
    if lacking:
        problems.append(_lacking_message(meta, poses_file, recorded, lacking))
    if problems:
        raise DataError(f"{dataset_name}: camera geometry is incomplete: " + "; ".join(problems))
    return [d for d in posed if d.get("intrinsics") is not None], dropped


def _lacking_message(meta, poses_file, recorded, lacking):
    """Which files would give the frames in `lacking` ({'pose' | 'intrinsics': dicts}) their geometry."""
    folder = meta.get("root")
    tree = read_meta(folder) if folder and poses_file else None
    if tree is None:
        what = " and ".join(f"{len(v)} frame(s) lack {k}" for k, v in lacking.items())
        return (
            f"{what} (e.g. {next(iter(lacking.values()))[0]['file_name']}); camera poses come with the "
            f"ScanNet-layout sets (scannet_* and synthetic_* rgbd, sem_seg and instance splits)"
        )
    command = f"python -m tools.prepare_scannet --raw RAW --out {folder} (with the options it was prepared with)"
    parts = []
    if lacking.get("pose") and recorded is None:
        parts.append(
            f"{len(lacking['pose'])} frame(s) lack a pose because the prepared tree has no {poses_file} "
            f"(it was prepared before poses were kept): rerun {command} on the raw tree with its "
            f"pose/<frame>.txt files; finished frames are kept"
        )
    elif lacking.get("pose"):
        raw = tree.get("poses", {}).get("raw", "RAW")
        paths = [
            os.path.join(raw, d["scene_id"], "pose", d["image_id"][len(d["scene_id"]) + 1 :] + ".txt")
            for d in lacking["pose"]
        ]
        parts.append(
            f"{len(paths)} frame(s) lack a pose because their raw pose files were missing (or, with "
            f"--skip-bad, unreadable) when the tree was prepared: {_examples(paths)}; export them "
            f"(SensReader --export_poses) and rerun {command}"
        )
    if lacking.get("intrinsics"):
        raw = tree.get("poses", {}).get("raw", "RAW")
        layout = tree["options"]["layout"]
        paths = sorted({_raw_intrinsics(raw, layout, d.get("scene_id", "SCENE")) for d in lacking["intrinsics"]})
        parts.append(f"{len(lacking['intrinsics'])} frame(s) lack intrinsics: {_examples(paths)}; rerun {command}")
    return "; ".join(parts)
