"""Pri3D's view objective: patch correspondences against known geometry, the pair dataset's overlap rule and
bad inputs, and the contrastive loss."""

import json

import numpy as np
import pytest
import torch

from datasets.fileio import write_depth_mm, write_image
from datasets.synthetic import intrinsics, look_at, make_scene, render
from pretrain.correspondence import GeometryError, backproject, check_pose, match_patches, patch_pixels, transform
from pretrain.model import MaskedRGBD
from pretrain.pairs import PairDataset, PairError

H, W, P = 96, 128, 8


def _plane(z=2.0):
    return np.full((H, W), z, np.float32)


def test_sideways_translation_shifts_by_disparity():
    """A camera moved right by t sees a fronto-parallel plane at depth z shifted left by f t / z pixels."""
    K, z, t = intrinsics(H, W), 2.0, 0.25
    pose_b = np.eye(4)
    pose_b[0, 3] = t
    m = match_patches(_plane(z), K, np.eye(4), _plane(z), K, pose_b, P)
    rows, cols = patch_pixels((H, W), P)
    expected_u = cols - K[0, 0] * t / z
    np.testing.assert_allclose(m.pixels[:, 0], expected_u, atol=1e-9)
    np.testing.assert_allclose(m.pixels[:, 1], rows, atol=1e-9)
    inside = np.round(expected_u) >= 0
    expected = np.where(inside, (rows // P) * (W // P) + np.round(expected_u).astype(int) // P, -1)
    np.testing.assert_array_equal(m.index, expected)
    assert 0.5 < m.overlap < 1


def test_identity_and_occlusion():
    K = intrinsics(H, W)
    same = match_patches(_plane(), K, np.eye(4), _plane(), K, np.eye(4), P)
    np.testing.assert_array_equal(same.index, np.arange((H // P) * (W // P)))
    near = _plane()
    near[:, : W // 2] = 1.0  # in B something closer hides the left half
    hidden = match_patches(_plane(), K, np.eye(4), near, K, np.eye(4), P)
    cols = patch_pixels((H, W), P)[1]
    assert (hidden.index[cols < W // 2] == -1).all() and (hidden.index[cols >= W // 2] >= 0).all()
    holes = _plane()
    holes[::2] = 0  # invalid depth in A: those patches have nothing to match
    assert match_patches(holes, K, np.eye(4), _plane(), K, np.eye(4), P).valid.sum() < len(same.index)


def test_rendered_pair_matches_reproject_onto_the_same_3d_points():
    """Two renders of one synthetic room from nearby poses: every match's 3D point, lifted from A, is the
    point B's own depth shows at the matched pixel."""
    scene = make_scene(0, 0)
    K = intrinsics(H, W)
    centre = np.array([scene.size[0] / 4, scene.size[1] / 2, 1.4])
    target = centre + [1.5, 0.3, -0.3]
    pose_a, pose_b = look_at(centre, target), look_at(centre + [0.2, -0.15, 0.05], target + [0, 0.3, 0])
    depth_a = render(scene, K, pose_a, H, W).z
    depth_b = render(scene, K, pose_b, H, W).z
    m = match_patches(depth_a, K, pose_a, depth_b, K, pose_b, P)
    assert m.overlap > 0.5
    rows, cols = patch_pixels((H, W), P)
    ok = m.index >= 0
    world_a = transform(backproject(rows[ok], cols[ok], depth_a[rows[ok], cols[ok]], K), pose_a)
    ub, vb = np.round(m.pixels[ok]).astype(int).T
    world_b = transform(backproject(vb, ub, depth_b[vb, ub], K), pose_b)
    # B's pixel is the projection rounded to the grid: the points agree to within that half-pixel footprint.
    footprint = depth_b[vb, ub] / K[0, 0]
    assert (np.linalg.norm(world_a - world_b, axis=1) <= 0.06 * depth_b[vb, ub] + footprint).all()


def _frames(tmp_path, poses, scene="scene0000_00", depth=2.0):
    K = intrinsics(H, W)
    dicts = []
    for i, pose in enumerate(poses):
        rgb = np.random.default_rng(i).integers(0, 255, (H, W, 3), dtype=np.uint8)
        stem = str(tmp_path / f"{scene}_{i}")
        write_image(stem + ".jpg", rgb)
        write_depth_mm(stem + ".png", _plane(depth))
        dicts.append(
            {
                "file_name": stem + ".jpg",
                "depth_file_name": stem + ".png",
                "height": H,
                "width": W,
                "image_id": f"{scene}_{i}",
                "intrinsics": K.tolist(),
                "pose": None if pose is None else pose.tolist(),
            }
        )
    return dicts


def _moved(x=0.0, turn=False):
    pose = np.eye(4)
    pose[0, 3] = x
    if turn:  # looking backwards: sees nothing of the plane in front of the others
        pose[:3, :3] = np.diag([-1.0, 1.0, -1.0])
    return pose


def test_pairs_keep_overlapping_views_and_count_the_rest(tmp_path):
    dicts = _frames(tmp_path, [_moved(), _moved(0.2), _moved(turn=True)])
    dicts += _frames(tmp_path, [_moved(5.0)], scene="scene0001_00")  # alone in its scene: never paired
    pairs = PairDataset(dicts, (H, W), P)
    assert [(p.a, p.b) for p in pairs.pairs] == [(0, 1)] and pairs.skipped == 2
    item = pairs[(0, [0, 0, 0, 0])]
    assert item["rgb"].shape == (2, H, W, 3) and item["depth_mm"].shape == (2, H, W)
    assert item["rgb"].dtype == torch.uint8 and item["depth_mm"].dtype == torch.uint16
    assert item["match"].shape == ((H // P) * (W // P),) and (item["match"] >= 0).float().mean() > 0.5
    with pytest.raises(PairError, match="no two frames"):
        PairDataset(_frames(tmp_path, [_moved(), _moved(turn=True)]), (H, W), P)


def test_frames_without_pose_or_intrinsics_name_the_missing_files(tmp_path):
    dicts = _frames(tmp_path, [_moved(), _moved()])
    del dicts[1]["pose"]
    lacks = r"1 frame\(s\) lack `pose` \(the raw scene's pose/<frame>.txt\), e.g. .*_1.jpg"
    with pytest.raises(PairError, match=lacks):
        PairDataset(dicts, (H, W), P)
    dicts = _frames(tmp_path, [_moved(), _moved()])
    del dicts[0]["intrinsics"]
    with pytest.raises(PairError, match="lack `intrinsics`.*intrinsic_color.txt"):
        PairDataset(dicts, (H, W), P)
    dicts = _frames(tmp_path, [_moved(), _moved()])
    dicts[1]["intrinsics"] = np.zeros((3, 3)).tolist()
    with pytest.raises(PairError, match="_1.jpg: intrinsics must be"):
        PairDataset(dicts, (H, W), P)
    with pytest.raises(GeometryError, match="finite 4x4"):
        check_pose(np.full((4, 4), -np.inf), "x")


def test_frames_with_lost_tracking_are_left_out_with_a_count(tmp_path):
    dicts = _frames(tmp_path, [_moved(), _moved(0.2), None, _moved(0.1)])
    dicts[3]["pose"] = np.full((4, 4), -np.inf).tolist()  # ScanNet's mark of a frame without tracking
    pairs = PairDataset(dicts, (H, W), P)
    assert pairs.bad_poses == 2 and len(pairs.dicts) == 2 and len(pairs) == 1


def test_view_contrast_loss_learns_and_skips_pairs_without_matches():
    torch.manual_seed(0)
    model = MaskedRGBD(objective="pri3d", embed_dim=32, depth=1, num_heads=2, patch_size=P, img_size=(H, W))
    n = (H // P) * (W // P)
    image = torch.randint(0, 256, (3, 2, 3, H, W), dtype=torch.uint8)
    image[:, 1] = image[:, 0]
    match = torch.arange(n).repeat(3, 1)
    match[2] = -1  # a pair without a correspondence
    out = model(image, match=match)
    assert out["skipped_pairs"] == 1 and out["matches"] == 2 * n and torch.isfinite(out["loss"])
    many_to_one = torch.zeros(1, n, dtype=torch.long)  # every patch on B's patch 0: one positive only
    assert model(image[:1], match=many_to_one)["matches"] == 1
    with pytest.raises(ValueError, match="needs view pairs"):
        model(image)
    with pytest.raises(ValueError, match="none of the 1 view pairs"):
        model(image[:1], match=torch.full((1, n), -1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    first = None
    for _ in range(5):
        loss = model(image[:2], match=match[:2])["loss"]
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first
    assert not any(k.startswith(("decoder", "mask_token")) for k in model.state_dict())


def test_pri3d_pretrains_on_the_prepared_synthetic_poses(synthetic_root, tmp_path):
    """The whole path: poses from the prepared tree, pairs, matches, InfoNCE, export."""
    from tests.test_pretrain_train import _run

    out = tmp_path / "pri3d"
    assert _run(out, **{"model.objective": "pri3d", "train.max_iter": 2, "train.batch_size": 2}) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["objective"] == "pri3d" and metrics["iterations"] == 2 and (out / "backbone.pth").is_file()
