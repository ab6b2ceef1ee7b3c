"""ResNet-50 FPN semantic segmentation: `SemanticSegmentor` with Detectron2's `SemSegFPNHead`."""

from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec
from detectron2.modeling import SemanticSegmentor
from detectron2.modeling.meta_arch.semantic_seg import SemSegFPNHead

from .resnet import fpn, pixel_mean, pixel_std

fpn.top_block = None

model = L(SemanticSegmentor)(
    backbone=fpn,
    sem_seg_head=L(SemSegFPNHead)(
        input_shape={f"p{i}": L(ShapeSpec)(channels="${....backbone.out_channels}", stride=2**i) for i in (2, 3, 4, 5)},
        num_classes=20,
        conv_dims=128,
        common_stride=4,
        norm="GN",
        ignore_value=255,
        loss_weight=1.0,
    ),
    pixel_mean=pixel_mean,
    pixel_std=pixel_std,
)
