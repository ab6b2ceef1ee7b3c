"""ViT monocular depth estimation: `benchmark.depth.DepthEstimator` on the semantic-segmentation backbone
(ViTDet's ViT as `GridViT` + `PaddedSimpleFeaturePyramid`) with the light `DepthFPNHead`."""

from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec

from benchmark.depth import DepthEstimator, DepthFPNHead

from .semseg_vit import model as _semseg

_pyramid = {f"p{i}": L(ShapeSpec)(channels="${....backbone.out_channels}", stride=2**i) for i in (2, 3, 4, 5)}

model = L(DepthEstimator)(
    backbone=_semseg.backbone,
    depth_head=L(DepthFPNHead)(input_shape=_pyramid, conv_dims=128, common_stride=4, norm="GN", init_depth=2.0),
    pixel_mean=_semseg.pixel_mean,
    pixel_std=_semseg.pixel_std,
    min_depth=1e-3,
    max_depth=10.0,
    silog_lambda=0.5,
)
