"""Optimisers: AdamW with layer-wise LR decay for ViTs, SGD for ResNet-50.

ViT recipes (the paper fine-tunes ViT-B like ViTDet and MAE do):
- detection / instance segmentation: ViTDet ViT-B, AdamW lr 1e-4, weight decay 0.1, layer decay 0.7,
  drop path 0.1 (set on the backbone), no weight decay on norms and position embeddings;
- semantic segmentation: MAE/BEiT UperNet, AdamW lr 1e-4, weight decay 0.05, layer decay 0.65.
ResNet-50 recipe (Pri3D's backbone): SGD momentum 0.9, weight decay 1e-4; Pri3D's ScanNet Mask R-CNN
config uses base lr 0.0025 at batch 16.
"""

import torch
from detectron2 import model_zoo
from detectron2.config import LazyCall as L
from detectron2.solver.build import get_default_optimizer_params

from benchmark.solver import vit_layer_decay

vit_adamw = model_zoo.get_config("common/optim.py").AdamW
vit_adamw.lr = 1e-4
vit_adamw.weight_decay = 0.1
vit_adamw.params.lr_factor_func = L(vit_layer_decay)(num_layers="${model.backbone.net.depth}", rate=0.7)
vit_adamw.params.overrides = {"pos_embed": {"weight_decay": 0.0}}

r50_sgd = L(torch.optim.SGD)(
    params=L(get_default_optimizer_params)(weight_decay_norm=0.0),
    lr=0.0025,
    momentum=0.9,
    weight_decay=1e-4,
)
