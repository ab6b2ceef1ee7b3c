"""Backbone facts read from, and written into, a LazyConfig: ViT shape and the name runs are recorded under."""
from __future__ import annotations

import math
from pydoc import locate

from detectron2.modeling.backbone.vit import ViT

# (embed_dim, depth) -> the names `docs/interfaces.md` uses for standard ViTs.
STANDARD_VITS = {(192, 12): "vit_t", (384, 12): "vit_s", (768, 12): "vit_b", (1024, 24): "vit_l", (1280, 32): "vit_h"}
VIT_ARCH_KEYS = ("embed_dim", "depth", "num_heads", "mlp_ratio", "patch_size")


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


def set_vit_architecture(cfg, embed_dim: int, depth: int, num_heads: int, mlp_ratio: float = 4.0,
                         patch_size: int = 16, pretrain_grid: int | None = None) -> None:
    """Reshape the config's ViT; window attention stays on every block that is not global.

    `pretrain_grid` is the side of the checkpoint's square position-embedding grid, so Detectron2's ViT
    allocates exactly that table and interpolates it once, at run time, to the frame's token grid.
    """
    if embed_dim % num_heads:
        raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
    net = cfg.model.backbone.net
    net.embed_dim, net.depth, net.num_heads = int(embed_dim), int(depth), int(num_heads)
    net.mlp_ratio, net.patch_size = float(mlp_ratio), int(patch_size)
    glob = set(global_blocks(depth))
    net.window_block_indexes = [i for i in range(depth) if i not in glob]
    if pretrain_grid:
        net.pretrain_img_size = int(pretrain_grid) * int(patch_size)


def backbone_name(cfg) -> str:
    """`vit_b`, `vit_s`, ... for standard ViTs, `vit_e{dim}d{depth}` otherwise; `r{depth}` for ResNets."""
    if is_vit(cfg):
        net = cfg.model.backbone.net
        return STANDARD_VITS.get((net.embed_dim, net.depth), f"vit_e{net.embed_dim}d{net.depth}")
    return f"r{cfg.model.backbone.bottom_up.stages.depth}"
