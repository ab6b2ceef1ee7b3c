"""Pre-resized RGB-D frames in memory-mapped shards, so pre-training reads bytes instead of decoding images.

Decoding a 640x480 JPEG + 16-bit PNG costs ~5 ms per frame per core, while one GPU pre-training at 240x320
consumes thousands of frames/s (`pretrain.speed_packed`). A pack holds a registered RGB-D dataset's frames
decoded once and resized to the pack size, a little larger than the training crop so the random resized crop still
cuts from more pixels than it outputs (`DEFAULT_SIZE`).

A pack folder holds:
- `pack.json`: what is packed (datasets, size, frames per shard, frame count, a digest of the frame list),
  written first, so a rerun with other arguments is refused and an interrupted one resumes;
- `rgb_NNNNN.npy` (n, H, W, 3) uint8 RGB and `depth_NNNNN.npy` (n, H, W) uint16 millimetres (0 = invalid):
  NumPy .npy files (a header, then the raw C-order array; `np.load(mmap_mode="r")` maps them), each written
  under a temp name and moved into place whole, so a shard is either complete or absent;
- `index.json` (written last; readers need it): the frames in order with their source files; frame i is row
  i % shard_frames of shard i // shard_frames.

Frames of another aspect than the pack's are centre-cropped to it first; colour is resized with area
averaging, depth with nearest neighbour (an invalid 0 never blends into a valid reading).
"""

import hashlib
import json
import os
import resource
import time
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from core import io
from datasets.fileio import DataError, decode_image, read_depth_png, read_json, write_json
from datasets.prepare.jobs import run_parallel

FORMAT_VERSION = 1
PLAN, INDEX = "pack.json", "index.json"
# 1.25x the 240x320 training size: crops covering >= 64 % of the frame (the larger half of RandomResizedCrop's
# default scale (0.2, 1)) are still shrunk, the smallest ones upsampled 1.8x instead of 2.2x, at 1.56x the bytes.
DEFAULT_SIZE = (300, 400)
DEFAULT_SHARD_FRAMES = 1024


def shard_paths(folder: str, shard: int) -> tuple:
    return os.path.join(folder, f"rgb_{shard:05d}.npy"), os.path.join(folder, f"depth_{shard:05d}.npy")


def load_frame(image: str, depth: str, size) -> tuple:
    """(H x W x 3 uint8 RGB, H x W uint16 mm) of one frame at the pack size; errors name the file."""
    bgr = decode_image(image, cv2.IMREAD_COLOR)
    mm = read_depth_png(depth)
    if mm.shape != bgr.shape[:2]:
        raise DataError(
            f"{depth}: depth is {mm.shape[1]}x{mm.shape[0]} but {image} is {bgr.shape[1]}x"
            f"{bgr.shape[0]}; prepare depth at the image size"
        )
    h, w = size
    src_h, src_w = mm.shape
    crop_h, crop_w = min(src_h, round(src_w * h / w)), min(src_w, round(src_h * w / h))
    y, x = (src_h - crop_h) // 2, (src_w - crop_w) // 2
    bgr, mm = bgr[y : y + crop_h, x : x + crop_w], mm[y : y + crop_h, x : x + crop_w]
    bgr = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA if crop_h > h else cv2.INTER_LINEAR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), cv2.resize(mm, (w, h), interpolation=cv2.INTER_NEAREST)


