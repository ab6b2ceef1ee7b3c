"""The pre-training model's shared part: a plain ViT encoder on RGB patches (timm blocks, fixed 2D sin-cos
positions), the objective registry, the losses and depth normalisation several objectives share, and starting
the encoder from another checkpoint.

Each pre-training objective is one class in `pretrain/objectives/` (`mask3d`, `mae`, `multimae`, `pri3d`,
`none`), a subclass of `MaskedRGBD` registered in `OBJECTIVE_REGISTRY` under its `name`, the way Detectron2
registers meta-architectures (`META_ARCH_REGISTRY`). `MaskedRGBD(objective=NAME, ...)`, what the configs call,
builds the registered class NAME. A subclass declares the batch keys it reads (`batch_keys`), builds its heads or
decoder (`build`, whose keyword arguments are its `model.*` options), computes its losses (`losses`) and, if it
has any, its metrics and reconstruction picture; the trainer and the export know no objective by name
(docs/add_objective.md).

Only `patch_embed.proj` and `blocks.*` are exported (see `pretrain.export`); everything else exists for the
pretext task. Attention is timm's `Attention`, which calls `F.scaled_dot_product_attention`
(flash / memory-efficient kernels on GPU).
"""

from __future__ import annotations

import inspect
import logging
import re
from functools import partial
from pathlib import Path

import torch
from fvcore.common.registry import Registry
from timm.models.vision_transformer import Block
from torch import nn

from core.io import CheckpointError, load_weights

from .masking import check_ratio, grid_size, patchify, unpatchify

logger = logging.getLogger(__name__)

# (embed_dim, depth, num_heads): ViT-B/L from Dosovitskiy et al.; ViT-Ti/S from DeiT (Touvron et al.).
PRESETS = {"vit_t": (192, 12, 3), "vit_s": (384, 12, 6), "vit_b": (768, 12, 12), "vit_l": (1024, 24, 16)}
DEFAULT_OBJECTIVE = "mask3d"
DEPTH_NORMS = ("metric", "image", "patch")
WEIGHT_INITS = ("mae", "detectron2")  # `model.weight_init`: see MaskedRGBD._init_weights
# ImageNet statistics on 0-255 RGB: what Detectron2's ViTDet configs normalise with, so the exported
# encoder sees the same input distribution when fine-tuned.
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)
NORM_EPS = 1e-6  # LayerNorm eps of MAE/timm ViTs and of Detectron2's ViTDet configs
# What a batch key holds, for the error when an objective needs it and the batch lacks it.
BATCH_KEYS = {
    "image": "RGB images",
    "depth": "depth",
    "valid": "a depth validity mask",
    "match": "view pairs with patch matches (pretrain.pairs.PairDataset)",
    "sem_seg": "semantic labels (a *_sem_seg_* dataset; the objective's num_classes must match its stuff_classes)",
}


class ObjectiveRegistry(Registry):
    """fvcore's `Registry`, keyed by each objective's `name` (as configs and results records spell it) instead of
    its class name."""

    def register(self, obj=None):
        if obj is None:
            return self.register
        self._do_register(obj.name, obj)
        return obj


OBJECTIVE_REGISTRY = ObjectiveRegistry("OBJECTIVE")
OBJECTIVE_REGISTRY.__doc__ = "Pre-training objectives: subclasses of `MaskedRGBD`, by `model.objective` name."


def registered_objectives() -> dict[str, type]:
    """{name: class} of every registered objective, the built-in ones included."""
    import pretrain.objectives  # noqa: F401  - the built-in objectives register on import

    return dict(OBJECTIVE_REGISTRY)


def objective_class(name: str) -> type:
    """The class registered as `name`; an unknown name is an error that lists the registered ones."""
    known = registered_objectives()
    if name not in known:
        raise ValueError(
            f"model.objective={name!r} is not a registered objective; registered: {', '.join(sorted(known))} "
            f"(a new one is a class in pretrain/objectives/, see docs/add_objective.md)"
        )
    return known[name]


