"""pretrain/data.py: joint RGB-D augmentation, deterministic sharded sampling, clear errors for bad files."""

import itertools

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from datasets.fileio import DataError
from pretrain.data import RGBDPretrainDataset, ShardedInfiniteSampler, jitter_colors, make_loader, to_model_inputs

CPU = torch.device("cpu")


def _inputs(item) -> dict:
    """One loader item as the model's inputs, without the batch dimension."""
    return {k: v[0] for k, v in to_model_inputs(default_collate([item]), CPU).items()}


def _pair(tmp_path, name="a", h=120, w=160, depth_dtype=np.uint16):
    """Depth rises left to right in 8 flat steps (1..8 m, top rows invalid); red follows the same steps."""
    steps = np.repeat(np.arange(1, 9), w // 8)[None].repeat(h, 0)
    depth = (steps * 1000).astype(depth_dtype)
    depth[:10] = 0
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[..., 0] = steps * 30
    cv2.imwrite(str(tmp_path / f"{name}.jpg"), rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 100])
    cv2.imwrite(str(tmp_path / f"{name}.png"), depth)
    return {
        "file_name": str(tmp_path / f"{name}.jpg"),
        "depth_file_name": str(tmp_path / f"{name}.png"),
        "height": h,
        "width": w,
        "image_id": name,
    }


def test_rgb_and_depth_share_crop_and_flip_and_depth_is_never_blended(tmp_path):
    ds = RGBDPretrainDataset([_pair(tmp_path)], (48, 64), scale=(0.2, 1.0), hflip=0.5, color_jitter=0.0)
    flips = set()
    for k in range(12):
        item = _inputs(ds[(0, [0, 0, 0, k])])
        assert item["image"].shape == (3, 48, 64) and item["depth"].shape == (1, 48, 64)
        depth, valid = item["depth"][0].numpy(), item["valid"][0].numpy()
        assert set(np.unique(depth)) <= {0.0, *map(float, range(1, 9))}  # nearest: no blended depths
        assert np.array_equal(valid, depth > 0)
        rows = valid.all(1)  # rows below the invalid band
        profile_d = depth[rows].mean(0)
        profile_r = item["image"][0].numpy()[rows].astype(float).mean(0)
        if rows.any() and np.ptp(profile_d) > 0:
            assert np.corrcoef(profile_r, profile_d)[0, 1] > 0.9  # same crop and flip for both
            flips.add(bool(profile_d[0] > profile_d[-1]))
    assert flips == {True, False}  # both orientations occurred, each applied to both modalities


def test_colour_jitter_touches_rgb_only_and_same_seed_same_sample(tmp_path):
    d = _pair(tmp_path)
    plain = _inputs(RGBDPretrainDataset([d], (48, 64), color_jitter=0.0)[(0, [1, 2, 3, 4])])
    jittered = RGBDPretrainDataset([d], (48, 64), color_jitter=0.4)
    a, b = _inputs(jittered[(0, [1, 2, 3, 4])]), _inputs(jittered[(0, [1, 2, 3, 4])])
    assert np.array_equal(a["image"], b["image"]) and np.array_equal(a["depth"], b["depth"])
    assert np.array_equal(a["depth"], plain["depth"])
    assert not np.array_equal(a["image"], plain["image"])


