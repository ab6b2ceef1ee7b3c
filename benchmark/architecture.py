"""The backbone a checkpoint holds, read from its own tensors, so every initialisation fine-tunes on its own
architecture and never on a config preset (timm's `pretrained_cfg_overlay` habit, CroCo's rebuild-from-checkpoint).

A ViT's width, depth, MLP ratio, patch size, qkv bias and token grid are tensor shapes. Its number of heads is
not, so it comes from, in order: the checkpoint's own meta (our exports), the head dimension of Detectron2's
relative-position tables (`rel_pos_h` is (2*size-1, head_dim)), the standard widths of ViT-Ti/S/B/L/H
(192/384/768/1024/1280 -> 3/6/12/16/16 heads, DeiT's and Dosovitskiy et al.'s), and otherwise 64 channels a
head. A ResNet's depth is its blocks per stage (3-4-6-3 bottlenecks = 50, ...).

`apply` writes the shape into a benchmark config before the tiny recipe and the command-line overrides;
`check` then refuses an override that contradicts what the checkpoint holds, naming both shapes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from benchmark.backbones import is_vit, set_vit_architecture

STANDARD_HEADS = {192: 3, 384: 6, 768: 12, 1024: 16, 1280: 16}
HEAD_DIM = 64
# blocks per stage and bottleneck-or-not -> depth, Detectron2's `ResNet.make_default_stages` table
RESNET_DEPTHS = {
    ((2, 2, 2, 2), False): 18,
    ((3, 4, 6, 3), False): 34,
    ((3, 4, 6, 3), True): 50,
    ((3, 4, 23, 3), True): 101,
    ((3, 8, 36, 3), True): 152,
}
VIT_PREFIX, RESNET_PREFIX = "backbone.net.", "backbone.bottom_up."  # a whole Detectron2 model's backbone


class ArchitectureError(ValueError):
    """A checkpoint whose shape the configs cannot build, or an override that contradicts it."""


@dataclass(frozen=True)
class ViTShape:
    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float
    patch_size: int
    qkv_bias: bool
    pretrain_grid: tuple[int, int] | None  # None: the table's grid is not square and no meta says which
    heads_from: str  # "meta", "rel_pos" or "rule" (only the first two are facts an override cannot change), "config"

    def vit_kwargs(self) -> dict:
        """Arguments of Detectron2's ViT / our `GridViT`."""
        return dict(
            embed_dim=self.embed_dim,
            depth=self.depth,
            num_heads=self.num_heads,
            mlp_ratio=self.mlp_ratio,
            patch_size=self.patch_size,
            qkv_bias=self.qkv_bias,
            pretrain_grid=self.pretrain_grid,
        )

    def describe(self) -> str:
        source = "" if self.heads_from == "config" else f" (from {self.heads_from})"
        grid = f", grid {self.pretrain_grid[0]}x{self.pretrain_grid[1]}" if self.pretrain_grid else ""
        bias = "" if self.qkv_bias else ", no qkv bias"
        return (
            f"ViT {self.embed_dim} wide, {self.depth} blocks, {self.num_heads} heads{source}, "
            f"mlp {self.mlp_ratio:g}, patch {self.patch_size}{grid}{bias}"
        )


@dataclass(frozen=True)
class ResNetShape:
    depth: int

    def describe(self) -> str:
        return f"ResNet-{self.depth}"