def sincos_pos_embed(grid: tuple[int, int], dim: int, centred: bool = False) -> torch.Tensor:
    """Fixed 2D sin-cos position embedding, (gh*gw, dim), row-major; first half encodes the row, second
    half the column. Fixed rather than learned so it can be regenerated exactly for any grid (export).
    `centred` subtracts its mean over the grid: the low frequencies' cosines are ~1 at every position, so ~80 % of
    the table's energy is one vector added to every token alike (a bias, not a position)."""
    if dim % 4:
        raise ValueError(f"embed_dim {dim} must be divisible by 4 for 2D sin-cos position embeddings")
    gh, gw = grid
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))
    rows, cols = torch.meshgrid(
        torch.arange(gh, dtype=torch.float64), torch.arange(gw, dtype=torch.float64), indexing="ij"
    )

    def encode(pos):
        angles = pos.reshape(-1, 1) * omega
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    table = torch.cat([encode(rows), encode(cols)], dim=1)
    return (table - table.mean(0) if centred else table).float()


def vit_blocks(dim: int, depth: int, heads: int, mlp_ratio: float) -> nn.ModuleList:
    """`depth` timm transformer blocks with the LayerNorm eps of MAE and ViTDet."""
    norm = partial(nn.LayerNorm, eps=NORM_EPS)
    return nn.ModuleList(Block(dim, heads, mlp_ratio, qkv_bias=True, norm_layer=norm) for _ in range(depth))


