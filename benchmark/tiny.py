"""The `tiny` recipe of every benchmark config: the same meta-architecture, data and code path, shrunk
to run on a CPU in seconds (tests, `make bench-*` on the synthetic tree). `tiny` names this recipe (the
`--tiny` flag and the record's `tiny` field), not a model size: its ViT is `CPU_VIT`, far smaller than
ViT-Ti (the pre-training preset `vit_t`).

One function shrinks any config (`train_net --tiny`), so no config needs a hand-kept tiny twin:
- frames resized to a 96-pixel short edge, keeping the dataset's aspect ratio (96x128 indoor, 96x192
  Cityscapes); flip as the only augmentation; batch 2, no loader workers;
- ViT: `CPU_VIT` (96 wide, 4 blocks, 3 heads, patch 16) for `random` only: an init's backbone keeps the shape
  its checkpoint holds (`benchmark.architecture`), the recipe never shrinks it; no drop path; no window
  attention, since one window would cover the 6x8-token frame anyway; ResNets keep their real shape;
- 32-channel pyramid and heads, small RPN/RoI sampling; 200 iterations, 10 warm-up, a 10x larger base LR;
- CUDA and mixed precision when a GPU is present, CPU otherwise.
"""

from __future__ import annotations

import detectron2.data.transforms as T
import torch
from detectron2.config import LazyCall as L

from benchmark.backbones import is_vit, set_vit_architecture

CPU_VIT = dict(embed_dim=96, depth=4, num_heads=3, mlp_ratio=4.0, patch_size=16)
SHORT_EDGE = 96
CHANNELS = 32


def _frame_long_edge(cfg) -> int:
    """Long edge at a 96-pixel short edge, from the config's test-time resize (480x640 -> 128)."""
    resize = cfg.dataloader.test.mapper.augmentations[0]
    short = resize.short_edge_length
    short = short if isinstance(short, int) else short[0]
    return round(SHORT_EDGE * resize.max_size / short)


def make_tiny(cfg, keep_backbone: bool = False) -> None:
    """Shrink a loaded benchmark config in place (before command-line overrides, which still win); with
    `keep_backbone` (an init gave the backbone its shape) the ViT's width, depth and patch stay as they are."""
    long_edge = _frame_long_edge(cfg)
    loaders = cfg.dataloader
    loaders.train.mapper.augmentations = [
        L(T.ResizeShortestEdge)(short_edge_length=[SHORT_EDGE], max_size=long_edge, sample_style="choice"),
        L(T.RandomFlip)(horizontal=True),
    ]
    loaders.test.mapper.augmentations = [L(T.ResizeShortestEdge)(short_edge_length=SHORT_EDGE, max_size=long_edge)]
    loaders.train.total_batch_size = 2
    loaders.train.num_workers = 0
    loaders.test.num_workers = 0

    model = cfg.model
    if is_vit(cfg):
        if not keep_backbone:
            set_vit_architecture(cfg, **CPU_VIT)
        model.backbone.net.img_size = long_edge
        model.backbone.net.window_size = 0
        model.backbone.net.drop_path_rate = 0.0
    model.backbone.out_channels = CHANNELS
    for name in ("sem_seg_head", "depth_head"):
        if name in model:
            head = model[name]
            head["channels" if "channels" in head else "conv_dims"] = CHANNELS
    if "roi_heads" in model:
        _shrink_rcnn(model)

    cfg.optimizer.lr = cfg.optimizer.lr * 10
    cfg.lr_multiplier.warmup_iters = 10
    train = cfg.train
    train.max_iter = 200
    train.checkpointer.period = 200
    train.log_period = 20
    train.device = "cuda" if torch.cuda.is_available() else "cpu"
    train.amp.enabled = train.device == "cuda"


def _shrink_rcnn(model) -> None:
    rpn, roi = model.proposal_generator, model.roi_heads
    rpn.head.in_channels = CHANNELS
    rpn.batch_size_per_image = 64
    rpn.pre_nms_topk = (200, 100)
    rpn.post_nms_topk = (100, 50)
    roi.batch_size_per_image = 32
    roi.box_head.input_shape.channels = CHANNELS
    roi.box_head.conv_dims = [CHANNELS] if roi.box_head.conv_dims else []
    roi.box_head.fc_dims = [64]
    roi.box_predictor.input_shape.channels = 64
    roi.mask_head.input_shape.channels = CHANNELS
    roi.mask_head.conv_dims = [CHANNELS]
