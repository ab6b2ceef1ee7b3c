"""Model glue Detectron2 lacks: a UperNet-style semantic-segmentation head, and ViTDet's feature pyramid
padding non-square frames correctly.

Detectron2 ships `SemSegFPNHead` (Panoptic FPN's light semantic branch) but no UperNet, the decoder
MAE/BEiT use to fine-tune ViTs for segmentation. This head follows UperNet (Xiao et al., ECCV 2018):
a pyramid pooling module on the coarsest level, FPN top-down fusion, every level brought to the finest
stride and fused. It keeps `SemSegFPNHead`'s interface (`forward(features, targets) -> (logits, losses)`,
`ignore_value`), so configs swap one for the other.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from detectron2.layers import Conv2d, ShapeSpec, get_norm
from detectron2.modeling import SimpleFeaturePyramid
from torch import nn


class PaddedSimpleFeaturePyramid(SimpleFeaturePyramid):
    """ViTDet's `SimpleFeaturePyramid`, with inputs padded to a multiple of its coarsest stride.

    Detectron2's class reports that multiple under a misspelled key (`size_divisiblity`) which `ImageList`
    ignores; ViTDet never notices because it pads every image to a 1024 square. Without square padding (4:3
    and 2:1 frames at any scale) pyramid levels would then disagree by a pixel.
    """

    @property
    def size_divisibility(self) -> int:
        return self._size_divisibility

    @property
    def padding_constraints(self):
        return {"size_divisibility": self._size_divisibility, "square_size": self._square_pad}


def _conv(in_channels: int, out_channels: int, kernel_size: int, norm: str) -> Conv2d:
    return Conv2d(
        in_channels,
        out_channels,
        kernel_size,
        padding=kernel_size // 2,
        bias=not norm,
        norm=get_norm(norm, out_channels),
        activation=F.relu,
    )


class UperNetHead(nn.Module):
    """Predicts per-pixel logits at stride `common_stride` and upsamples them to the input size.

    `norm="LN"` (channel LayerNorm) is the default because the pooled 1x1 maps of the pyramid pooling
    module make GroupNorm with one channel per group degenerate and BatchNorm needs large batches.
    """

    def __init__(
        self,
        input_shape: dict[str, ShapeSpec],
        *,
        num_classes: int,
        channels: int = 512,
        common_stride: int = 4,
        pool_scales: Sequence[int] = (1, 2, 3, 6),
        norm: str = "LN",
        dropout: float = 0.1,
        loss_weight: float = 1.0,
        ignore_value: int = -1,
    ):
        super().__init__()
        shapes = sorted(input_shape.items(), key=lambda kv: kv[1].stride)
        if not shapes:
            raise ValueError("UperNetHead(input_shape=) cannot be empty")
        self.in_features = [name for name, _ in shapes]
        if shapes[0][1].stride != common_stride:
            raise ValueError(
                f"UperNetHead: finest feature {shapes[0][0]} has stride {shapes[0][1].stride}, "
                f"expected common_stride={common_stride}"
            )
        self.common_stride = common_stride
        self.ignore_value = ignore_value
        self.loss_weight = loss_weight

        top_channels = shapes[-1][1].channels
        self.ppm = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(scale), _conv(top_channels, channels, 1, norm)) for scale in pool_scales
        )
        self.ppm_bottleneck = _conv(top_channels + len(pool_scales) * channels, channels, 3, norm)
        self.lateral_convs = nn.ModuleList(_conv(s.channels, channels, 1, norm) for _, s in shapes[:-1])
        self.fpn_convs = nn.ModuleList(_conv(channels, channels, 3, norm) for _ in shapes[:-1])
        self.fuse = _conv(len(shapes) * channels, channels, 3, norm)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.predictor = nn.Conv2d(channels, num_classes, kernel_size=1)
        nn.init.normal_(self.predictor.weight, std=0.01)
        nn.init.zeros_(self.predictor.bias)

    def layers(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        feats = [features[name] for name in self.in_features]
        top = feats[-1]
        pooled = [
            F.interpolate(branch(top), size=top.shape[-2:], mode="bilinear", align_corners=False) for branch in self.ppm
        ]
        levels = [conv(f) for conv, f in zip(self.lateral_convs, feats[:-1], strict=False)]
        levels.append(self.ppm_bottleneck(torch.cat([top, *pooled], dim=1)))
        for i in range(len(levels) - 1, 0, -1):  # top-down pathway
            levels[i - 1] = levels[i - 1] + F.interpolate(
                levels[i], size=levels[i - 1].shape[-2:], mode="bilinear", align_corners=False
            )
        outs = [conv(level) for conv, level in zip(self.fpn_convs, levels[:-1], strict=False)] + [levels[-1]]
        size = outs[0].shape[-2:]
        outs = [outs[0]] + [F.interpolate(o, size=size, mode="bilinear", align_corners=False) for o in outs[1:]]
        return self.predictor(self.dropout(self.fuse(torch.cat(outs, dim=1))))

    def forward(self, features, targets=None):
        x = F.interpolate(
            self.layers(features).float(), scale_factor=self.common_stride, mode="bilinear", align_corners=False
        )
        if self.training:
            loss = F.cross_entropy(x, targets, reduction="mean", ignore_index=self.ignore_value)
            return None, {"loss_sem_seg": loss * self.loss_weight}
        return x, {}