class PatchEmbed(nn.Module):
    """Conv patch embedding whose weight is named `proj` like timm's and Detectron2's."""

    def __init__(self, in_chans: int, dim: int, patch_size: int):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, patch_size, patch_size)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class MaskedRGBD(nn.Module):
    """The ViT encoder every objective pre-trains; `MaskedRGBD(objective=NAME, ...)` builds objective NAME.

    `forward(image, depth, valid, generator, **extra)` takes uint8-range RGB (B, 3, H, W), depth in metres
    (B, 1, H, W, 0 = invalid), its validity mask (from depth when None) and any further batch keys the objective
    reads (`match` for view pairs), and returns the objective's dict: `loss`, its parts, predictions and masks.
    `generator` draws the masks, so they depend on nothing but the caller's seed.
    """

    name: str = ""  # the registered name, `model.objective`
    batch_keys: tuple[str, ...] = ("image",)  # what `losses` reads from a batch (keys of BATCH_KEYS or others)
    trains: bool = True  # False: the run exports the initialisation as is
    logged: tuple[str, ...] = ()  # numbers of the losses dict the trainer logs besides the loss
    frames_per_sample: int = 1  # frames in one batch item (campaigns keep the frames per step equal)

    def __new__(cls, *args, **kwargs):
        if cls is MaskedRGBD:  # the configs' entry point: build the registered class
            cls = objective_class(kwargs.get("objective", args[0] if args else None) or DEFAULT_OBJECTIVE)
        return super().__new__(cls)

    def __init__(
        self,
        objective=None,
        preset="vit_t",
        embed_dim=None,
        depth=None,
        num_heads=None,
        mlp_ratio=4.0,
        patch_size=16,
        img_size=(240, 320),
        rgb_mask_ratio=0.75,
        depth_mask_ratio=0.75,
        weight_init="mae",
        centre_pos=False,
        **options,
    ):
        super().__init__()
        if objective not in (None, self.name):
            raise ValueError(f"objective {objective!r} given to {type(self).__name__}, which is {self.name!r}")
        if preset not in PRESETS:
            raise ValueError(f"preset {preset!r} is not one of {sorted(PRESETS)}")
        check_ratio(rgb_mask_ratio, "model.rgb_mask_ratio")
        check_ratio(depth_mask_ratio, "model.depth_mask_ratio")
        if weight_init not in WEIGHT_INITS:
            raise ValueError(f"model.weight_init={weight_init!r} is not one of {', '.join(WEIGHT_INITS)}")
        own = self._own_options(options)
        d_dim, d_depth, d_heads = PRESETS[preset]
        self.embed_dim, self.depth, self.num_heads = embed_dim or d_dim, depth or d_depth, num_heads or d_heads
        self.img_size = tuple(int(s) for s in img_size)
        self.grid = grid_size(self.img_size, patch_size)
        self.patch_size, self.mlp_ratio, self.objective, self.preset = patch_size, mlp_ratio, self.name, preset
        self.rgb_mask_ratio, self.depth_mask_ratio = rgb_mask_ratio, depth_mask_ratio
        self.weight_init, self.centre_pos = weight_init, bool(centre_pos)
        dim = self.embed_dim

        self.patch_embed = PatchEmbed(3, dim, patch_size)
        self.blocks = vit_blocks(dim, self.depth, self.num_heads, mlp_ratio)
        self.norm = nn.LayerNorm(dim, eps=NORM_EPS)
        self.register_buffer("pixel_mean", torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(PIXEL_STD).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pos_embed", sincos_pos_embed(self.grid, dim, self.centre_pos)[None], persistent=False)
        self.build(**own)
        self._init_weights()

    # --- what an objective defines -------------------------------------------------------------------------
    def build(self) -> None:
        """Builds the objective's own modules (heads, decoder) after the encoder; its keyword arguments, with their
        defaults, are the objective's `model.*` options."""

    def losses(self, batch: dict, generator: torch.Generator | None) -> dict:
        """`{"loss": total, ...}` for a batch holding (at least) `batch_keys`."""
        raise NotImplementedError(f"objective {self.name!r} defines no losses")

    def metrics(self, dataset, device: torch.device, seed: int, amp: bool = False) -> dict:
        """Figures for metrics.json and the results record after training (numbers besides the loss); none here."""
        return {}

    def picture(self, batch: dict, generator: torch.Generator, title: str = ""):
        """An RGB uint8 picture of what the model makes of `batch` under `title` (saved as reconstruction PNGs),
        or None."""
        return None

    def no_weight_decay(self) -> set[str]:
        """Parameter names (as Detectron2's optimizer `overrides` match them) kept out of weight decay."""
        return set()

    @classmethod
    def options(cls) -> dict:
        """{name: default} of the objective's `model.*` options: the keyword arguments of `build` along the MRO."""
        out = {}
        for klass in reversed(cls.__mro__):
            build = vars(klass).get("build")
            if build is not None:
                for p in list(inspect.signature(build).parameters.values())[1:]:
                    if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                        out[p.name] = p.default
        return out

    def _own_options(self, options: dict) -> dict:
        """This objective's share of `options`; the options of the other registered objectives are ignored (one
        config serves them all), any other key is an error."""
        own = self.options()
        known = set(own).union(*(c.options() for c in registered_objectives().values()))
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(
                f"model.{unknown[0]}: no such key for objective {self.name!r} (its own: "
                f"{', '.join(own) or 'none'}) or any other registered objective"
            )
        return {k: v for k, v in options.items() if k in own}

    def _init_weights(self):
        # MAE's recipe: xavier-uniform linears and patch projections, small normal for learned tokens.
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, PatchEmbed):
                nn.init.xavier_uniform_(m.proj.weight.view(m.proj.weight.shape[0], -1))
                nn.init.zeros_(m.proj.bias)
        for name, param in self.named_parameters():
            if name.endswith(("mask_token", "modality_embed")):
                nn.init.normal_(param, std=0.02)
        if self.weight_init == "detectron2":
            # The encoder as Detectron2's ViT (the benchmark's `random`) starts: truncated normal 0.02 for the
            # blocks' linears, PyTorch's default for the patch projection; ~3x smaller than xavier at ViT-Ti, a
            # remedy tried against the component shared by all output tokens (docs/interfaces.md). The fixed
            # sin-cos positions stay: the export and the benchmark regenerate them.
            for m in self.blocks.modules():
                if isinstance(m, nn.Linear):
                    nn.init.trunc_normal_(m.weight, std=0.02)
                    nn.init.zeros_(m.bias)
            self.patch_embed.proj.reset_parameters()

    # --- encoder -------------------------------------------------------------------------------------
    def pos(self, buffer_name: str, grid: tuple[int, int], dim: int, ref: torch.Tensor) -> torch.Tensor:
        """The position embedding buffer `buffer_name` at the model's grid, else one made for `grid`."""
        if grid == self.grid:
            return getattr(self, buffer_name)
        return sincos_pos_embed(grid, dim, self.centre_pos)[None].to(ref)

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        return (image.float() - self.pixel_mean) / self.pixel_std

    def embed_rgb(self, image: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        grid = grid_size(tuple(image.shape[-2:]), self.patch_size)
        x = self.patch_embed(self.normalize(image))
        return x + self.pos("pos_embed", grid, self.embed_dim, x), grid

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """The transformer blocks and the final norm over (B, L, C) tokens."""
        for blk in self.blocks:
            tokens = blk(tokens)
        return self.norm(tokens)

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """Unmasked encoder features (B, C, gh, gw) without the final norm: exactly what the benchmark's
        ViT (`benchmark.backbones.GridViT`) computes from the export at the pre-training grid."""
        x, (gh, gw) = self.embed_rgb(image)
        for blk in self.blocks:
            x = blk(x)
        return x.transpose(1, 2).reshape(x.shape[0], -1, gh, gw)

    def forward(self, image, depth=None, valid=None, generator=None, **extra) -> dict:
        if valid is None and depth is not None:
            valid = depth > 0
        batch = {"image": image, "depth": depth, "valid": valid, **extra}
        missing = [k for k in self.batch_keys if batch.get(k) is None]
        if missing:
            raise ValueError(
                f"objective {self.name!r} needs {BATCH_KEYS.get(missing[0], missing[0])}; the batch has none"
            )
        return self.losses(batch, generator)

    # --- bookkeeping ---------------------------------------------------------------------------------
    def backbone_name(self) -> str:
        """The preset's name (`vit_t`/`vit_s`/`vit_b`/`vit_l`) when the sizes match it, `vit_e{dim}d{depth}` for
        custom sizes (as the benchmark names them)."""
        if (self.embed_dim, self.depth, self.num_heads) == PRESETS[self.preset]:
            return self.preset
        return f"vit_e{self.embed_dim}d{self.depth}"

    def arch(self) -> dict:
        """What `pretrain.export` writes as metadata, enough to rebuild the encoder anywhere."""
        return {
            "embed_dim": self.embed_dim,
            "depth": self.depth,
            "num_heads": self.num_heads,
            "mlp_ratio": self.mlp_ratio,
            "patch_size": self.patch_size,
            "img_size": list(self.img_size),
            "objective": self.objective,
            "backbone": self.backbone_name(),
            "norm_eps": NORM_EPS,
            "centre_pos": self.centre_pos,
            "pixel_mean": list(PIXEL_MEAN),
            "pixel_std": list(PIXEL_STD),
        }


# --- losses shared by objectives -------------------------------------------------------------------------
def normalize_depth(depth_patches: torch.Tensor, valid_patches: torch.Tensor, mode: str):
    """Returns (target, mean, std) with depth_patches = target * std + mean on valid pixels.

    `metric` keeps metres; `image` / `patch` standardise over the valid pixels of each image / patch
    (scale-free targets, like MAE's per-patch normalised pixels)."""
    if mode == "metric":
        return depth_patches, torch.zeros_like(depth_patches[..., :1]), torch.ones_like(depth_patches[..., :1])
    dims = (1, 2) if mode == "image" else (2,)
    w = valid_patches.float()
    count = w.sum(dims, keepdim=True).clamp(min=1)
    mean = (depth_patches * w).sum(dims, keepdim=True) / count
    var = (((depth_patches - mean) * w) ** 2).sum(dims, keepdim=True) / count
    std = (var + 1e-6).sqrt()
    return (depth_patches - mean) / std, mean, std


def depth_loss(pred, depth, valid, mask, patch_size, norm="image", kind="l1"):
    """Mean L1/L2 error over valid pixels of masked depth patches only.

    pred (B, L, p*p); depth (B, 1, H, W) metres; valid (B, 1, H, W) bool; mask (B, L) True = hidden."""
    d = patchify(depth, patch_size)
    v = patchify(valid.to(d.dtype), patch_size) > 0
    target, _, _ = normalize_depth(d, v, norm)
    err = (pred - target).abs() if kind == "l1" else (pred - target) ** 2
    w = (v & mask[..., None]).to(err.dtype)
    return (err * w).sum() / w.sum().clamp(min=1)


def rgb_loss(pred, image_norm, mask, patch_size, norm_pix=True):
    """MAE's loss: per-pixel MSE, averaged over masked patches; targets optionally normalised per patch."""
    target = patchify(image_norm, patch_size)
    if norm_pix:
        target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6).sqrt()
    per_patch = ((pred - target) ** 2).mean(-1)
    m = mask.to(per_patch.dtype)
    return (per_patch * m).sum() / m.sum().clamp(min=1)


