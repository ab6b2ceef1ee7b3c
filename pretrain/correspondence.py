"""Patch correspondences between two RGB-D views of a static scene, from depth, intrinsics and camera poses.

Pri3D (Hou et al., ICCV 2021) matches pixels of two frames through their 3D points; on a ViT the unit is a
patch. Each patch of view A is represented by one real pixel near its centre (row `r*p + p//2`, column
`c*p + p//2`); its depth lifts it to a 3D point, view B's pose takes it into B's camera, and B's intrinsics
to a pixel. It matches the patch holding that pixel when the point lies in front of B, inside the frame,
and is not hidden there: B's own depth at the pixel agrees with the point's depth within `rel_tol` (our
choice, 5 %: well above sensor noise at indoor range, well below a jump between surfaces).

Conventions are ScanNet's: OpenCV camera axes, 4x4 camera-to-world poses, pixel centres at integer
coordinates (so `cx = (W - 1) / 2` for a centred principal point), depth in metres with 0 = invalid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REL_TOL = 0.05


class GeometryError(ValueError):
    """A pose or intrinsics matrix that cannot map pixels (wrong shape, not finite, singular)."""


def check_pose(pose, where: str) -> np.ndarray:
    pose = np.asarray(pose, np.float64)
    if pose.shape != (4, 4) or not np.isfinite(pose).all():
        raise GeometryError(
            f"{where}: a camera pose must be a finite 4x4 camera-to-world matrix (ScanNet marks "
            f"frames without tracking with -inf); got shape {pose.shape}"
        )
    if abs(np.linalg.det(pose[:3, :3])) < 1e-6:
        raise GeometryError(f"{where}: the pose's rotation is singular")
    return pose


def check_intrinsics(K, where: str) -> np.ndarray:
    K = np.asarray(K, np.float64)
    if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise GeometryError(f"{where}: intrinsics must be a finite 3x3 pinhole matrix with positive focal lengths")
    return K


def scale_intrinsics(K, box, out_hw) -> np.ndarray:
    """The intrinsics of crop `box` = (y, x, h, w) resized to `out_hw` (pixel-centre convention)."""
    y, x, h, w = box
    sy, sx = out_hw[0] / h, out_hw[1] / w
    K = np.array(K, np.float64)
    K[0, 0], K[1, 1] = K[0, 0] * sx, K[1, 1] * sy
    K[0, 2], K[1, 2] = (K[0, 2] - x + 0.5) * sx - 0.5, (K[1, 2] - y + 0.5) * sy - 0.5
    return K


def patch_pixels(hw, patch: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-major (rows, cols) of the pixel that stands for each patch of an `hw` frame."""
    gh, gw = hw[0] // patch, hw[1] // patch
    rows, cols = np.meshgrid(np.arange(gh) * patch + patch // 2, np.arange(gw) * patch + patch // 2, indexing="ij")
    return rows.ravel(), cols.ravel()


def backproject(rows, cols, z, K) -> np.ndarray:
    """(N, 3) camera-frame points of pixels at depth z."""
    return np.stack([(cols - K[0, 2]) * z / K[0, 0], (rows - K[1, 2]) * z / K[1, 1], z], axis=1)


def transform(points, matrix) -> np.ndarray:
    return points @ matrix[:3, :3].T + matrix[:3, 3]


@dataclass
class Matches:
    """For each patch of A (row-major): the matched patch of B (-1: none), the exact pixel (u, v) it lands on
    in B, and whether A has a valid depth there at all."""

    index: np.ndarray
    pixels: np.ndarray
    valid: np.ndarray

    @property
    def overlap(self) -> float:
        """Share of A's patches with valid depth that B sees unoccluded."""
        return float((self.index >= 0).sum() / max(1, self.valid.sum()))


def match_patches(depth_a, K_a, pose_a, depth_b, K_b, pose_b, patch: int, rel_tol: float = REL_TOL) -> Matches:
    """Patch correspondences A -> B (module docstring). Depths are (H, W) metres of the frames the
    intrinsics describe; both frames have the same size."""
    if depth_a.shape != depth_b.shape:
        raise GeometryError(f"the two views are {depth_a.shape} and {depth_b.shape}; resize them to one size")
    h, w = depth_a.shape
    rows, cols = patch_pixels((h, w), patch)
    z = depth_a[rows, cols].astype(np.float64)
    valid = z > 0
    b_from_a = np.linalg.inv(pose_b) @ pose_a
    points = transform(backproject(rows, cols, z, K_a), b_from_a)
    zb = points[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = K_b[0, 0] * points[:, 0] / zb + K_b[0, 2]
        v = K_b[1, 1] * points[:, 1] / zb + K_b[1, 2]
    ui, vi = np.round(np.nan_to_num(u, nan=-1)).astype(np.int64), np.round(np.nan_to_num(v, nan=-1)).astype(np.int64)
    gh, gw = h // patch, w // patch
    inside = valid & (zb > 0) & (ui >= 0) & (vi >= 0) & (ui < gw * patch) & (vi < gh * patch)
    seen = np.zeros_like(inside)
    seen[inside] = np.abs(depth_b[vi[inside], ui[inside]] - zb[inside]) <= rel_tol * zb[inside]
    index = np.where(seen, (vi // patch) * gw + ui // patch, -1)
    return Matches(index, np.stack([u, v], axis=1), valid)