def check_shard(path: str, shape: tuple, dtype) -> int:
    """The byte offset of a .npy shard's array, after checking its header and length against what the index
    expects; reads the header only, so a large pack is checked in moments and holds no file open."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = {
                (1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0,
            }.get(version)
            if read_header is None:
                raise ValueError(f".npy version {version}")
            found_shape, fortran, found_dtype = read_header(f)
            offset, length = f.tell(), os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        raise DataError(
            f"{path}: shard is missing; re-run tools.pack_rgbd with the same arguments to pack it again"
        ) from None
    except (ValueError, OSError) as e:  # numpy's words for a short or damaged header
        raise DataError(
            f"{path}: truncated or not a .npy shard ({e}); re-run tools.pack_rgbd with the same "
            f"arguments to pack it again"
        ) from None
    dtype = np.dtype(dtype)
    if found_shape != tuple(shape) or found_dtype != dtype or fortran:
        raise DataError(
            f"{path}: holds {found_dtype} {found_shape}, the index expects {dtype} {tuple(shape)}; "
            f"re-run tools.pack_rgbd with the same arguments"
        )
    expected = offset + int(np.prod(shape)) * dtype.itemsize
    if length != expected:
        raise DataError(
            f"{path}: truncated or not a .npy shard ({length} bytes, {expected} expected); re-run "
            f"tools.pack_rgbd with the same arguments to pack it again"
        )
    return offset


def _shard_done(folder, shard, frames, size) -> bool:
    try:
        rgb, depth = shard_paths(folder, shard)
        check_shard(rgb, (frames, *size, 3), np.uint8)
        check_shard(depth, (frames, *size), np.uint16)
        return True
    except DataError:
        return False


@dataclass(frozen=True)
class ShardJob:
    """Pack one shard: (shard number, [(image, depth)]) -> shard number; picklable for worker processes."""

    folder: str
    size: tuple

    def __call__(self, item) -> int:
        shard, frames = item
        rgb_path, depth_path = shard_paths(self.folder, shard)
        with io.atomic_path(rgb_path) as rgb_tmp, io.atomic_path(depth_path) as depth_tmp:
            rgb = np.lib.format.open_memmap(rgb_tmp, "w+", np.uint8, (len(frames), *self.size, 3))
            depth = np.lib.format.open_memmap(depth_tmp, "w+", np.uint16, (len(frames), *self.size))
            for row, (image, depth_file) in enumerate(frames):
                rgb[row], depth[row] = load_frame(image, depth_file, self.size)
            rgb.flush()
            depth.flush()
            del rgb, depth  # unmap before the files are moved into place
        return shard


def pack(
    dicts, out: str, size=DEFAULT_SIZE, shard_frames: int = DEFAULT_SHARD_FRAMES, workers: int = 1, source=()
) -> dict:
    """Pack dataset dicts (with `file_name` and `depth_file_name`) into `out`; shards already complete are kept,
    so an interrupted run resumes. Returns a summary (frames, shards, packed, kept, errors, seconds); bad input
    files are listed in `errors` and leave `index.json` unwritten."""
    size = tuple(int(s) for s in size)
    if not dicts:
        raise DataError(f"{out}: nothing to pack (the dataset has no frames)")
    lacking = [d.get("file_name") for d in dicts if not d.get("depth_file_name")]
    if lacking:
        raise DataError(f"{lacking[0]}: no depth_file_name ({len(lacking)} frames); pack an *_rgbd_* dataset")
    files = [(d["file_name"], d["depth_file_name"]) for d in dicts]
    digest = hashlib.sha256(json.dumps(files).encode()).hexdigest()
    plan = {
        "format": FORMAT_VERSION,
        "datasets": list(source),
        "size": list(size),
        "shard_frames": shard_frames,
        "frames": len(files),
        "digest": digest,
    }
    os.makedirs(out, exist_ok=True)
    plan_path = os.path.join(out, PLAN)
    before = read_json(plan_path) if os.path.exists(plan_path) else plan
    changed = sorted(k for k in plan if before.get(k) != plan[k])
    if changed:
        raise DataError(
            f"{plan_path}: this folder holds a pack made with "
            f"{', '.join(f'{k} {before.get(k)}' for k in changed)}, now "
            f"{', '.join(f'{k} {plan[k]}' for k in changed)}; use a new --out or delete the folder"
        )
    io.remove_stale_temps(out)
    write_json(plan_path, plan)
    shards = [(s, files[s * shard_frames : (s + 1) * shard_frames]) for s in range(-(-len(files) // shard_frames))]
    todo = [(s, f) for s, f in shards if not _shard_done(out, s, len(f), size)]
    if todo and os.path.exists(os.path.join(out, INDEX)):
        os.remove(os.path.join(out, INDEX))  # readers must not trust the pack until every shard is back
    t0 = time.perf_counter()
    _, errors = run_parallel(ShardJob(out, size), todo, workers, desc="packing shards")
    if not errors:
        frames = [
            {"image_id": d.get("image_id"), "file_name": d["file_name"], "depth_file_name": d["depth_file_name"]}
            for d in dicts
        ]
        write_json(os.path.join(out, INDEX), dict(plan, frame_list=frames))
    return {
        "frames": len(files),
        "shards": len(shards),
        "packed": len(todo) - len(errors),
        "kept": len(shards) - len(todo),
        "errors": errors,
        "seconds": time.perf_counter() - t0,
    }


class PackedFrames:
    """Random access to a pack: frame i is (H x W x 3 uint8 RGB, H x W uint16 mm), views into memory-mapped
    shards. Every shard's header and length are checked on opening, so a truncated one is named before
    training; shards are mapped on first use (each map holds a file descriptor, so the soft limit on open
    files is raised to fit them all). Pickling drops the maps; a spawned DataLoader worker maps its own."""

    def __init__(self, folder: str):
        self.folder = folder
        path = os.path.join(folder, INDEX)
        if not os.path.isfile(path):
            raise DataError(f"{path}: missing; packing did not finish: re-run tools.pack_rgbd with the same arguments")
        index = read_json(path)
        if index.get("format") != FORMAT_VERSION:
            raise DataError(
                f"{path}: pack format {index.get('format')}, this code reads {FORMAT_VERSION}; pack the dataset again"
            )
        self.size, self.shard_frames = tuple(index["size"]), index["shard_frames"]
        self.records = index["frame_list"]
        self._layout, self._maps = [], {}
        for shard in range(-(-len(self.records) // self.shard_frames)):
            n = min(self.shard_frames, len(self.records) - shard * self.shard_frames)
            rgb, depth = shard_paths(folder, shard)
            specs = ((rgb, (n, *self.size, 3), np.uint8), (depth, (n, *self.size), np.uint16))
            self._layout.append([(p, shape, dtype, check_shard(p, shape, dtype)) for p, shape, dtype in specs])
        _allow_open_files(2 * len(self._layout), folder)

    def __getstate__(self):
        return dict(self.__dict__, _maps={})

    def shard(self, shard: int) -> tuple:
        """(RGB, depth) memory maps of one shard."""
        if shard not in self._maps:
            self._maps[shard] = tuple(
                np.memmap(p, dtype, "r", offset, shape) for p, shape, dtype, offset in self._layout[shard]
            )
        return self._maps[shard]

    def __len__(self):
        return len(self.records)

    def __getitem__(self, i):
        shard, row = divmod(int(i), self.shard_frames)
        rgb, depth = self.shard(shard)
        return rgb[row], depth[row]


def _allow_open_files(maps: int, folder: str) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = maps + 256  # and the files the rest of the process opens
    if soft == resource.RLIM_INFINITY or soft >= want:
        return
    if hard != resource.RLIM_INFINITY and hard < want:
        raise DataError(
            f"{folder}: its {maps} shard files need {want} open files, the limit is {hard}; pack it "
            f"again with a larger --shard-frames"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class PackedRGBD(Dataset):
    """A pack's frames as pre-training items without augmentation, at the pack size: uint8 `rgb` (H, W, 3) and
    uint16 `depth_mm` (H, W), copied out of the maps, as `pretrain.data` returns them (the device converts)."""

    def __init__(self, folder: str):
        self.frames = PackedFrames(folder)

    def __len__(self):
        return len(self.frames)

    def __getitem__(self, i):
        rgb, mm = self.frames[i]
        return {"rgb": torch.from_numpy(np.array(rgb)), "depth_mm": torch.from_numpy(np.array(mm))}