def depth_to_metres(pred, depth, valid, patch_size, grid, norm):
    """Undo the target normalisation (using the true depth's statistics) for pictures: (B, 1, H, W)."""
    d = patchify(depth, patch_size)
    _, mean, std = normalize_depth(d, patchify(valid.to(d.dtype), patch_size) > 0, norm)
    return unpatchify(pred * std + mean, patch_size, grid)


# --- starting from an existing checkpoint ----------------------------------------------------------------
_IGNORED = re.compile(r"^(pos_embed|cls_token|dist_token|reg_token|mask_token|head\.|head_dist\.|fc_norm\.|decoder)")


def read_state_dict(path: str | Path) -> dict:
    """Tensors from a MAE `.pth` (`model` key), a timm state dict, a `.safetensors` file or our export."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"init checkpoint {path} does not exist; fix train.init_checkpoint")
    try:
        sd = load_weights(path, "init checkpoint")
    except CheckpointError as e:
        raise ValueError(str(e)) from None
    for key in ("model", "state_dict", "module"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict):
        raise ValueError(f"{path} holds a {type(sd).__name__}, not a state dict")
    out = {}
    for k, v in sd.items():
        for prefix in ("module.", "backbone.net."):
            k = k[len(prefix) :] if k.startswith(prefix) else k
        out[k] = v
    return out


def load_encoder_weights(model: MaskedRGBD, path: str | Path) -> dict:
    """Start the encoder from another ViT's weights; a checkpoint of another architecture is an error.

    Learned position embeddings, cls tokens, heads and decoders are ignored (ours are fixed sin-cos and
    freshly initialised); the final `norm` may be absent (Detectron2 exports have none)."""
    sd = read_state_dict(path)
    w = sd.get("patch_embed.proj.weight")
    if w is None or w.ndim != 4:
        raise ValueError(
            f"{path}: no 'patch_embed.proj.weight' conv weight, so it is not a ViT checkpoint "
            f"(expected a MAE .pth, a timm ViT state dict, .safetensors or a pretrain export)"
        )
    n_blocks = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    found = (w.shape[0], n_blocks, w.shape[2], w.shape[1])
    wanted = (model.embed_dim, model.depth, model.patch_size, 3)
    if found != wanted:
        raise ValueError(
            f"{path} is a ViT with embed_dim={found[0]}, depth={found[1]}, patch_size={found[2]}, "
            f"in_chans={found[3]}, but the config builds embed_dim={wanted[0]}, depth={wanted[1]}, "
            f"patch_size={wanted[2]}; pick the matching model.preset / model.patch_size"
        )
    own = {k: v for k, v in model.state_dict().items() if k.startswith(("patch_embed.", "blocks.", "norm."))}
    unexpected = sorted(k for k in sd if k not in own and not _IGNORED.match(k))
    missing = sorted(k for k in own if k not in sd and not k.startswith("norm."))
    bad_shape = sorted(k for k in own if k in sd and sd[k].shape != own[k].shape)
    if unexpected or missing or bad_shape:
        raise ValueError(
            f"{path} does not match our ViT blocks: unexpected {unexpected[:5]}, missing "
            f"{missing[:5]}, wrong shape {bad_shape[:5]} (layer scale, separate q/v biases or "
            f"relative positions are not supported)"
        )
    picked = {k: sd[k].to(own[k].dtype) for k in own if k in sd}
    model.load_state_dict(picked, strict=False)
    ignored = sorted(k for k in sd if k not in own)
    logger.info(
        "init: loaded %d encoder tensors from %s (ignored %d: %s)",
        len(picked),
        path,
        len(ignored),
        ", ".join(ignored[:6]) + (" ..." if len(ignored) > 6 else ""),
    )
    return {"loaded": len(picked), "ignored": ignored}