def read(state: dict, meta: dict | None = None, where: str = "checkpoint") -> ViTShape | ResNetShape | None:
    """The shape of the backbone in `state` (ViT names as Detectron2's ViT, ResNet names as its ResNet, or a
    whole Detectron2 model); None when it holds neither."""
    meta = meta or {}
    for prefix in (VIT_PREFIX, RESNET_PREFIX):
        if any(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            break
    if "patch_embed.proj.weight" in state:
        return _vit(state, meta, where)
    if "stem.conv1.weight" in state:
        return _resnet(state, where)
    return None


def _indices(state: dict, pattern: str) -> set[int]:
    return {int(m.group(1)) for k in state if (m := re.match(pattern, k))}


def _vit(state: dict, meta: dict, where: str) -> ViTShape:
    proj = state["patch_embed.proj.weight"]
    dim, ph, pw = proj.shape[0], proj.shape[2], proj.shape[3]
    if ph != pw:
        raise ArchitectureError(f"{where}: patch embedding is {ph}x{pw}; Detectron2's ViT takes square patches")
    depth = len(_indices(state, r"blocks\.(\d+)\."))
    if depth == 0 or "blocks.0.mlp.fc1.weight" not in state:
        raise ArchitectureError(f"{where}: a patch embedding but no transformer blocks (blocks.N.*); not a ViT")
    if "num_heads" in meta:
        heads, source = int(meta["num_heads"]), "meta"
    elif "blocks.0.attn.rel_pos_h" in state:
        heads, source = dim // state["blocks.0.attn.rel_pos_h"].shape[1], "rel_pos"
    elif dim in STANDARD_HEADS or dim % HEAD_DIM == 0:
        heads, source = STANDARD_HEADS.get(dim, dim // HEAD_DIM), "rule"
    else:
        raise ArchitectureError(
            f"{where}: a {dim}-wide ViT, and neither its meta nor a standard width says how many heads it has; "
            f"set model.backbone.net.num_heads=N"
        )
    return ViTShape(
        embed_dim=dim,
        depth=depth,
        num_heads=heads,
        mlp_ratio=state["blocks.0.mlp.fc1.weight"].shape[0] / dim,
        patch_size=ph,
        qkv_bias="blocks.0.attn.qkv.bias" in state,
        pretrain_grid=_grid(state.get("pos_embed"), meta, where),
        heads_from=source,
    )


def _grid(pos_embed, meta: dict, where: str) -> tuple[int, int] | None:
    """The position table's token grid after its cls slot (every converter leaves one, as Detectron2's ViT keeps
    it): the meta's (non-square grids), else a square."""
    if pos_embed is None:
        return None
    cells = pos_embed.shape[1] - 1
    if "pretrain_grid" in meta:
        grid = tuple(int(g) for g in meta["pretrain_grid"])
        if math.prod(grid) != cells:
            raise ArchitectureError(
                f"{where}: pos_embed has {cells} tokens after its cls slot, not the {grid[0]}x{grid[1]} "
                f"pretrain_grid of its meta; export it again"
            )
        return grid
    side = math.isqrt(cells)
    return (side, side) if side * side == cells else None


def _resnet(state: dict, where: str) -> ResNetShape:
    blocks = tuple(len(_indices(state, rf"res{s}\.(\d+)\.")) for s in (2, 3, 4, 5))
    bottleneck = "res2.0.conv3.weight" in state
    depth = RESNET_DEPTHS.get((blocks, bottleneck))
    if depth is None:
        raise ArchitectureError(f"{where}: a ResNet with {blocks} blocks per stage is none of ResNet-18/34/50/101/152")
    width = state["res2.0.conv1.weight"].shape[0]
    if state["stem.conv1.weight"].shape[0] != 64 or width != 64:
        raise ArchitectureError(
            f"{where}: ResNet-{depth} with a {state['stem.conv1.weight'].shape[0]}-channel stem and {width}-channel "
            f"first blocks; the R50 configs build the standard width (64), not wide or grouped variants"
        )
    return ResNetShape(depth)


# --- configs -------------------------------------------------------------------------------------------
def apply(cfg, shape: ViTShape | ResNetShape, where: str = "checkpoint") -> None:
    """Build the config's backbone in the checkpoint's shape."""
    if isinstance(shape, ViTShape) != is_vit(cfg):
        kind = "ViT" if isinstance(shape, ViTShape) else "ResNet"
        raise ArchitectureError(
            f"{where} holds a {shape.describe()} but the config's backbone is not a {kind}; "
            f"use a {'vit_b' if kind == 'ViT' else 'r50'} config (--backbone {'vit_b' if kind == 'ViT' else 'r50'})"
        )
    if isinstance(shape, ViTShape):
        kwargs = shape.vit_kwargs()
        cfg.model.backbone.net.qkv_bias = kwargs.pop("qkv_bias")
        set_vit_architecture(cfg, **kwargs)
        return
    stages = cfg.model.backbone.bottom_up.stages
    stages.depth = shape.depth
    if shape.depth < 50:  # Detectron2's BasicBlock has no stride_in_1x1
        stages.pop("stride_in_1x1", None)


def of_config(cfg) -> ViTShape | ResNetShape:
    """The backbone a config builds (what a run record names)."""
    if not is_vit(cfg):
        return ResNetShape(int(cfg.model.backbone.bottom_up.stages.depth))
    net = cfg.model.backbone.net
    grid = net.get("pretrain_grid")
    return ViTShape(
        embed_dim=int(net.embed_dim),
        depth=int(net.depth),
        num_heads=int(net.num_heads),
        mlp_ratio=float(net.mlp_ratio),
        patch_size=int(net.patch_size),
        qkv_bias=bool(net.get("qkv_bias", True)),
        pretrain_grid=tuple(int(g) for g in grid) if grid else None,
        heads_from="config",
    )


def check(cfg, shape: ViTShape | ResNetShape, where: str = "checkpoint") -> None:
    """After the command-line overrides: the config still builds what the checkpoint holds. Heads counted by
    the rule and a grid the checkpoint cannot tell are not facts, so an override of them stands."""
    built = of_config(cfg)
    if isinstance(shape, ViTShape) and isinstance(built, ViTShape):
        facts = {"heads_from": "config"}
        if shape.heads_from == "rule":
            facts["num_heads"] = built.num_heads
        if shape.pretrain_grid is None:
            facts["pretrain_grid"] = built.pretrain_grid
        shape_as_built = replace(shape, **facts)
    else:
        shape_as_built = shape
    if shape_as_built != built:
        raise ArchitectureError(f"{where} holds a {shape.describe()} but the overrides ask for a {built.describe()}")
