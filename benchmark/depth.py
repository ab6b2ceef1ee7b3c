"""Monocular depth estimation: a Detectron2 meta-architecture, its regression head, loss and data mapper.

`DepthEstimator` is `SemanticSegmentor`'s shape with a depth head instead of a class head: the backbone
(ViTDet's ViT + `SimpleFeaturePyramid`, or a ResNet FPN) feeds `DepthFPNHead`, Panoptic FPN's light
semantic branch regressing log depth. Training minimises Eigen et al.'s scale-invariant log loss
(NIPS 2014, eq. 4) over valid pixels; inference returns `{"depth": (H, W) metres}` at each input's
original size, which `benchmark.depth_eval.DepthEvaluator` scores.

Depth is metres in memory with 0 = invalid (docs/design.md). The mapper resizes depth with nearest
neighbour interpolation (detectron2 applies segmentation transforms that way), so a valid reading is never
blended with an invalid 0, and it never pads depth: padding added later by `ImageList` is 0, invalid.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import detectron2.data.transforms as T
import numpy as np
import torch
import torch.nn.functional as F
from detectron2.data import detection_utils as utils
from detectron2.layers import ShapeSpec
from detectron2.modeling import META_ARCH_REGISTRY, Backbone
from detectron2.modeling.meta_arch.semantic_seg import SemSegFPNHead
from detectron2.modeling.postprocessing import sem_seg_postprocess
from detectron2.structures import ImageList
from torch import nn

from datasets.fileio import read_depth_png


class DepthError(ValueError):
    """Depth a model cannot learn from; the message names the files."""


def read_depth_metres(path: str, shape: Sequence[int] | None = None) -> np.ndarray:
    """(H, W) float32 metres from a uint16 millimetre PNG, 0 = invalid; a size other than `shape` is an error."""
    depth = read_depth_png(path).astype(np.float32) / 1000.0
    if shape is not None and depth.shape != tuple(shape):
        raise DepthError(
            f"{path}: depth is {depth.shape[1]}x{depth.shape[0]} but its image is "
            f"{shape[1]}x{shape[0]}; prepare depth at the image size"
        )
    return depth


class DepthDatasetMapper:
    """Image and depth of a dataset dict under the same geometric augmentations.

    Train dicts get `depth` ((H, W) float32 metres, 0 where invalid or outside [min_depth, max_depth]);
    test dicts only the image, since `DepthEvaluator` scores against the original depth file.
    Use geometric augmentations that do not pad (resize, crop, flip): detectron2 pads segmentation with 255,
    which would read as a depth of 255 m.
    """

    def __init__(
        self,
        is_train: bool,
        augmentations: list,
        image_format: str = "RGB",
        min_depth: float = 1e-3,
        max_depth: float = 10.0,
    ):
        self.is_train = is_train
        self.augmentations = T.AugmentationList(augmentations)
        self.image_format = image_format
        self.min_depth, self.max_depth = min_depth, max_depth

    def __call__(self, dataset_dict: dict) -> dict:
        d = copy.deepcopy(dataset_dict)
        image = utils.read_image(d["file_name"], format=self.image_format)
        utils.check_image_size(d, image)
        depth = None
        if self.is_train:
            depth = read_depth_metres(d["depth_file_name"], image.shape[:2])
            depth[(depth < self.min_depth) | (depth > self.max_depth)] = 0
        aug = T.AugInput(image, sem_seg=depth)
        self.augmentations(aug)
        d["image"] = torch.as_tensor(np.ascontiguousarray(aug.image.transpose(2, 0, 1)))
        if depth is not None:
            d["depth"] = torch.as_tensor(np.ascontiguousarray(aug.sem_seg), dtype=torch.float32)
        return d


def silog_loss(log_pred: torch.Tensor, depth: torch.Tensor, lam: float = 0.5) -> torch.Tensor:
    """Eigen et al.'s scale-invariant log loss, `mean(g^2) - lam * mean(g)^2` with `g = log pred - log depth`
    over each image's valid pixels (depth > 0), averaged over the images that have any.

    log_pred, depth: (B, H, W); depth in metres. A batch without a single valid pixel is a DepthError:
    its loss would be 0 and the run would silently learn nothing.
    """
    valid = depth > 0
    count = valid.flatten(1).sum(1)
    if not count.any():
        raise DepthError("no valid depth pixel in the whole batch")
    g = torch.where(valid, log_pred - torch.log(depth.clamp(min=1e-6)), torch.zeros_like(log_pred)).flatten(1)
    n = count.clamp(min=1).to(g.dtype)
    per_image = (g**2).sum(1) / n - lam * (g.sum(1) / n) ** 2
    return per_image[count > 0].mean()


class DepthFPNHead(SemSegFPNHead):
    """Panoptic FPN's semantic branch with one output channel, log depth in metres, upsampled to the input.

    The predictor's bias starts at `log(init_depth)` so early training does not start metres away from
    indoor depths.
    """

    def __init__(
        self,
        input_shape: dict[str, ShapeSpec],
        *,
        conv_dims: int = 128,
        common_stride: int = 4,
        norm: str = "GN",
        init_depth: float = 2.0,
    ):
        # keyword only: detectron2's @configurable would take a positional input_shape for a config
        super().__init__(
            input_shape=input_shape, num_classes=1, conv_dims=conv_dims, common_stride=common_stride, norm=norm
        )
        nn.init.normal_(self.predictor.weight, std=0.01)
        nn.init.constant_(self.predictor.bias, math.log(init_depth))

    def forward(self, features, targets=None):
        return F.interpolate(
            self.layers(features).float(), scale_factor=self.common_stride, mode="bilinear", align_corners=False
        )


@META_ARCH_REGISTRY.register()
class DepthEstimator(nn.Module):
    """Backbone + dense depth head; `forward` returns `{"loss_depth"}` in training, else one
    `{"depth": (H, W) metres}` per input at its `height` x `width`."""

    def __init__(
        self,
        *,
        backbone: Backbone,
        depth_head: nn.Module,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        min_depth: float = 1e-3,
        max_depth: float = 10.0,
        silog_lambda: float = 0.5,
        loss_weight: float = 1.0,
    ):
        super().__init__()
        self.backbone = backbone
        self.depth_head = depth_head
        self.min_depth, self.max_depth = min_depth, max_depth
        self.silog_lambda, self.loss_weight = silog_lambda, loss_weight
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)

    @property
    def device(self):
        return self.pixel_mean.device

    def forward(self, batched_inputs: list[dict]):
        images = [(x["image"].to(self.device) - self.pixel_mean) / self.pixel_std for x in batched_inputs]
        images = ImageList.from_tensors(
            images, self.backbone.size_divisibility, padding_constraints=self.backbone.padding_constraints
        )
        log_depth = self.depth_head(self.backbone(images.tensor))[:, 0]
        if self.training:
            if "depth" not in batched_inputs[0]:
                raise DepthError("training inputs carry no 'depth'; build the loader with DepthDatasetMapper")
            targets = ImageList.from_tensors(
                [x["depth"].to(self.device) for x in batched_inputs],
                self.backbone.size_divisibility,
                pad_value=0.0,
                padding_constraints=self.backbone.padding_constraints,
            ).tensor
            try:
                loss = silog_loss(log_depth, targets, self.silog_lambda)
            except DepthError as e:
                files = ", ".join(x.get("depth_file_name", "?") for x in batched_inputs)
                raise DepthError(
                    f"{e} ({files}): every reading is 0 (invalid) or outside "
                    f"[{self.min_depth}, {self.max_depth}] m; check these uint16 millimetre PNGs "
                    "or the dataset's depth range"
                ) from None
            return {"loss_depth": loss * self.loss_weight}
        results = []
        for pred, x, size in zip(log_depth, batched_inputs, images.image_sizes, strict=False):
            height, width = x.get("height", size[0]), x.get("width", size[1])
            depth = sem_seg_postprocess(pred[None].exp(), size, height, width)[0]
            results.append({"depth": depth.clamp(self.min_depth, self.max_depth)})
        return results
