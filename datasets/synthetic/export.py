"""Write procedural scenes exactly as exported ScanNet scenes are laid out, so the ScanNet preparation reads them.

Layout (ScanNet's SensReader export plus its 2D label zips): `scans/sceneXXXX_00/{color/N.jpg,
depth/N.png (uint16 mm), label-filt/N.png (uint16 ScanNet ids), instance-filt/N.png (uint8),
pose/N.txt (4x4 camera-to-world), intrinsic/{intrinsic,extrinsic}_{color,depth}.txt}`, a
`sceneXXXX_00.txt` meta file, `scannetv2-labels.combined.tsv`, `scannetv2_{train,val}.txt`, and
`synthetic.json` (the generation parameters; written last, so its presence means the tree is complete).
The tree is built in `OUT.partial` and renamed into place, so a crash never leaves a complete-looking OUT.
"""

import json
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from core import io
from datasets.drawing import BAND, colour_bar, depth_colors, hstack, legend, titled, vstack
from datasets.labels import NYU40_CLASSES, SCANNET_TSV_COLUMNS, SCANNET_TSV_NAME
from datasets.synthetic.layout import ROOM_TYPES, make_scene, sample_poses
from datasets.synthetic.render import MAX_RANGE, render
from datasets.synthetic.scene import CATEGORIES, UNANNOTATED, intrinsics

STAMP = "synthetic.json"
CHUNK = 10  # frames per task: the unit of work of a worker and of the progress bar
JPEG_QUALITY = 90
MAX_SCENES = 10000  # scene names have four digits


def scene_name(index):
    return f"scene{index:04d}_00"


def split(n_scenes):
    """(train, val) scene names: val is the last ~20% of scenes, at least one."""
    names = [scene_name(i) for i in range(n_scenes)]
    n_val = max(1, int(round(0.2 * n_scenes)))
    return names[:-n_val], names[-n_val:]


def _matrix_text(matrix):
    """A 4x4 matrix as ScanNet's exporter writes it: one row per line, '%f' fields separated by spaces."""
    return "".join(" ".join(f"{v:f}" for v in row) + "\n" for row in np.asarray(matrix, np.float64))


def _as_written(matrix):
    """The matrix as it reads back from its text file, so rendering uses exactly what is on disk."""
    return np.array([[float(f"{v:f}") for v in row] for row in matrix])


