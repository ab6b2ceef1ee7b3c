"""Monocular depth estimation: splits, mapper, loss, evaluator metrics by hand, and a tiny run end to end."""

import json
import math

import cv2
import detectron2.data.transforms as T
import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog

from benchmark import train_net
from benchmark.depth import DepthDatasetMapper, DepthError, silog_loss
from benchmark.depth_eval import DepthEvaluator, crop_mask
from datasets.builtin import get_dicts
from datasets.depth import register_depth
from results.store import read_records

CONFIG = "benchmark/configs/scannet/depth_vit_b.py"
SYNTHETIC = [
    "dataloader.train.dataset.names=synthetic_depth_train",
    "dataloader.test.dataset.names=synthetic_depth_val",
]


def _png(path, metres):
    cv2.imwrite(str(path), np.round(np.asarray(metres, np.float64) * 1000).astype(np.uint16))
    return str(path)


def _evaluator(name, **meta):
    if name in MetadataCatalog:
        MetadataCatalog.remove(name)
    MetadataCatalog.get(name).set(evaluator_type="depth", **meta)
    evaluator = DepthEvaluator(name)
    evaluator.reset()
    return evaluator


def test_depth_splits_reuse_the_rgbd_frames_and_name_the_preparation_of_absent_ones(synthetic_root):
    rgbd, depth = DatasetCatalog.get("synthetic_rgbd_val"), DatasetCatalog.get("synthetic_depth_val")
    assert [d["depth_file_name"] for d in depth] == [d["depth_file_name"] for d in rgbd] and len(depth) == 4
    meta = MetadataCatalog.get("synthetic_depth_train")
    assert (meta.evaluator_type, meta.max_depth, meta.get("eval_crop")) == ("depth", 10.0, None)
    with pytest.raises(KeyError, match="nyuv2_depth_test.*python -m tools.prepare_nyuv2"):
        get_dicts("nyuv2_depth_test")


def test_metrics_match_a_hand_computation_over_valid_pixels_only(tmp_path):
    gt = _png(tmp_path / "a.png", [[1, 2], [4, 0]])  # 0: invalid
    empty = _png(tmp_path / "b.png", [[0, 0], [12, 12]])  # nothing in range: left out of the mean
    evaluator = _evaluator("hand_depth", min_depth=1e-3, max_depth=10.0)
    evaluator.process(
        [{"file_name": "a.jpg", "depth_file_name": gt}, {"file_name": "b.jpg", "depth_file_name": empty}],
        [{"depth": torch.tensor([[1.0, 1.0], [3.0, 5.0]])}, {"depth": torch.ones(2, 2)}],
    )
    m = evaluator.evaluate()["depth"]
    # valid (gt, pred): (1, 1), (2, 1), (4, 3); ratios 1, 2, 4/3
    expected = {
        "delta1": 1 / 3,
        "delta2": 2 / 3,
        "delta3": 2 / 3,
        "AbsRel": (0 + 1 / 2 + 1 / 4) / 3,
        "SqRel": (0 + 1 / 2 + 1 / 4) / 3,
        "RMSE": math.sqrt(2 / 3),
        "RMSE_log": math.sqrt((math.log(2) ** 2 + math.log(4 / 3) ** 2) / 3),
        "log10": (math.log10(2) + math.log10(4 / 3)) / 3,
    }
    assert m == pytest.approx(expected, abs=1e-6)


def test_eigen_crop_scales_to_the_frame_and_an_all_invalid_set_is_an_error(tmp_path):
    gt = np.full((4, 4), 2.0)
    evaluator = _evaluator("crop_depth", min_depth=1e-3, max_depth=10.0, eval_crop=(2, 4, 2, 4), eval_crop_frame=(8, 8))
    pred = torch.full((4, 4), 4.0)
    pred[1:2, 1:2] = 2.0  # the only pixel inside the crop (rows 1:2, cols 1:2 at this size) is right
    evaluator.process([{"file_name": "a.jpg", "depth_file_name": _png(tmp_path / "a.png", gt)}], [{"depth": pred}])
    assert evaluator.evaluate()["depth"]["AbsRel"] == 0.0

    evaluator = _evaluator("invalid_depth", min_depth=1e-3, max_depth=10.0)
    evaluator.process(
        [{"file_name": "a.jpg", "depth_file_name": _png(tmp_path / "z.png", np.zeros((2, 2)))}],
        [{"depth": torch.ones(2, 2)}],
    )
    with pytest.raises(DepthError, match="invalid_depth: none of its 1 frames has a valid depth"):
        evaluator.evaluate()