def test_loader_hands_raw_bytes_and_the_device_converts_them_as_the_cpu_did(tmp_path):
    """Items are uint8 HWC RGB and uint16 millimetres, collated (also in a worker process) as they are;
    `to_model_inputs` makes the float32 metres the loader used to make (bit for bit), the mask and (3, H, W)."""
    ds = RGBDPretrainDataset([_pair(tmp_path)], (48, 64))
    item = ds[(0, [0, 0, 0, 1])]
    assert item["rgb"].dtype == torch.uint8 and item["rgb"].shape == (48, 64, 3) and item["rgb"].is_contiguous()
    assert item["depth_mm"].dtype == torch.uint16 and item["depth_mm"].shape == (48, 64)
    batch = next(iter(make_loader(ds, 2, workers=1, seed=0)))
    assert batch["rgb"].dtype == torch.uint8 and batch["depth_mm"].dtype == torch.uint16
    extra = torch.arange(2)
    got = to_model_inputs({**batch, "match": extra}, CPU)
    assert sorted(got) == ["depth", "image", "match", "valid"] and torch.equal(got["match"], extra)
    assert got["image"].shape == (2, 3, 48, 64) and got["image"].is_contiguous() and got["image"].dtype == torch.uint8
    assert torch.equal(got["image"], batch["rgb"].permute(0, 3, 1, 2))
    mm = batch["depth_mm"].numpy()
    assert got["depth"].dtype == torch.float32 and got["depth"].shape == (2, 1, 48, 64)
    assert np.array_equal(got["depth"][:, 0].numpy(), mm.astype(np.float32) / 1000.0)  # what the loader made
    assert torch.equal(got["valid"], torch.from_numpy(mm > 0)[:, None]) and not got["valid"].all()
    pairs = to_model_inputs({"rgb": batch["rgb"][None], "depth_mm": batch["depth_mm"][None]}, CPU)  # (B, 2, ...)
    assert pairs["image"].shape == (1, 2, 3, 48, 64) and pairs["depth"].shape == (1, 2, 1, 48, 64)


def _jitter_reference(rgb, rng, strength):
    """Colour jitter step by step: brightness, contrast about the mean grey, saturation about each grey."""
    b, c, s = rng.uniform(1 - strength, 1 + strength, size=3)
    w = np.array([0.299, 0.587, 0.114])
    x = rgb.astype(np.float64) * b
    mean_grey = (x @ w).mean()
    x = (x - mean_grey) * c + mean_grey
    grey = (x @ w)[..., None]
    x = grey + (x - grey) * s
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def test_colour_jitter_single_linear_map_matches_step_by_step_reference():
    img = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    for seed in range(20):
        fast_rng, ref_rng = np.random.default_rng(seed), np.random.default_rng(seed)
        fast, ref = jitter_colors(img, fast_rng, 0.4), _jitter_reference(img, ref_rng, 0.4)
        assert fast.dtype == np.uint8 and fast.shape == img.shape
        assert np.abs(fast.astype(int) - ref.astype(int)).max() <= 1, seed
        assert fast_rng.random() == ref_rng.random()  # same draws: the sample stream (and resume) is unchanged


def test_bad_files_name_the_file(tmp_path):
    d = _pair(tmp_path, depth_dtype=np.uint8)
    with pytest.raises(DataError, match="a.png.*16-bit"):
        RGBDPretrainDataset([d], (48, 64))[0]
    d = _pair(tmp_path, "b")
    cv2.imwrite(d["depth_file_name"], np.ones((60, 80), np.uint16))
    with pytest.raises(ValueError, match="b.png: depth is 80x60 but .*b.jpg is 160x120"):
        RGBDPretrainDataset([d], (48, 64))[0]
    with pytest.raises(DataError, match="missing"):
        RGBDPretrainDataset([{**d, "file_name": str(tmp_path / "gone.jpg")}], (48, 64))[0]


def test_sampler_shards_disjointly_and_resumes_mid_stream():
    size, world = 10, 3
    per_rank = [list(itertools.islice(ShardedInfiniteSampler(size, 5, r, world), 4)) for r in range(world)]
    first_epoch = [i for shard in per_rank for i, _ in shard]
    assert len(first_epoch) == 12 and set(first_epoch) == set(range(size))  # all, padded to 3 x 4
    full = list(itertools.islice(ShardedInfiniteSampler(size, 5, 1, world), 11))
    resumed = list(itertools.islice(ShardedInfiniteSampler(size, 5, 1, world, start=6), 5))
    assert resumed == full[6:]
    assert [i for i, _ in full[:4]] != [i for i, _ in full[4:8]]  # a fresh permutation per epoch
