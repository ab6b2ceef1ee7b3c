"""Evaluators give 100 on perfect predictions and the hand-computed numbers on imperfect ones."""

import math

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.evaluation import COCOEvaluator, SemSegEvaluator
from detectron2.structures import Boxes, BoxMode, Instances
from PIL import Image

from benchmark.evaluation import format_metric, read_label_png, record_metrics, task_of


def _register(name, dicts, **meta):
    if name in DatasetCatalog:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    DatasetCatalog.register(name, lambda: dicts)
    MetadataCatalog.get(name).set(**meta)


@pytest.fixture
def semseg_set(tmp_path):
    """One 2x4 image: class 0 left half, class 1 right half, one ignored pixel (255)."""
    gt = np.array([[0, 0, 1, 1], [0, 255, 1, 1]], dtype=np.uint8)
    Image.fromarray(gt).save(tmp_path / "gt.png")
    name = "bench_test_sem_seg"
    _register(
        name,
        [
            {
                "file_name": "img.jpg",
                "sem_seg_file_name": str(tmp_path / "gt.png"),
                "height": 2,
                "width": 4,
                "image_id": "0",
            }
        ],
        stuff_classes=["a", "b"],
        ignore_label=255,
        evaluator_type="sem_seg",
    )
    return name, gt


def _semseg(name, pred):
    ev = SemSegEvaluator(name, distributed=False, sem_seg_loading_fn=read_label_png)
    ev.reset()
    logits = torch.nn.functional.one_hot(torch.as_tensor(pred, dtype=torch.long), 2).permute(2, 0, 1).float()
    ev.process([{"file_name": "img.jpg"}], [{"sem_seg": logits}])
    return ev.evaluate()


def test_sem_seg_perfect_prediction_scores_100(semseg_set):
    name, gt = semseg_set
    res = _semseg(name, np.where(gt == 255, 1, gt))  # the ignored pixel's prediction must not count
    assert res["sem_seg"]["mIoU"] == pytest.approx(100)
    assert res["sem_seg"]["fwIoU"] == pytest.approx(100)
    assert res["sem_seg"]["pACC"] == pytest.approx(100)


def test_sem_seg_hand_made_imperfect_prediction(semseg_set):
    name, _ = semseg_set
    # one class-0 pixel predicted as 1: class 0 IoU 2/3, class 1 IoU 4/5; 6 of 7 labelled pixels right.
    pred = np.array([[0, 1, 1, 1], [0, 0, 1, 1]])
    res = _semseg(name, pred)["sem_seg"]
    assert res["mIoU"] == pytest.approx(100 * (2 / 3 + 4 / 5) / 2)
    assert res["fwIoU"] == pytest.approx(100 * (3 / 7 * 2 / 3 + 4 / 7 * 4 / 5))
    assert res["pACC"] == pytest.approx(100 * 6 / 7)


def _rle(mask):
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


@pytest.fixture
def instance_set():
    """One 32x32 image with a class-0 square and a class-1 square."""
    masks = np.zeros((2, 32, 32), dtype=bool)
    masks[0, 2:12, 2:12] = True
    masks[1, 16:30, 14:30] = True
    boxes = [[2.0, 2.0, 12.0, 12.0], [14.0, 16.0, 30.0, 30.0]]
    anns = [
        {"bbox": b, "bbox_mode": BoxMode.XYXY_ABS, "category_id": c, "segmentation": _rle(m), "iscrowd": 0}
        for c, (b, m) in enumerate(zip(boxes, masks, strict=False))
    ]
    name = "bench_test_instance"
    _register(
        name,
        [{"file_name": "img.jpg", "height": 32, "width": 32, "image_id": "0", "annotations": anns}],
        thing_classes=["a", "b"],
        evaluator_type="coco",
    )
    return name, masks, boxes


def _coco(name, tmp_path, boxes, masks, classes):
    ev = COCOEvaluator(name, tasks=("bbox", "segm"), distributed=False, output_dir=str(tmp_path))
    ev.reset()
    inst = Instances((32, 32))
    inst.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32))
    inst.pred_masks = torch.as_tensor(masks)
    inst.scores = torch.ones(len(boxes))
    inst.pred_classes = torch.tensor(classes)
    ev.process([{"image_id": "0", "file_name": "img.jpg"}], [{"instances": inst}])
    return ev.evaluate()


def test_coco_perfect_prediction_scores_100(instance_set, tmp_path):
    name, masks, boxes = instance_set
    res = _coco(name, tmp_path, boxes, masks, [0, 1])
    for task in ("bbox", "segm"):
        assert res[task]["AP"] == pytest.approx(100)
        assert res[task]["AP50"] == pytest.approx(100)
        assert res[task]["AP75"] == pytest.approx(100)


def test_coco_hand_made_imperfect_prediction(instance_set, tmp_path):
    """Class 0 found exactly, class 1 predicted where nothing is: AP 100 and 0, mean 50."""
    name, masks, boxes = instance_set
    wrong = np.zeros_like(masks)
    wrong[0], wrong[1, 0:6, 20:30] = masks[0], True
    res = _coco(name, tmp_path, [boxes[0], [20.0, 0.0, 30.0, 6.0]], wrong, [0, 1])
    for task in ("bbox", "segm"):
        assert res[task]["AP50"] == pytest.approx(50)
        assert res[task]["AP"] == pytest.approx(50)


def test_records_keep_finite_metrics_and_count_no_detections_as_zero():
    nan = float("nan")
    results = {
        "bbox": {"AP": nan, "AP50": nan, "AP75": nan, "APs": nan},
        "segm": {"AP": 12.5, "AP50": 30.0, "AP75": 10.0, "APs": nan, "AP-chair": 7.0},
    }
    metrics = record_metrics(results)
    assert metrics == {
        "bbox/AP": 0.0,
        "bbox/AP50": 0.0,
        "bbox/AP75": 0.0,
        "segm/AP": 12.5,
        "segm/AP50": 30.0,
        "segm/AP75": 10.0,
        "segm/AP-chair": 7.0,
    }
    assert all(math.isfinite(v) for v in metrics.values())
    assert task_of(results) == "insseg"
    assert task_of({"bbox": {}}) == "det"
    assert task_of({"sem_seg": {}}) == "semseg"


def test_summaries_show_each_metrics_scale():
    assert format_metric("bbox/AP", 0.3) == "bbox/AP 0.30 %"
    assert format_metric("sem_seg/mIoU", 61.7) == "sem_seg/mIoU 61.70 %"
    assert format_metric("depth/RMSE", 0.5123) == "depth/RMSE 0.512 m"
    assert format_metric("depth/delta1", 0.8714) == "depth/delta1 0.871"
