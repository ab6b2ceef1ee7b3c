"""Pins our stack: detectron2's ViTDet Mask R-CNN trains one step and infers on CPU with our torch/numpy."""

import numpy as np
import torch
from detectron2.config import instantiate
from detectron2.model_zoo import get_config
from detectron2.structures import BitMasks, Boxes, Instances
from detectron2.utils.events import EventStorage


def _tiny_vitdet():
    cfg = get_config("common/models/mask_rcnn_vitdet.py")
    net = cfg.model.backbone.net
    net.img_size, net.patch_size, net.embed_dim, net.depth, net.num_heads = 64, 16, 32, 2, 2
    net.window_block_indexes, net.window_size, net.drop_path_rate = [0], 2, 0.0
    cfg.model.backbone.square_pad = 64
    cfg.model.roi_heads.num_classes = 3
    cfg.model.roi_heads.box_head.conv_dims = [16]
    cfg.model.roi_heads.mask_head.conv_dims = [16]
    cfg.model.roi_heads.batch_size_per_image = 16
    cfg.model.proposal_generator.batch_size_per_image = 32
    return instantiate(cfg.model)


def _sample(rng):
    img = torch.from_numpy(rng.integers(0, 255, (3, 48, 64), dtype=np.uint8))
    inst = Instances((48, 64))
    inst.gt_boxes = Boxes(torch.tensor([[4.0, 4.0, 30.0, 40.0], [30.0, 10.0, 60.0, 30.0]]))
    inst.gt_classes = torch.tensor([0, 2])
    masks = torch.zeros(2, 48, 64, dtype=torch.bool)
    masks[0, 4:40, 4:30] = True
    masks[1, 10:30, 30:60] = True
    inst.gt_masks = BitMasks(masks)
    return {"image": img, "instances": inst, "height": 48, "width": 64}


def test_vitdet_mask_rcnn_train_step_and_inference_on_cpu():
    torch.manual_seed(0)
    model = _tiny_vitdet()
    model.train()
    batch = [_sample(np.random.default_rng(i)) for i in range(2)]
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    with EventStorage(0):
        losses = model(batch)
    assert {"loss_cls", "loss_box_reg", "loss_mask", "loss_rpn_cls", "loss_rpn_loc"} <= set(losses)
    total = sum(losses.values())
    assert torch.isfinite(total)
    before = model.backbone.net.patch_embed.proj.weight.detach().clone()
    total.backward()
    opt.step()
    assert not torch.equal(before, model.backbone.net.patch_embed.proj.weight)

    model.eval()
    with torch.no_grad():
        out = model([{"image": batch[0]["image"], "height": 48, "width": 64}])
    inst = out[0]["instances"]
    assert inst.image_size == (48, 64)
    assert inst.pred_masks.shape[1:] == (48, 64)