def test_predictions_outside_the_range_score_as_the_range_limits(tmp_path):
    """The prediction is clipped to [min_depth, max_depth] before scoring: 0 m and 20 m score exactly like
    1e-3 m and 10 m (unclipped, 0 m would make every log metric infinite)."""
    gt = _png(tmp_path / "a.png", [[1.0, 2.0], [4.0, 8.0]])
    inputs = [{"file_name": "a.jpg", "depth_file_name": gt}]

    def score(pred):
        evaluator = _evaluator("clip_depth", min_depth=1e-3, max_depth=10.0)
        evaluator.process(inputs, [{"depth": torch.tensor(pred)}])
        return evaluator.evaluate()["depth"]

    clipped = score([[1e-3, 10.0], [4.0, 10.0]])
    assert score([[0.0, 20.0], [4.0, 20.0]]) == clipped
    # by hand: (gt, pred) = (1, 0.001), (2, 10), (4, 4), (8, 10)
    assert clipped["AbsRel"] == pytest.approx((0.999 + 4 + 0 + 0.25) / 4)
    assert clipped["RMSE"] == pytest.approx(math.sqrt((0.999**2 + 64 + 0 + 4) / 4))
    assert (clipped["delta1"], clipped["delta3"]) == (0.25, 0.5)  # 10/8 = 1.25 is not below 1.25


def test_eigen_crop_on_a_non_square_frame_counts_exactly_its_pixels(tmp_path):
    """NYUv2's Eigen crop (rows 45:471, columns 41:601 of 480x640) at 1/20 scale, 24x32: rows
    round(2.25)=2 to round(23.55)=24, columns round(2.05)=2 to round(30.05)=30."""
    expected = np.zeros((24, 32), bool)
    expected[2:24, 2:30] = True
    assert np.array_equal(crop_mask((24, 32), (45, 471, 41, 601), (480, 640)), expected)
    assert crop_mask((24, 32), None, None).all()
    stretched = np.zeros((24, 64), bool)  # rows at 1/20, columns at 1/10: each axis keeps its own scale
    stretched[2:24, 4:60] = True
    assert np.array_equal(crop_mask((24, 64), (45, 471, 41, 601), (480, 640)), stretched)

    evaluator = _evaluator(
        "eigen_depth", min_depth=1e-3, max_depth=10.0, eval_crop=(45, 471, 41, 601), eval_crop_frame=(480, 640)
    )
    pred = torch.full((24, 32), 2.0)
    pred[~torch.from_numpy(expected)] = 9.0  # outside the crop: wrong, and never counted
    pred[2, 29] = 4.0  # the top-right pixel inside the crop: the only error counted
    gt = _png(tmp_path / "a.png", np.full((24, 32), 2.0))
    evaluator.process([{"file_name": "a.jpg", "depth_file_name": gt}], [{"depth": pred}])
    m = evaluator.evaluate()["depth"]
    assert m["AbsRel"] == pytest.approx(1 / (22 * 28)) and m["delta1"] == pytest.approx(1 - 1 / (22 * 28))


def test_metrics_are_averaged_over_images_not_pixels(tmp_path):
    """Two images with 1 and 3 valid pixels: each image weighs the same, whatever its pixel count."""
    a = _png(tmp_path / "a.png", [[2.0, 0.0], [0.0, 0.0]])  # one valid pixel, predicted 1 m: AbsRel 1/2
    b = _png(tmp_path / "b.png", [[2.0, 2.0], [2.0, 0.0]])  # three valid pixels, all exact: AbsRel 0
    evaluator = _evaluator("mean_depth", min_depth=1e-3, max_depth=10.0)
    evaluator.process(
        [{"file_name": "a.jpg", "depth_file_name": a}, {"file_name": "b.jpg", "depth_file_name": b}],
        [{"depth": torch.ones(2, 2)}, {"depth": torch.full((2, 2), 2.0)}],
    )
    m = evaluator.evaluate()["depth"]
    assert m["AbsRel"] == pytest.approx((0.5 + 0) / 2) and m["delta1"] == pytest.approx((0 + 1) / 2)
    assert m["RMSE"] == pytest.approx((1 + 0) / 2)  # per pixel: 0.125, 0.75 and 0.5


def test_silog_is_scale_invariant_at_lambda_one_and_ignores_invalid_pixels():
    depth = torch.tensor([[[1.0, 2.0], [4.0, 0.0]]])
    log_pred = torch.log(depth.clamp(min=1e-3)) + 0.3
    log_pred[0, 1, 1] = 7.0  # an invalid pixel: any prediction there costs nothing
    assert silog_loss(log_pred, depth, lam=1.0).item() == pytest.approx(0.0, abs=1e-6)
    assert silog_loss(log_pred, depth, lam=0.5).item() == pytest.approx(0.5 * 0.09, abs=1e-6)
    with pytest.raises(DepthError, match="no valid depth pixel"):
        silog_loss(log_pred, torch.zeros_like(depth))


