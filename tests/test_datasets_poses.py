"""Camera poses of ScanNet-layout trees: raw `pose/*.txt` -> `poses_<split>.json` -> `pose` in the dicts, invalid
poses dropped and counted, old trees still loading, and synthetic poses that agree with the rendered depth."""

import json
import shutil

import cv2
import numpy as np
import pytest

from datasets.fileio import DataError, read_json
from tests import raw_fixtures as R
from tools import prepare_scannet


@pytest.fixture(autouse=True, scope="module")
def _restore_catalog():
    """These tests re-point the catalog at their own roots; give later modules the default registration."""
    yield
    from datasets.builtin import register_all

    register_all()


def prep(raw, out, *extra):
    return prepare_scannet.main(["--raw", str(raw), "--out", str(out), "--workers", "1", *extra])


def dicts(root, name):
    from datasets.builtin import get_dicts, register_all

    assert name in register_all(str(root))
    return get_dicts(name)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Exported layout: scene0001_00 frame 1 lost tracking; scene0002_00 (val) frame 0 has no pose file."""
    root = tmp_path_factory.mktemp("posed")
    R.scannet_export(str(root / "raw"), frames=2, lost={("scene0001_00", 1)})
    (root / "raw" / "scans" / "scene0002_00" / "pose" / "0.txt").unlink()
    assert prep(root / "raw", root / "data" / "scannet", "--frame-skip", "1") == 0
    return root


def test_exported_poses_round_trip_and_lost_tracking_is_no_pose(exported, capsys):
    out = exported / "data" / "scannet"
    poses = read_json(str(out / "poses_train.json"))
    assert sorted(poses) == ["scene0000_00_0", "scene0000_00_1", "scene0001_00_0", "scene0001_00_1"]
    assert poses["scene0001_00_1"] is None
    for scene_index, frame in ((0, 0), (0, 1), (1, 0)):
        raw = np.loadtxt(exported / "raw" / "scans" / f"scene000{scene_index}_00" / "pose" / f"{frame}.txt")
        assert poses[f"scene000{scene_index}_00_{frame}"] == raw.tolist()
        np.testing.assert_allclose(raw, R.fixture_pose(scene_index, frame), atol=5e-7)  # '%f' keeps 6 decimals
    val_pose = np.loadtxt(exported / "raw" / "scans" / "scene0002_00" / "pose" / "1.txt").tolist()
    assert read_json(str(out / "poses_val.json")) == {"scene0002_00_1": val_pose}
    meta = read_json(str(out / "meta.json"))
    assert meta["poses"] == {
        "raw": str(exported / "raw" / "scans"),
        "train": {"file": "poses_train.json", "valid": 3, "invalid": 1, "missing": 0},
        "val": {"file": "poses_val.json", "valid": 1, "invalid": 0, "missing": 1},
    }

    train = dicts(exported / "data", "scannet_rgbd_train")
    by_id = {d["image_id"]: d for d in train}
    assert by_id["scene0000_00_1"]["pose"] == poses["scene0000_00_1"]
    assert by_id["scene0000_00_1"]["scene_id"] == "scene0000_00"
    assert "pose" not in by_id["scene0001_00_1"]  # lost tracking: no pose, never a matrix of -inf
    sem = dicts(exported / "data", "scannet_sem_seg_train_20pct")
    assert all(d["pose"] == poses[d["image_id"]] for d in sem if d["image_id"] != "scene0001_00_1")


def test_require_poses_drops_invalid_frames_and_names_missing_raw_files(exported):
    from datasets.poses import require_poses

    train = dicts(exported / "data", "scannet_rgbd_train")
    kept, dropped = require_poses(train, "scannet_rgbd_train")
    assert dropped == 1 and [d["image_id"] for d in kept] == ["scene0000_00_0", "scene0000_00_1", "scene0001_00_0"]
    val = dicts(exported / "data", "scannet_instance_val")
    with pytest.raises(DataError) as e:
        require_poses(val, "scannet_instance_val")
    missing = str(exported / "raw" / "scans" / "scene0002_00" / "pose" / "0.txt")
    assert missing in str(e.value) and "raw pose files were missing" in str(e.value)

    no_k = [dict(d) for d in train]
    del no_k[0]["intrinsics"]
    with pytest.raises(DataError, match="intrinsic/intrinsic_color.txt"):
        require_poses(no_k, "scannet_rgbd_train")
    wrong_k = [dict(d, intrinsics=R.SCANNET_K.tolist()) for d in train]  # 1296x968 intrinsics on 64x48 frames
    with pytest.raises(DataError, match="another resolution"):
        require_poses(wrong_k, "scannet_rgbd_train")


def test_frames25k_poses_follow_pose_NNNNNN_txt(tmp_path):
    raw = tmp_path / "raw"
    R.scannet_frames25k(str(raw), frames=3, lost={("scene0000_00", "000100")})
    nan = raw / "scannet_frames_25k" / "scene0001_00" / "pose" / "000200.txt"
    nan.write_text(nan.read_text().replace("1.000000", "nan", 1))
    assert prep(raw, tmp_path / "scannet") == 0
    train = read_json(str(tmp_path / "scannet" / "poses_train.json"))
    written = np.loadtxt(raw / "scannet_frames_25k" / "scene0000_00" / "pose" / "000200.txt")
    np.testing.assert_allclose(written, R.fixture_pose(0, 2), atol=5e-7)
    assert train == {
        "scene0000_00_000000": R.fixture_pose(0, 0).tolist(),
        "scene0000_00_000100": None,
        "scene0000_00_000200": written.tolist(),
    }
    assert read_json(str(tmp_path / "scannet" / "poses_val.json"))["scene0001_00_000200"] is None
    from datasets.poses import require_poses

    val = dicts(tmp_path, "scannet_rgbd_val")
    assert [("pose" in d, d["scene_id"]) for d in val] == [
        (True, "scene0001_00"),
        (True, "scene0001_00"),
        (False, "scene0001_00"),
    ]
    assert require_poses(val, "scannet_rgbd_val")[1] == 1


@pytest.mark.parametrize(
    "text, words",
    [
        ("1 0 0\n0 1 0\n0 0 1\n", "4 lines of 4 numbers"),
        ("1 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 x 1\n", "cannot read"),
        ("2 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1\n", "rigid"),
        ("1 0 0 0\n0 1 0 0\n0 0 1 0\n0.5 1 1.5 1\n", "rigid"),
    ],
)
def test_a_broken_pose_file_is_named_and_skip_bad_leaves_its_frame_without_pose(
    tmp_path, exported, capsys, text, words
):
    raw = tmp_path / "raw"
    shutil.copytree(exported / "raw", raw)
    bad = raw / "scans" / "scene0000_00" / "pose" / "1.txt"
    bad.write_text(text)
    out = tmp_path / "scannet"
    capsys.readouterr()
    assert prep(raw, out, "--frame-skip", "1") == 1
    err = capsys.readouterr().err
    assert str(bad) in err and words in err
    assert read_json(str(out / "meta.json"))["complete"] is False
    assert prep(raw, out, "--frame-skip", "1", "--skip-bad") == 0
    assert "scene0000_00_1" not in read_json(str(out / "poses_train.json"))


def test_a_tree_prepared_before_poses_still_loads_and_a_rerun_adds_them_alone(tmp_path, exported):
    out = tmp_path / "scannet"
    shutil.copytree(exported / "data" / "scannet", out)
    for split in ("train", "val"):
        (out / f"poses_{split}.json").unlink()
    meta = read_json(str(out / "meta.json"))
    del meta["poses"]
    (out / "meta.json").write_text(json.dumps(meta))
    index = read_json(str(out / "index_train.json"))
    assert set(index[0]) == {"image_id", "scene", "frame", "height", "width", "intrinsics"}  # no pose in old files

    old = dicts(tmp_path, "scannet_rgbd_train")
    assert len(old) == 4 and not any("pose" in d for d in old) and old[0]["scene_id"] == "scene0000_00"
    from datasets.poses import require_poses

    with pytest.raises(DataError) as e:
        require_poses(old, "scannet_rgbd_train")
    assert str(out / "poses_train.json") in str(e.value) and "tools.prepare_scannet" in str(e.value)

    kept = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != "meta.json"}
    stamps = {p: p.stat().st_mtime_ns for p in kept if "/scenes/" in str(p)}
    assert prep(exported / "raw", out, "--frame-skip", "1") == 0
    assert all(p.read_bytes() == b for p, b in kept.items())  # indexes and frames byte-identical
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # no frame converted again
    assert read_json(str(out / "poses_train.json")) == read_json(
        str(exported / "data" / "scannet" / "poses_train.json")
    )


def _backproject(depth_m, K, pose, v, u):
    """World points of pixels (v, u) with their depth (pixel centres at integer coordinates)."""
    z = depth_m[v, u]
    cam = np.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z])
    return pose[:3, :3] @ cam + pose[:3, 3:]


def _reprojection(a, b):
    """(predicted z, measured z, sensor sigma) in frame b of a's valid pixels that land on b's valid pixels."""
    da, db = (cv2.imread(d["depth_file_name"], cv2.IMREAD_UNCHANGED) / 1000.0 for d in (a, b))
    v, u = np.nonzero(da > 0)
    world = _backproject(da, np.array(a["intrinsics"]), np.array(a["pose"]), v, u)
    pose_b, K = np.array(b["pose"]), np.array(b["intrinsics"])
    cam = pose_b[:3, :3].T @ (world - pose_b[:3, 3:])
    z = cam[2]
    front = z > 0.1
    ub = np.rint(K[0, 0] * cam[0][front] / z[front] + K[0, 2]).astype(int)
    vb = np.rint(K[1, 1] * cam[1][front] / z[front] + K[1, 2]).astype(int)
    inside = (ub >= 0) & (ub < db.shape[1]) & (vb >= 0) & (vb < db.shape[0])
    zb = db[vb[inside], ub[inside]]
    za = da[v, u][front][inside]
    valid = zb > 0
    predicted, measured = z[front][inside][valid], zb[valid]
    # the synthetic sensor's noise (datasets.synthetic.render._sensor_noise) at each frame's depth
    sigma = np.hypot(0.0012 + 0.0019 * (za[valid] - 0.4) ** 2, 0.0012 + 0.0019 * (measured - 0.4) ** 2)
    return predicted, measured, sigma


def _moved(pose, metres):
    """The pose with its camera shifted sideways along its own x axis."""
    pose = np.array(pose)
    pose[:3, 3] += pose[:3, 0] * metres
    return pose.tolist()


def test_synthetic_poses_are_the_generators_cameras_and_reproject_depth_across_frames(synthetic_root):
    """Each frame's valid depth, lifted with its intrinsics and pose into the world and projected into another
    frame of the scene, meets that frame's depth at the nearest pixel. A point agrees within 4 sigma of both
    frames' sensor noise (sigma(z) of `datasets.synthetic.render`), 1 mm for the two millimetre roundings, and
    1.5 % of depth for rounding the projection to the nearest pixel (half a pixel across a surface slanted by
    up to ~70 degrees at fx = 116 px). Occlusion (the other frame sees something nearer) is the only large
    disagreement that correct poses allow; a frame seeing *beyond* a point the other frame saw can only come
    from a depth edge within that rounding, so it must stay rare, while a camera 10 cm off makes it common."""
    from datasets.synthetic import intrinsics, make_scene, sample_poses

    frames = dicts(synthetic_root, "synthetic_rgbd_train")
    assert all("pose" in d and d["scene_id"] == d["image_id"].rsplit("_", 1)[0] for d in frames)
    params = read_json(str(synthetic_root / "synthetic_raw" / "synthetic.json"))
    camera = intrinsics(params["height"], params["width"])  # the frames are prepared at the generated size
    assert all((d["height"], d["width"]) == (params["height"], params["width"]) for d in frames)
    np.testing.assert_allclose([d["intrinsics"] for d in frames], [camera] * len(frames), atol=5e-7)
    cams = sample_poses(
        make_scene(params["seed"], 0, "scene0000_00"),
        params["frames_per_scene"],
        np.random.default_rng([params["seed"], 0, 1]),
    )
    scene0 = [d for d in frames if d["scene_id"] == "scene0000_00"]
    assert len(scene0) == params["frames_per_scene"]
    for d in scene0:
        np.testing.assert_allclose(d["pose"], cams[int(d["image_id"].rsplit("_", 1)[1])], atol=5e-7)

    def outcome(a, b):
        predicted, measured, sigma = _reprojection(a, b)
        error, tol = measured - predicted, 4 * sigma + 0.001 + 0.015 * measured
        return predicted.size, np.sum(np.abs(error) <= tol), np.sum(error > tol)

    right, moved = np.zeros(3), np.zeros(3)
    for a in frames:
        for b in frames:
            if a is not b and a["scene_id"] == b["scene_id"]:
                n, agree, beyond = outcome(a, b)
                assert beyond <= 0.03 * n, (a["image_id"], b["image_id"], beyond, n)
                right += n, agree, beyond
                moved += outcome(a, dict(b, pose=_moved(b["pose"], 0.1)))
    assert right[0] > 50000  # co-visible points over all pairs
    assert right[2] < 0.01 * right[0] and right[1] > 0.7 * right[0]
    assert moved[2] > 0.1 * moved[0]


def test_check_dataset_counts_poses_and_names_a_broken_one(tmp_path, exported, capsys):
    from tools import check_dataset

    out = tmp_path / "scannet"
    shutil.copytree(exported / "data" / "scannet", out)
    capsys.readouterr()
    assert check_dataset.main(["scannet_rgbd_train", "--root", str(tmp_path)]) == 0
    assert "camera poses 3 of 4 images" in capsys.readouterr().out
    poses = read_json(str(out / "poses_train.json"))
    poses["scene0000_00_1"] = np.array(poses["scene0000_00_1"]).T.tolist()  # world-to-camera style mix-up
    (out / "poses_train.json").write_text(json.dumps(poses))
    assert check_dataset.main(["scannet_rgbd_train", "--root", str(tmp_path)]) == 1
    printed = capsys.readouterr().out
    assert "PROBLEM" in printed and "scene0000_00/color/1.jpg: not a camera-to-world rigid transform" in printed


def test_require_poses_on_a_set_without_poses_says_where_poses_come_from(synthetic_root):
    from datasets.poses import require_poses

    with pytest.raises(DataError, match="camera poses come with the ScanNet-layout sets"):
        require_poses(dicts(synthetic_root, "synthetic_depth_val"), "synthetic_depth_val")
    assert require_poses(dicts(synthetic_root, "synthetic_sem_seg_val"), "synthetic_sem_seg_val")[1] == 0
