"""As `semseg_vit_b.py`, with our UperNet-style head (`benchmark.modeling.UperNetHead`) in place of
Detectron2's `SemSegFPNHead` (MAE/BEiT evaluate ViTs for segmentation with UperNet)."""

from ..common.models.semseg_vit import upernet_head
from .semseg_vit_b import dataloader, lr_multiplier, model, optimizer, train

upernet_head.num_classes = model.sem_seg_head.num_classes
model.sem_seg_head = upernet_head
