"""Backbone facts read from, and written into, a LazyConfig (ViT shape, the name runs are recorded under),
and the ViT the benchmark configs build."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pydoc import locate

import torch
from detectron2.modeling.backbone.fpn import LastLevelMaxPool
from detectron2.modeling.backbone.vit import ViT
from timm.layers import resample_abs_pos_embed

# (embed_dim, depth) -> the names `docs/interfaces.md` uses for standard ViTs.
STANDARD_VITS = {(192, 12): "vit_t", (384, 12): "vit_s", (768, 12): "vit_b", (1024, 24): "vit_l", (1280, 32): "vit_h"}


class GridViT(ViT):
    """Detectron2's ViT whose position table keeps the pre-training token grid, square or not.

    Detectron2 assumes a square pre-training grid, so an encoder pre-trained on 240x320 frames (15x20 tokens)
    would see positions interpolated from a square stand-in even at its own resolution. Here the table is
    `pretrain_grid` (rows, cols) as stored (plus the cls slot Detectron2 keeps), added unchanged at that grid
    and resized with timm's `resample_abs_pos_embed` at any other. Without `pretrain_grid` it is
    Detectron2's square `pretrain_img_size / patch_size` grid, so square checkpoints load as before.
    """

    def __init__(self, *args, pretrain_grid: Sequence[int] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.pretrain_grid = None
        if self.pos_embed is None:
            return
        cls, dim = int(self.pretrain_use_cls_token), self.pos_embed.shape[2]
        if pretrain_grid is None:
            side = math.isqrt(self.pos_embed.shape[1] - cls)
            self.pretrain_grid = (side, side)
        else:
            self.pretrain_grid = tuple(int(g) for g in pretrain_grid)
            self.pos_embed = torch.nn.Parameter(torch.zeros(1, cls + math.prod(self.pretrain_grid), dim))
            torch.nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def abs_pos(self, grid: tuple[int, int]) -> torch.Tensor:
        """(1, rows, cols, C) position embeddings for a token grid."""
        pos = self.pos_embed[:, 1:] if self.pretrain_use_cls_token else self.pos_embed
        if tuple(grid) != self.pretrain_grid:
            pos = resample_abs_pos_embed(pos, list(grid), list(self.pretrain_grid), num_prefix_tokens=0)
        return pos.reshape(1, *grid, pos.shape[-1])

    def forward(self, x):
        x = self.patch_embed(x)
        if self.pos_embed is not None:
            x = x + self.abs_pos((x.shape[1], x.shape[2]))
        for blk in self.blocks:
            x = blk(x)
        return {self._out_features[0]: x.permute(0, 3, 1, 2)}


def is_vit(cfg) -> bool:
    """Whether the config's backbone is (a pyramid around) Detectron2's ViT; `_target_` is a class in a
    loaded config and its dotted name once saved to yaml."""
    if "net" not in cfg.model.backbone:
        return False
    target = cfg.model.backbone.net.get("_target_")
    target = locate(target) if isinstance(target, str) else target
    return isinstance(target, type) and issubclass(target, ViT)


def global_blocks(depth: int) -> list[int]:
    """ViTDet's four evenly spaced global-attention blocks (2, 5, 8, 11 for depth 12); shallower ViTs get
    every block global, deeper ones the same four-way split."""
    return sorted({math.ceil((k + 1) * depth / 4) - 1 for k in range(4)})


def set_vit_architecture(
    cfg,
    embed_dim: int,
    depth: int,
    num_heads: int,
    mlp_ratio: float = 4.0,
    patch_size: int = 16,
    pretrain_grid: Sequence[int] | None = None,
) -> None:
    """Reshape the config's ViT; window attention stays on every block that is not global.

    `pretrain_grid` (rows, cols) is the checkpoint's position-table grid, so the `GridViT` allocates exactly
    that table and resizes it at run time to each frame's token grid.
    """
    if embed_dim % num_heads:
        raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
    net = cfg.model.backbone.net
    net.embed_dim, net.depth, net.num_heads = int(embed_dim), int(depth), int(num_heads)
    net.mlp_ratio, net.patch_size = float(mlp_ratio), int(patch_size)
    glob = set(global_blocks(depth))
    net.window_block_indexes = [i for i in range(depth) if i not in glob]
    if pretrain_grid:
        target = locate(net._target_) if isinstance(net._target_, str) else net._target_
        if not issubclass(target, GridViT):
            raise ValueError(
                f"the config's ViT is {target.__name__}, which cannot keep a {pretrain_grid} "
                f"pre-training grid; build benchmark.backbones.GridViT"
            )
        net.pretrain_grid = [int(g) for g in pretrain_grid]


class MaxPoolP5(LastLevelMaxPool):
    """p5 by max-pooling p4: Detectron2's `LastLevelMaxPool` reads p5 (to make p6)."""

    def __init__(self):
        super().__init__()
        self.in_feature = "p4"


PYRAMID_STRIDES = (4, 8, 16, 32)  # p2..p5, what every head's input_shape expects
SFP_SCALES = (4.0, 2.0, 1.0, 0.5)  # the scale factors Detectron2's SimpleFeaturePyramid can build


def fit_pyramid(cfg) -> None:
    """Keep the ViT pyramid at strides 4..32 whatever the patch size (ViTDet's scales assume patch 16).

    A patch-8 ViT gets scales (2, 1, 0.5) and, when the config has no top block, p5 by max-pooling p4
    (`MaxPoolP5`). Pyramids that already need a top block (Mask R-CNN's p6) cannot add one:
    a clear error instead of a missing level at the first step.
    """
    if not is_vit(cfg):
        return
    from detectron2.config import LazyCall as L

    patch = cfg.model.backbone.net.patch_size
    scales = [patch / s for s in PYRAMID_STRIDES]
    built = [s for s in scales if s in SFP_SCALES]
    if len(built) == len(scales):
        cfg.model.backbone.scale_factors = tuple(built)
        return
    if len(built) != len(scales) - 1 or scales[-1] in built:
        raise ValueError(f"a ViT with patch {patch} cannot give pyramid strides {PYRAMID_STRIDES}; use patch 8 or 16")
    if cfg.model.backbone.get("top_block") is not None:
        raise ValueError(
            f"patch {patch}: this config's pyramid already uses its top block for an extra level (p6), so it cannot "
            f"also max-pool p5; use patch 16 here"
        )
    cfg.model.backbone.scale_factors = tuple(built)
    cfg.model.backbone.top_block = L(MaxPoolP5)()


def backbone_name(cfg) -> str:
    """`vit_b`, `vit_s`, ... for standard ViTs, `vit_e{dim}d{depth}` otherwise; `r{depth}` for ResNets."""
    if is_vit(cfg):
        net = cfg.model.backbone.net
        return STANDARD_VITS.get((net.embed_dim, net.depth), f"vit_e{net.embed_dim}d{net.depth}")
    return f"r{cfg.model.backbone.bottom_up.stages.depth}"
