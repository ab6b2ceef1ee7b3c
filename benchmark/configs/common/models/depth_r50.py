"""ResNet-50 FPN monocular depth estimation: `benchmark.depth.DepthEstimator` with `DepthFPNHead`."""

from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec

from benchmark.depth import DepthEstimator, DepthFPNHead

from .resnet import fpn, pixel_mean, pixel_std

fpn.top_block = None

model = L(DepthEstimator)(
    backbone=fpn,
    depth_head=L(DepthFPNHead)(
        input_shape={f"p{i}": L(ShapeSpec)(channels="${....backbone.out_channels}", stride=2**i) for i in (2, 3, 4, 5)},
        conv_dims=128,
        common_stride=4,
        norm="GN",
        init_depth=2.0,
    ),
    pixel_mean=pixel_mean,
    pixel_std=pixel_std,
    min_depth=1e-3,
    max_depth=10.0,
    silog_lambda=0.5,
)
