"""Model glue: frames whose size is no multiple of 32 go through every ViT meta-architecture."""

import numpy as np
import pytest
import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.structures import BitMasks, Boxes, Instances
from detectron2.utils.events import EventStorage

from benchmark.tiny import make_tiny

H, W = 100, 130  # neither a multiple of 32 nor of the 16-pixel patch


def _model(config):
    cfg = LazyConfig.load(config)
    make_tiny(cfg)
    torch.manual_seed(0)
    return instantiate(cfg.model)


def _image():
    return torch.from_numpy(np.random.default_rng(0).integers(0, 255, (3, H, W), dtype=np.uint8))


@pytest.mark.parametrize(
    "config", ["benchmark/configs/scannet/semseg_vit_b.py", "benchmark/configs/scannet/semseg_vit_b_upernet.py"]
)
def test_semseg_trains_and_predicts_at_any_frame_size(config):
    model = _model(config)
    target = torch.zeros(H, W, dtype=torch.long)
    target[:, W // 2 :] = 1
    target[0] = 255
    with EventStorage(0):
        losses = model([{"image": _image(), "sem_seg": target}])
    assert torch.isfinite(losses["loss_sem_seg"])
    losses["loss_sem_seg"].backward()
    model.eval()
    with torch.no_grad():
        out = model([{"image": _image(), "height": H, "width": W}])
    assert out[0]["sem_seg"].shape == (model.sem_seg_head.predictor.out_channels, H, W)


def test_mask_rcnn_trains_and_predicts_at_any_frame_size():
    model = _model("benchmark/configs/scannet/insseg_vit_b.py")
    inst = Instances((H, W))
    inst.gt_boxes = Boxes(torch.tensor([[5.0, 5.0, 60.0, 90.0]]))
    inst.gt_classes = torch.tensor([3])
    masks = torch.zeros(1, H, W, dtype=torch.bool)
    masks[0, 5:90, 5:60] = True
    inst.gt_masks = BitMasks(masks)
    with EventStorage(0):
        losses = model([{"image": _image(), "instances": inst}])
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():
        out = model([{"image": _image(), "height": H, "width": W}])
    assert out[0]["instances"].image_size == (H, W)
