"""Overlapping frame pairs of one scene for the `pri3d` objective, with their patch correspondences.

Every frame is seen whole: the largest centred box of the model's aspect, resized to its input size, so
the geometry of `pretrain.correspondence` holds exactly (a random crop or flip would have to move the
matches with it; colour jitter, which leaves geometry alone, is the only augmentation). Pairs are all
frames of a scene two by two, kept when each view sees at least `min_overlap` of the other's patches
(30 %, the default here, is Pri3D's: its README builds the ScanNet pair list `overlap30.txt` from frames
whose partial point clouds overlap; our overlap is the share of patches with valid depth that the other
view sees unoccluded, computed at the input size). Pairs below it are counted (`skipped`), never trained on.
Correspondences are computed once, at construction, on depth resized to the input size with nearest neighbour.

Frames need `intrinsics` and `pose` (4x4 camera-to-world) in their dataset dicts; a scene is the
`image_id` up to its last underscore (`scene0000_00_120` -> `scene0000_00`), as the ScanNet registrar
writes them. Frames whose pose is null or not finite (lost tracking) are left out with a count.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from datasets.fileio import read_depth_png

from .correspondence import GeometryError, check_intrinsics, check_pose, match_patches, scale_intrinsics
from .data import center_box, jitter_colors, read_bgr_depth_mm

logger = logging.getLogger(__name__)
MIN_OVERLAP = 0.3


class PairError(ValueError):
    """Frames that cannot feed `pri3d`; the message names the frames and what they lack."""


def scene_of(d: dict) -> str:
    return str(d["image_id"]).rsplit("_", 1)[0]


def usable_frames(dicts) -> tuple[list[dict], int]:
    """The frames with a usable pose and intrinsics, and how many have an invalid pose (null or not finite:
    ScanNet writes -inf where tracking failed), which are left out. A frame without the `pose` or
    `intrinsics` entry at all comes from a tree that cannot feed `pri3d`: an error naming the missing files."""
    lacking = defaultdict(list)
    for d in dicts:
        for key in ("pose", "intrinsics"):
            if key not in d or (key == "intrinsics" and d[key] is None):
                lacking[key].append(d["file_name"])
    if lacking:
        raise PairError(
            "pri3d needs camera poses and intrinsics for every frame; "
            + "; ".join(
                f"{len(files)} frame(s) lack `{key}` (the raw scene's "
                f"{'pose/<frame>.txt' if key == 'pose' else 'intrinsic/intrinsic_color.txt'}), e.g. {files[0]}"
                for key, files in lacking.items()
            )
            + ". Prepare the tree with poses kept, or use another objective"
        )
    usable = []
    for d in dicts:
        try:
            check_intrinsics(d["intrinsics"], d["file_name"])
        except GeometryError as e:
            raise PairError(str(e)) from None
        if d["pose"] is not None and _valid_pose(d):
            usable.append(d)
    return usable, len(dicts) - len(usable)


def _valid_pose(d) -> bool:
    try:
        check_pose(d["pose"], d["file_name"])
    except GeometryError:
        return False
    return True


@dataclass
class Pair:
    a: int
    b: int
    match: np.ndarray  # (N,) patch of b matched by each patch of a, -1 for none
    overlap: float


class PairDataset(Dataset):
    """Items: `rgb` (2, H, W, 3) uint8, `depth_mm` (2, H, W) uint16 (as `pretrain.data.to_model_inputs` takes
    them) and `match` (N,) int64, for a pair index or an `(index, seed)` item of
    `pretrain.data.ShardedInfiniteSampler` (the seed drives the colour jitter)."""

    def __init__(self, dicts, img_size, patch_size: int, min_overlap: float = MIN_OVERLAP, color_jitter: float = 0.4):
        dicts, self.bad_poses = usable_frames(dicts)
        if self.bad_poses:
            logger.warning(f"pri3d pairs: {self.bad_poses} frame(s) without a valid pose left out")
        self.dicts, self.img_size, self.patch, self.jitter = (
            dicts,
            tuple(int(s) for s in img_size),
            patch_size,
            color_jitter,
        )
        self.min_overlap = min_overlap
        views = [self._view(d) for d in dicts]
        by_scene = defaultdict(list)
        for i, d in enumerate(dicts):
            by_scene[scene_of(d)].append(i)
        self.pairs: list[Pair] = []
        self.skipped = 0
        for frames in by_scene.values():
            for a, b in combinations(frames, 2):
                ab = match_patches(*views[a], *views[b], patch_size)
                ba = match_patches(*views[b], *views[a], patch_size)
                overlap = min(ab.overlap, ba.overlap)
                if overlap >= min_overlap:
                    self.pairs.append(Pair(a, b, ab.index, overlap))
                else:
                    self.skipped += 1
        logger.info(
            f"pri3d pairs: {len(self.pairs)} of {len(self.pairs) + self.skipped} same-scene frame pairs "
            f"overlap by >= {min_overlap:.0%} ({self.skipped} skipped) in {len(by_scene)} scenes"
        )
        if not self.pairs:
            raise PairError(
                f"no two frames of the same scene overlap by {min_overlap:.0%} or more "
                f"({self.skipped} pairs below it in {len(by_scene)} scenes); lower the overlap "
                f"threshold or add frames"
            )

    def _box(self, hw):
        return center_box(*hw, self.img_size[1] / self.img_size[0])

    def _view(self, d):
        """(depth at the input size, scaled intrinsics, pose) of one frame."""
        depth_mm = read_depth_png(d["depth_file_name"])
        y, x, h, w = box = self._box(depth_mm.shape)
        out_h, out_w = self.img_size
        depth = cv2.resize(depth_mm[y : y + h, x : x + w], (out_w, out_h), interpolation=cv2.INTER_NEAREST)
        return (
            depth.astype(np.float32) / 1000.0,
            scale_intrinsics(d["intrinsics"], box, self.img_size),
            np.asarray(d["pose"], np.float64),
        )

    def __len__(self):
        return len(self.pairs)

    def _frame(self, d, rng):
        bgr, depth_mm = read_bgr_depth_mm(d)
        y, x, h, w = self._box(depth_mm.shape)
        out_h, out_w = self.img_size
        bgr = cv2.resize(
            bgr[y : y + h, x : x + w],
            (out_w, out_h),
            interpolation=cv2.INTER_AREA if h >= 2 * out_h else cv2.INTER_LINEAR,
        )
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if rng is not None and self.jitter > 0:
            rgb = jitter_colors(rgb, rng, self.jitter)
        depth_mm = cv2.resize(depth_mm[y : y + h, x : x + w], (out_w, out_h), interpolation=cv2.INTER_NEAREST)
        return rgb, depth_mm

    def __getitem__(self, item):
        index, seed = item if isinstance(item, tuple) else (item, None)
        pair = self.pairs[index]
        rng = np.random.default_rng(seed) if seed is not None else None
        (ra, da), (rb, db) = (self._frame(self.dicts[k], rng) for k in (pair.a, pair.b))
        return {
            "rgb": torch.from_numpy(np.stack([ra, rb])),
            "depth_mm": torch.from_numpy(np.stack([da, db])),
            "match": torch.from_numpy(pair.match.astype(np.int64)),
        }
