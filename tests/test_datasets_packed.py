"""Packs of pre-resized RGB-D frames: what is read back equals the decoded and resized frames, damage is named,
packing resumes and never leaves a half-written shard; the pre-training dataset on a pack."""

import os
import pickle

import cv2
import numpy as np
import pytest
import torch

from datasets.fileio import DataError, read_json
from datasets.packed import PackedFrames, PackedRGBD, pack, shard_paths


def write_frames(folder, n=6, hw=(48, 64), wide=()):
    """n JPEG + 16-bit PNG frames with distinct content; frames in `wide` are twice as wide (another aspect)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    dicts = []
    for i in range(n):
        h, w = hw[0], hw[1] * (2 if i in wide else 1)
        rgb = cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_LINEAR)
        depth = (500 + 100 * i + np.arange(w)[None].repeat(h, 0) * 10).astype(np.uint16)
        depth[:3] = 0
        cv2.imwrite(str(folder / f"{i}.jpg"), rgb)
        cv2.imwrite(str(folder / f"{i}.png"), depth)
        dicts.append(
            {"file_name": str(folder / f"{i}.jpg"), "depth_file_name": str(folder / f"{i}.png"), "image_id": f"f{i}"}
        )
    return dicts


def expected(d, size):
    """The frame decoded and resized independently of datasets.packed: centre crop to the pack's aspect, area
    averaging for colour, nearest for depth."""
    bgr, mm = cv2.imread(d["file_name"]), cv2.imread(d["depth_file_name"], cv2.IMREAD_UNCHANGED)
    h, w = size
    cw = round(bgr.shape[0] * w / h)
    x = (bgr.shape[1] - cw) // 2
    bgr, mm = bgr[:, x : x + cw], mm[:, x : x + cw]
    return (
        cv2.cvtColor(cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB),
        cv2.resize(mm, (w, h), interpolation=cv2.INTER_NEAREST),
    )


@pytest.fixture
def frames(tmp_path):
    return write_frames(tmp_path / "raw", wide=(5,))


def test_round_trip_equals_the_decoded_and_resized_frames(tmp_path, frames):
    res = pack(frames, str(tmp_path / "pack"), (24, 32), shard_frames=4, source=["toy"])
    assert (res["frames"], res["shards"], res["packed"], res["errors"]) == (6, 2, 2, [])
    packed = PackedFrames(str(tmp_path / "pack"))
    assert len(packed) == 6 and packed.size == (24, 32)
    for i, d in enumerate(frames):  # frame 5 is twice as wide: centre-cropped to 4:3 first
        rgb, depth = packed[i]
        want_rgb, want_depth = expected(d, (24, 32))
        assert rgb.dtype == np.uint8 and depth.dtype == np.uint16
        assert np.array_equal(rgb, want_rgb) and np.array_equal(depth, want_depth), i
    assert np.load(shard_paths(str(tmp_path / "pack"), 1)[0]).shape == (2, 24, 32, 3)
    again = pickle.loads(pickle.dumps(packed))  # as a spawned DataLoader worker gets it: maps its own shards
    assert not again._maps and np.array_equal(again[5][0], packed[5][0])
    item = PackedRGBD(str(tmp_path / "pack"))[2]
    want_rgb, want_depth = expected(frames[2], (24, 32))
    assert item["rgb"].dtype == torch.uint8 and np.array_equal(item["rgb"].numpy(), want_rgb)
    assert item["depth_mm"].dtype == torch.uint16 and np.array_equal(item["depth_mm"].numpy(), want_depth)


def test_truncated_or_missing_shard_is_named(tmp_path, frames):
    out = str(tmp_path / "pack")
    pack(frames, out, (24, 32), shard_frames=4)
    rgb1 = shard_paths(out, 1)[0]
    with open(rgb1, "r+b") as f:
        f.truncate(os.path.getsize(rgb1) - 100)
    with pytest.raises(DataError, match=f"{rgb1}: truncated or not a .npy shard .*re-run tools.pack_rgbd"):
        PackedFrames(out)
    with open(rgb1, "r+b") as f:
        f.truncate(30)  # inside the header
    with pytest.raises(DataError, match=f"{rgb1}: truncated or not a .npy shard"):
        PackedFrames(out)
    os.remove(rgb1)
    with pytest.raises(DataError, match=f"{rgb1}: shard is missing"):
        PackedFrames(out)
    os.remove(os.path.join(out, "index.json"))
    with pytest.raises(DataError, match="index.json: missing; packing did not finish"):
        PackedFrames(out)


def test_packing_resumes_keeps_finished_shards_and_clears_stale_temps(tmp_path, frames):
    out = tmp_path / "pack"
    pack(frames, str(out), (24, 32), shard_frames=4)
    rgb0, depth0 = shard_paths(str(out), 0)
    kept = os.stat(rgb0).st_mtime_ns
    os.remove(shard_paths(str(out), 1)[1])  # an interrupted run: shard 1's depth never landed
    (out / ".rgb_00001.npy.x7k2.tmp").write_bytes(b"half a shard")
    res = pack(frames, str(out), (24, 32), shard_frames=4)
    assert (res["packed"], res["kept"], res["errors"]) == (1, 1, [])
    assert os.stat(rgb0).st_mtime_ns == kept and not list(out.glob(".*.tmp"))
    assert np.array_equal(PackedFrames(str(out))[5][1], expected(frames[5], (24, 32))[1])


def test_a_bad_frame_leaves_no_half_written_shard(tmp_path, frames):
    out = tmp_path / "pack"
    bad = frames[4]["file_name"]
    with open(bad, "r+b") as f:
        f.truncate(200)
    res = pack(frames, str(out), (24, 32), shard_frames=4)
    assert len(res["errors"]) == 1 and res["errors"][0].startswith(f"{bad}: truncated")
    assert sorted(p.name for p in out.iterdir()) == ["depth_00000.npy", "pack.json", "rgb_00000.npy"]
    with pytest.raises(DataError, match="index.json: missing"):
        PackedFrames(str(out))


def test_another_size_into_the_same_folder_is_refused(tmp_path, frames):
    out = str(tmp_path / "pack")
    pack(frames, out, (24, 32), shard_frames=4)
    with pytest.raises(
        DataError,
        match=r"pack.json: this folder holds a pack made with size \[24, 32\], now size "
        r"\[36, 48\]; use a new --out",
    ):
        pack(frames, out, (36, 48), shard_frames=4)
    assert read_json(os.path.join(out, "pack.json"))["size"] == [24, 32]
    with pytest.raises(DataError, match="no depth_file_name"):
        pack([{"file_name": "a.jpg"}], str(tmp_path / "other"))


def test_pretraining_on_a_pack_at_the_source_size_matches_the_file_loader(tmp_path):
    from pretrain.data import RGBDPretrainDataset
    from pretrain.packed import PackedPretrainDataset

    dicts = write_frames(tmp_path / "raw", n=3)
    pack(dicts, str(tmp_path / "pack"), (48, 64))
    files, packed = RGBDPretrainDataset(dicts, (32, 48)), PackedPretrainDataset(str(tmp_path / "pack"), (32, 48))
    for item in [0, (1, [7, 0, 0, 1]), (2, [7, 0, 0, 2])]:  # centre view and two augmented draws
        a, b = files[item], packed[item]
        assert all(torch.equal(a[k], b[k]) for k in ("rgb", "depth_mm")), item


def test_speed_functions_report_rates_and_cores(tmp_path, frames):
    from pretrain import speed_packed as speed

    assert round(speed.gpu_frame_rate()) == 4579  # ViT-B mask3d, 0.45 MFU of an H100
    assert speed.cores_needed(4579, 1500) == 4
    pack(frames, str(tmp_path / "pack"), (24, 32), shard_frames=4)
    passes = {
        "plain": speed.plain_read(str(tmp_path / "pack"), n=6),
        "packed": speed.packed_read(str(tmp_path / "pack"), n=6),
    }
    got = speed.best_of_rounds(passes, rounds=2)
    assert got["plain"]["frames_per_s"] > 0 and got["packed"]["frames_per_s_cpu"] > 0
    assert len(got["packed"]["rounds"]) == 2 and got["packed"]["frames_per_s"] == max(got["packed"]["rounds"])


def test_pack_rgbd_cli_packs_a_registered_dataset(tmp_path, capsys):
    from datasets.builtin import register_all
    from tests import raw_fixtures as R
    from tools import pack_rgbd, prepare_scannet

    R.scannet_export(str(tmp_path / "raw"), scenes=("scene0000_00",), val_scenes=("scene0001_00",), frames=2)
    assert (
        prepare_scannet.main(
            [
                "--raw",
                str(tmp_path / "raw"),
                "--out",
                str(tmp_path / "data" / "scannet"),
                "--frame-skip",
                "1",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    try:
        args = [
            "scannet_rgbd_train",
            "--out",
            str(tmp_path / "pack"),
            "--size",
            "24",
            "32",
            "--workers",
            "1",
            "--root",
            str(tmp_path / "data"),
        ]
        assert pack_rgbd.main(args) == 0
        assert "2 frames of scannet_rgbd_train in 1 shards at 24x32" in capsys.readouterr().out
        assert len(PackedFrames(str(tmp_path / "pack"))) == 2
        assert (
            pack_rgbd.main(["nyuv2_rgbd_train", "--out", str(tmp_path / "p2"), "--root", str(tmp_path / "data")]) == 1
        )
        assert "tools.prepare_nyuv2" in capsys.readouterr().err
        with pytest.raises(SystemExit):
            pack_rgbd.main(["scannet_rgbd_train", "--out", str(tmp_path / "p3"), "--size", "8", "8"])
        assert "--size must be at least 16 16" in capsys.readouterr().err
    finally:
        register_all()  # later modules expect the default registration