def _render_chunk(task):
    """Render frames [start, stop) of one scene into `root`; returns the number of frames written."""
    root, seed, index, start, stop, n_frames, height, width = task
    cv2.setNumThreads(1)
    scene = make_scene(seed, index, scene_name(index))
    poses = sample_poses(scene, n_frames, np.random.default_rng([seed, index, 1]))
    K = _as_written(intrinsics(height, width))
    scan = Path(root) / "scans" / scene.name
    if start == 0:
        k4 = np.eye(4)
        k4[:3, :3] = K
        for name, matrix in (
            ("intrinsic_color", k4),
            ("intrinsic_depth", k4),
            ("extrinsic_color", np.eye(4)),
            ("extrinsic_depth", np.eye(4)),
        ):
            io.write_text(scan / "intrinsic" / f"{name}.txt", _matrix_text(matrix))
        io.write_text(scan / f"{scene.name}.txt", _meta_text(scene, K, height, width, n_frames))
    for i in range(start, stop):
        pose = _as_written(poses[i])
        frame = render(scene, K, pose, height, width, np.random.default_rng([seed, index, 2, i]))
        _imwrite(scan / "color" / f"{i}.jpg", frame.rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        _imwrite(scan / "depth" / f"{i}.png", frame.depth)
        _imwrite(scan / "label-filt" / f"{i}.png", frame.label)
        _imwrite(scan / "instance-filt" / f"{i}.png", frame.instance)
        io.write_text(scan / "pose" / f"{i}.txt", _matrix_text(pose))
    return stop - start


def _imwrite(path, image, params=()):
    ok, buf = cv2.imencode(Path(path).suffix, image, list(params))
    if not ok:
        raise OSError(f"could not encode {path}")
    io.write_bytes(path, buf.tobytes())


def _meta_text(scene, K, height, width, n_frames):
    """The scene's `sceneXXXX_00.txt` with the keys of ScanNet's meta files that apply here."""
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    lines = [
        f"colorHeight = {height}",
        f"colorWidth = {width}",
        f"depthHeight = {height}",
        f"depthWidth = {width}",
        f"fx_color = {fx:f}",
        f"fx_depth = {fx:f}",
        f"fy_color = {fy:f}",
        f"fy_depth = {fy:f}",
        f"mx_color = {cx:f}",
        f"mx_depth = {cx:f}",
        f"my_color = {cy:f}",
        f"my_depth = {cy:f}",
        f"numColorFrames = {n_frames}",
        f"numDepthFrames = {n_frames}",
        f"sceneType = {ROOM_TYPES[scene.scene_type]['scannet']}",
    ]
    return "\n".join(lines) + "\n"


def _labels_tsv(counts):
    """ScanNet's label table restricted to our categories: real ids and nyu40 ids; `count` is the number
    of instances in this set; columns we have no ground truth for are left empty."""
    rows = ["\t".join(SCANNET_TSV_COLUMNS)]
    for name, (raw_id, nyu40) in sorted(CATEGORIES.items(), key=lambda kv: kv[1][0]):
        fields = {
            "id": raw_id,
            "raw_category": name,
            "category": name,
            "count": counts.get(raw_id, 0),
            "nyu40id": nyu40,
            "nyu40class": NYU40_CLASSES[nyu40 - 1],
        }
        rows.append("\t".join(str(fields.get(col, "")) for col in SCANNET_TSV_COLUMNS))
    return "\n".join(rows) + "\n"


def _instance_counts(seed, n_scenes):
    counts = {}
    for index in range(n_scenes):
        scene = make_scene(seed, index)
        seen = {}
        for label, inst in zip(scene.label, scene.instance, strict=False):
            if inst:
                seen[inst] = label
        for label in seen.values():
            counts[label] = counts.get(label, 0) + 1
    return counts


def _params(scenes, frames, seed, height, width):
    return {
        "scenes": scenes,
        "frames_per_scene": frames,
        "seed": seed,
        "height": height,
        "width": width,
        "generator": "datasets.synthetic",
        "format": "scannet-export",
    }


def is_complete(out, scenes, frames, seed, height, width):
    """True when `out` holds a finished tree generated with exactly these parameters."""
    stamp = Path(out) / STAMP
    if not stamp.is_file():
        return False
    saved = json.loads(stamp.read_text())
    wanted = _params(scenes, frames, seed, height, width)
    return {k: saved.get(k) for k in wanted} == wanted


def generate(out, scenes=24, frames=40, seed=0, height=240, width=320, workers=1, overwrite=False, progress=True):
    """Generate the tree into `out` (refusing a non-empty `out` unless `overwrite`); returns stats with
    `frames`, `scenes`, `seconds` and `frames_per_s`."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise FileExistsError(
            f"--out {out} exists and is not empty; pass --overwrite to replace it or choose another folder"
        )
    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)  # left by an interrupted run of ours
    partial.mkdir(parents=True)
    start = time.perf_counter()
    train, val = split(scenes)
    io.write_text(partial / "scannetv2_train.txt", "".join(n + "\n" for n in train))
    io.write_text(partial / "scannetv2_val.txt", "".join(n + "\n" for n in val))
    io.write_text(partial / SCANNET_TSV_NAME, _labels_tsv(_instance_counts(seed, scenes)))
    tasks = [
        (str(partial), seed, index, lo, min(lo + CHUNK, frames), frames, height, width)
        for index in range(scenes)
        for lo in range(0, frames, CHUNK)
    ]
    bar = tqdm(total=scenes * frames, unit="frame", desc="synthetic", disable=not progress)
    if workers > 1:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for done in pool.map(_render_chunk, tasks):
                bar.update(done)
    else:
        for task in tasks:
            bar.update(_render_chunk(task))
    bar.close()
    seconds = time.perf_counter() - start
    stats = {
        "scenes": scenes,
        "frames": scenes * frames,
        "train_scenes": len(train),
        "val_scenes": len(val),
        "seconds": round(seconds, 3),
        "frames_per_s": round(scenes * frames / seconds, 2),
        "workers": workers,
    }
    io.write_text(partial / STAMP, json.dumps(_params(scenes, frames, seed, height, width), indent=1) + "\n")
    _swap_into_place(partial, out)
    return stats


def _swap_into_place(partial, out):
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    if out.exists():
        old = out.with_name(out.name + f".old-{os.getpid()}")
        os.replace(out, old)
        os.replace(partial, out)
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    else:
        os.replace(partial, out)


def write_preview(root, path, rows=4):
    """One PNG contact sheet: per row one frame (from evenly spaced scenes); columns RGB, depth (black =
    invalid) with its colour bar in metres, semantic labels and instances under titles, and a legend naming the
    label colours."""
    root, path = Path(root), Path(path)
    scans = sorted(p for p in (root / "scans").iterdir() if p.is_dir())
    if not scans:
        raise FileNotFoundError(f"no scenes under {root / 'scans'}")
    picks = [scans[int(i)] for i in np.linspace(0, len(scans) - 1, min(rows, len(scans)))]
    columns = {"RGB": [], "depth": [], "semantic labels": [], "instances": []}
    shown = set()
    for scan in picks:
        frame = min((scan / "color").glob("*.jpg"), key=lambda p: int(p.stem)).stem
        depth = cv2.imread(str(scan / "depth" / f"{frame}.png"), cv2.IMREAD_UNCHANGED)
        label = cv2.imread(str(scan / "label-filt" / f"{frame}.png"), cv2.IMREAD_UNCHANGED)
        columns["RGB"].append(cv2.imread(str(scan / "color" / f"{frame}.jpg"), cv2.IMREAD_COLOR)[..., ::-1])
        columns["depth"].append(depth_colors(depth / 1000.0, 0.0, MAX_RANGE, depth > 0))
        columns["semantic labels"].append(_palette(label))
        columns["instances"].append(
            _palette(cv2.imread(str(scan / "instance-filt" / f"{frame}.png"), cv2.IMREAD_UNCHANGED))
        )
        shown.update(np.unique(label).tolist())
    tiles = [titled(vstack(images, gap=2), title) for title, images in columns.items()]
    tiles.insert(2, colour_bar(0.0, MAX_RANGE, tiles[0].shape[0] - BAND))
    names = {sid: name for name, (sid, _) in CATEGORIES.items()} | {UNANNOTATED: "unannotated"}
    ids = sorted(shown)
    colors = _palette(np.array([ids]))[0]
    entries = [(names.get(i, f"id {i}"), tuple(int(v) for v in c)) for i, c in zip(ids, colors, strict=True)]
    tiles.append(legend(entries, "label colours"))
    _imwrite(path, np.ascontiguousarray(hstack(tiles)[..., ::-1]))


def _palette(ids):
    """Distinct stable RGB colours per id (0 stays black)."""
    ids = ids.astype(np.int64)
    hue = (ids * 0.618034) % 1.0
    hsv = np.stack([hue * 180, np.full_like(hue, 200), np.where(ids > 0, 230, 0)], -1).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
