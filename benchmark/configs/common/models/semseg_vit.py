"""ViT semantic segmentation: Detectron2's `SemanticSegmentor` on ViTDet's ViT + `SimpleFeaturePyramid`.

The backbone is ViTDet's ViT-B (`common/models/mask_rcnn_vitdet.py`) without the extra p6 level and
without square padding: 4:3 and 2:1 frames are padded only to a multiple of 32
(`benchmark.modeling.PaddedSimpleFeaturePyramid`); the ViT is `benchmark.backbones.GridViT`, which keeps a
pre-trained export's own (non-square) position grid. `model` uses
Detectron2's `SemSegFPNHead` (Panoptic FPN's semantic branch); `upernet_head` is our UperNet-style
head (`benchmark.modeling.UperNetHead`), selected with `model.sem_seg_head = upernet_head`.
"""

from detectron2 import model_zoo
from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec
from detectron2.modeling import SemanticSegmentor
from detectron2.modeling.meta_arch.semantic_seg import SemSegFPNHead

from benchmark.backbones import GridViT
from benchmark.modeling import PaddedSimpleFeaturePyramid, UperNetHead

_vitdet = model_zoo.get_config("common/models/mask_rcnn_vitdet.py").model
_vitdet.backbone._target_ = PaddedSimpleFeaturePyramid
_vitdet.backbone.top_block = None
_vitdet.backbone.square_pad = 0
_vitdet.backbone.net._target_ = GridViT

# "${....backbone.out_channels}" resolves from model.sem_seg_head.input_shape.pN to model.backbone.
_pyramid = {f"p{i}": L(ShapeSpec)(channels="${....backbone.out_channels}", stride=2**i) for i in (2, 3, 4, 5)}

model = L(SemanticSegmentor)(
    backbone=_vitdet.backbone,
    sem_seg_head=L(SemSegFPNHead)(
        input_shape=_pyramid,
        num_classes=20,
        conv_dims=128,
        common_stride=4,
        norm="GN",
        ignore_value=255,
        loss_weight=1.0,
    ),
    pixel_mean=_vitdet.pixel_mean,
    pixel_std=_vitdet.pixel_std,
)

upernet_head = L(UperNetHead)(
    input_shape=_pyramid,
    num_classes=20,
    channels=512,
    common_stride=4,
    pool_scales=(1, 2, 3, 6),
    norm="LN",
    dropout=0.1,
    ignore_value=255,
)