def test_mapper_never_blends_valid_with_invalid_depth(tmp_path):
    depth = np.indices((6, 8)).sum(0) % 2 * 3.0 + 0.0  # a checkerboard of 3 m and invalid 0
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((6, 8, 3), np.uint8))
    d = {"file_name": str(image), "height": 6, "width": 8, "depth_file_name": _png(tmp_path / "d.png", depth)}
    out = DepthDatasetMapper(True, [T.Resize((9, 12))], max_depth=10.0)(d)
    assert out["image"].shape == (3, 9, 12) and out["depth"].shape == (9, 12)
    assert set(out["depth"].unique().tolist()) == {0.0, 3.0}
    out = DepthDatasetMapper(True, [T.Resize((9, 12))], max_depth=2.0)(d)  # beyond the range: invalid
    assert out["depth"].abs().sum() == 0
    d["depth_file_name"] = _png(tmp_path / "small.png", depth[:3])
    with pytest.raises(DepthError, match=rf"{tmp_path / 'small.png'}: depth is 8x3 but its image is 8x6"):
        DepthDatasetMapper(True, [], max_depth=10.0)(d)


def test_an_all_invalid_training_batch_is_an_error_naming_its_files(synthetic_root):
    args = train_net.build_parser().parse_args(["--config-file", CONFIG, "--tiny", *SYNTHETIC])
    cfg = train_net.load_config(args)[0]
    from detectron2.config import instantiate

    model = instantiate(cfg.model).train()
    batch = [
        {"image": torch.zeros(3, 96, 128), "depth": torch.zeros(96, 128), "depth_file_name": f"f{i}.png"}
        for i in range(2)
    ]
    with pytest.raises(DepthError, match=r"no valid depth pixel in the whole batch \(f0.png, f1.png\)"):
        model(batch)


def test_tiny_depth_run_trains_evaluates_and_records(synthetic_root, tmp_path):
    out = tmp_path / "run"
    assert (
        train_net.main(["--config-file", CONFIG, "--tiny", *SYNTHETIC, "train.max_iter=3", f"train.output_dir={out}"])
        == 0
    )
    (record,) = read_records()
    assert (record["task"], record["dataset"], record["split"], record["tiny"]) == ("depth", "synthetic", "val", True)
    m = record["metrics"]
    assert set(m) == {
        f"depth/{k}" for k in ("delta1", "delta2", "delta3", "AbsRel", "SqRel", "RMSE", "RMSE_log", "log10")
    }
    assert m["depth/delta1"] <= m["depth/delta2"] <= m["depth/delta3"]
    # the stored numbers are the final weights': evaluating them again gives exactly the same
    args = ["--config-file", CONFIG, "--tiny", "--eval-only", "--resume", *SYNTHETIC, f"train.output_dir={out}"]
    assert train_net.main(args) == 0
    assert json.loads((out / "metrics_eval.json").read_text())["record"]["metrics"] == m


@pytest.fixture
def fake_nyuv2(synthetic_root):
    """`nyuv2_sem_seg_test` as two synthetic frames; the real registrations come back afterwards."""
    from datasets.builtin import register_all
    from datasets.catalog import register, unregister

    frames = DatasetCatalog.get("synthetic_sem_seg_val")[:2]
    register("nyuv2_sem_seg_test", lambda: frames, root=str(synthetic_root))
    yield frames
    unregister("nyuv2_sem_seg_test")
    register_all(synthetic_root)


def test_nyuv2_depth_keeps_image_and_depth_with_the_eigen_crop(fake_nyuv2):
    assert register_depth(["nyuv2_sem_seg_test"], {}) == ["nyuv2_depth_test"]
    dicts = DatasetCatalog.get("nyuv2_depth_test")
    assert [d["depth_file_name"] for d in dicts] == [d["depth_file_name"] for d in fake_nyuv2]
    assert not any("sem_seg_file_name" in d for d in dicts)
    meta = MetadataCatalog.get("nyuv2_depth_test")
    assert (meta.evaluator_type, tuple(meta.eval_crop), tuple(meta.eval_crop_frame), meta.max_depth) == (
        "depth",
        (45, 471, 41, 601),
        (480, 640),
        10.0,
    )


def test_a_source_frame_without_depth_is_an_error_naming_it(fake_nyuv2):
    del fake_nyuv2[1]["depth_file_name"]
    register_depth(["nyuv2_sem_seg_test"], {})
    with pytest.raises(
        ValueError,
        match=f"nyuv2_depth_test: frame {fake_nyuv2[1]['file_name']} of nyuv2_sem_seg_test has no depth_file_name",
    ):
        get_dicts("nyuv2_depth_test")
