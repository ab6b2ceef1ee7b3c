"""Masked RGB-D pre-training model: a plain ViT encoder on RGB patches, a light decoder, and the losses of
the three objectives we compare on the same data and budget.

- `mask3d` (Hou et al. 2023): the encoder sees the visible RGB patches only; visible depth patches are
  embedded and join the encoded RGB tokens in the decoder (the paper's Fig. 1 feeds depth patches to the
  decoder), which predicts the dense depth of every patch. Loss on masked depth patches.
- `mae` (He et al. 2022): RGB reconstructed from masked RGB, no depth.
- `multimae` (Bachmann et al. 2022, simplified): visible RGB and depth tokens both enter the encoder
  (modality embeddings tell them apart); one shared decoder reconstructs both.
- `pri3d` (Hou et al. 2021, the "View" variant): two overlapping frames of one scene, whole and unmasked;
  InfoNCE between the projected tokens of patches that see the same 3D point (`pretrain.correspondence`,
  pairs from `pretrain.pairs`), each match's other matches in the batch as negatives (PointContrast's
  PointInfoNCE, which Pri3D builds on) at temperature 0.4 (Pri3D's `pretrain.nceT=0.4` in its ScanNet
  script). No decoder.
- `none`: no pretext task; the run exports the freshly initialised encoder (a from-scratch baseline with
  our initialisation).

Only `patch_embed.proj` and `blocks.*` are exported (see `pretrain.export`); everything else exists for the
pretext task. Attention is timm's `Attention`, which calls `F.scaled_dot_product_attention`
(flash / memory-efficient kernels on GPU).
"""

from __future__ import annotations

import logging
import re
from functools import partial
from pathlib import Path

import torch
from timm.models.vision_transformer import Block
from torch import nn

from core.io import CheckpointError, load_weights

from .masking import check_ratio, gather_tokens, grid_size, patchify, random_masking, unpatchify

logger = logging.getLogger(__name__)

# (embed_dim, depth, num_heads): ViT-B/L from Dosovitskiy et al.; ViT-Ti/S from DeiT (Touvron et al.).
PRESETS = {"vit_t": (192, 12, 3), "vit_s": (384, 12, 6), "vit_b": (768, 12, 12), "vit_l": (1024, 24, 16)}
OBJECTIVES = ("mask3d", "mae", "multimae", "pri3d", "none")
NO_DECODER = ("pri3d", "none")
DEPTH_NORMS = ("metric", "image", "patch")
# ImageNet statistics on 0-255 RGB: what Detectron2's ViTDet configs normalise with, so the exported
# encoder sees the same input distribution when fine-tuned.
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)
NORM_EPS = 1e-6  # LayerNorm eps of MAE/timm ViTs and of Detectron2's ViTDet configs


def sincos_pos_embed(grid: tuple[int, int], dim: int) -> torch.Tensor:
    """Fixed 2D sin-cos position embedding, (gh*gw, dim), row-major; first half encodes the row, second
    half the column. Fixed rather than learned so it can be regenerated exactly for any grid (export)."""
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

    return torch.cat([encode(rows), encode(cols)], dim=1).float()


def _blocks(dim: int, depth: int, heads: int, mlp_ratio: float) -> nn.ModuleList:
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
    """ViT encoder + light decoder for `mask3d`, `mae` or `multimae` pre-training.

    `forward(image, depth, valid, generator)` takes uint8-range RGB (B, 3, H, W), depth in metres
    (B, 1, H, W, 0 = invalid) and its validity mask, and returns a dict with `loss`, per-modality losses,
    predictions (patchified) and the masks used.
    """

    def __init__(
        self,
        objective="mask3d",
        preset="vit_t",
        embed_dim=None,
        depth=None,
        num_heads=None,
        mlp_ratio=4.0,
        patch_size=16,
        img_size=(240, 320),
        rgb_mask_ratio=0.75,
        depth_mask_ratio=0.75,
        decoder_dim=512,
        decoder_depth=8,
        decoder_heads=16,
        depth_loss="l1",
        depth_norm="image",
        rgb_norm_pix=True,
        pri3d_temperature=0.4,
        pri3d_dim=128,
    ):
        super().__init__()
        if objective not in OBJECTIVES:
            raise ValueError(f"objective {objective!r} is not one of {OBJECTIVES}")
        if preset not in PRESETS:
            raise ValueError(f"preset {preset!r} is not one of {sorted(PRESETS)}")
        if depth_loss not in ("l1", "l2"):
            raise ValueError(f"depth_loss {depth_loss!r} must be 'l1' or 'l2'")
        if depth_norm not in DEPTH_NORMS:
            raise ValueError(f"depth_norm {depth_norm!r} is not one of {DEPTH_NORMS}")
        check_ratio(rgb_mask_ratio, "model.rgb_mask_ratio")
        check_ratio(depth_mask_ratio, "model.depth_mask_ratio")
        d_dim, d_depth, d_heads = PRESETS[preset]
        self.embed_dim, self.depth, self.num_heads = embed_dim or d_dim, depth or d_depth, num_heads or d_heads
        self.img_size = tuple(int(s) for s in img_size)
        self.grid = grid_size(self.img_size, patch_size)
        self.patch_size, self.mlp_ratio, self.objective, self.preset = patch_size, mlp_ratio, objective, preset
        self.rgb_mask_ratio, self.depth_mask_ratio = rgb_mask_ratio, depth_mask_ratio
        self.depth_loss, self.depth_norm, self.rgb_norm_pix = depth_loss, depth_norm, rgb_norm_pix
        self.pri3d_temperature = pri3d_temperature
        dim, p = self.embed_dim, patch_size

        self.patch_embed = PatchEmbed(3, dim, p)
        self.blocks = _blocks(dim, self.depth, self.num_heads, mlp_ratio)
        self.norm = nn.LayerNorm(dim, eps=NORM_EPS)
        if objective not in NO_DECODER:
            self._build_decoder(decoder_dim, decoder_depth, decoder_heads)
        if objective == "pri3d":  # a projection head keeps the contrastive geometry off the encoder (SimCLR)
            self.pri3d_proj = nn.Linear(dim, pri3d_dim)
        self.register_buffer("pixel_mean", torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(PIXEL_STD).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pos_embed", sincos_pos_embed(self.grid, dim)[None], persistent=False)
        if objective not in NO_DECODER:
            self.register_buffer("decoder_pos_embed", sincos_pos_embed(self.grid, decoder_dim)[None], persistent=False)
        self._init_weights()

    def _build_decoder(self, decoder_dim, decoder_depth, decoder_heads):
        dim, p, objective = self.embed_dim, self.patch_size, self.objective
        self.decoder_embed = nn.Linear(dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.decoder_blocks = _blocks(decoder_dim, decoder_depth, decoder_heads, self.mlp_ratio)
        self.decoder_norm = nn.LayerNorm(decoder_dim, eps=NORM_EPS)
        if objective == "mask3d":
            self.depth_embed = PatchEmbed(2, decoder_dim, p)
        if objective == "multimae":
            self.depth_embed = PatchEmbed(2, dim, p)
            self.modality_embed = nn.Parameter(torch.zeros(2, dim))
        if objective in ("mask3d", "multimae"):
            self.decoder_modality_embed = nn.Parameter(torch.zeros(2, decoder_dim))
            self.depth_head = nn.Linear(decoder_dim, p * p)
        if objective in ("mae", "multimae"):
            self.rgb_head = nn.Linear(decoder_dim, p * p * 3)

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

    # --- encoder -------------------------------------------------------------------------------------
    def _pos(self, buffer_name: str, grid: tuple[int, int], dim: int, ref: torch.Tensor) -> torch.Tensor:
        if grid == self.grid:
            return getattr(self, buffer_name)
        return sincos_pos_embed(grid, dim)[None].to(ref)

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        return (image.float() - self.pixel_mean) / self.pixel_std

    def embed_rgb(self, image: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        grid = grid_size(tuple(image.shape[-2:]), self.patch_size)
        x = self.patch_embed(self.normalize(image))
        return x + self._pos("pos_embed", grid, self.embed_dim, x), grid

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """Unmasked encoder features (B, C, gh, gw) without the final norm: exactly what the benchmark's
        ViT (`benchmark.backbones.GridViT`) computes from the export at the pre-training grid."""
        x, (gh, gw) = self.embed_rgb(image)
        for blk in self.blocks:
            x = blk(x)
        return x.transpose(1, 2).reshape(x.shape[0], -1, gh, gw)

    # --- pretext task --------------------------------------------------------------------------------
    def forward(self, image, depth=None, valid=None, generator=None, match=None) -> dict:
        if self.objective == "none":
            raise ValueError("objective 'none' has no pretext task to train")
        if self.objective == "pri3d":
            if match is None:
                raise ValueError("objective 'pri3d' needs view pairs with patch matches (pretrain.pairs.PairDataset)")
            return self.view_contrast(image, match)
        b = image.shape[0]
        x, grid = self.embed_rgb(image)
        n = grid[0] * grid[1]
        keep_r, restore_r, mask_r = random_masking(b, n, self.rgb_mask_ratio, x.device, generator)
        tokens = gather_tokens(x, keep_r)
        out = {"rgb_mask": mask_r, "grid": grid}
        if self.objective != "mae":
            if depth is None:
                raise ValueError(f"objective {self.objective!r} needs depth; the batch has none")
            valid = depth > 0 if valid is None else valid
            keep_d, restore_d, mask_d = random_masking(b, n, self.depth_mask_ratio, x.device, generator)
            out["depth_mask"] = mask_d
            depth_in = self.depth_embed(self.depth_input(depth.float(), valid, mask_d, grid))
        if self.objective == "multimae":
            dim = self.embed_dim
            d_tokens = gather_tokens(depth_in + self._pos("pos_embed", grid, dim, x) + self.modality_embed[1], keep_d)
            tokens = torch.cat([tokens + self.modality_embed[0], d_tokens], dim=1)

        for blk in self.blocks:
            tokens = blk(tokens)
        latent = self.decoder_embed(self.norm(tokens))

        dec_pos = self._pos("decoder_pos_embed", grid, latent.shape[-1], latent)
        n_keep_r = keep_r.shape[1]
        rgb_grid = self._unshuffle(latent[:, :n_keep_r], restore_r) + dec_pos
        if self.objective == "mae":
            seq = rgb_grid
        else:
            rgb_grid = rgb_grid + self.decoder_modality_embed[0]
            if self.objective == "mask3d":
                d_extra = gather_tokens(depth_in + dec_pos, keep_d)
            else:
                d_extra = self._unshuffle(latent[:, n_keep_r:], restore_d) + dec_pos
            seq = torch.cat([rgb_grid, d_extra + self.decoder_modality_embed[1]], dim=1)
        for blk in self.decoder_blocks:
            seq = blk(seq)
        seq = self.decoder_norm(seq)

        losses = {}
        if self.objective != "mae":
            # mask3d reads depth off the RGB grid tokens; multimae off its own depth grid tokens.
            d_tokens = seq[:, :n] if self.objective == "mask3d" else seq[:, n:]
            out["pred_depth"] = self.depth_head(d_tokens).float()
            losses["loss_depth"] = depth_loss(
                out["pred_depth"], depth.float(), valid, mask_d, self.patch_size, self.depth_norm, self.depth_loss
            )
        if self.objective != "mask3d":
            out["pred_rgb"] = self.rgb_head(seq[:, :n]).float()
            losses["loss_rgb"] = rgb_loss(
                out["pred_rgb"], self.normalize(image), mask_r, self.patch_size, self.rgb_norm_pix
            )
        out.update(losses)
        out["loss"] = sum(losses.values())
        return out

    def view_contrast(self, image: torch.Tensor, match: torch.Tensor) -> dict:
        """Pri3D's view-invariant loss. image (B, 2, 3, H, W); match (B, N): the patch of view 2 that sees the
        3D point of each patch of view 1, -1 for none. Pairs without any match are left out and counted."""
        b, n = match.shape
        x, _ = self.embed_rgb(image.flatten(0, 1))
        for blk in self.blocks:
            x = blk(x)
        z = nn.functional.normalize(self.pri3d_proj(self.norm(x)).float(), dim=-1).view(b, 2, n, -1)
        pair, anchor = (match >= 0).nonzero(as_tuple=True)
        target = match[pair, anchor]
        # One positive per view-2 patch: several view-1 patches landing on one patch would otherwise be each
        # other's negatives.
        key = pair * n + target
        order = torch.argsort(key, stable=True)
        first = torch.ones_like(key, dtype=torch.bool)
        first[1:] = key[order][1:] != key[order][:-1]
        keep = order[first]
        pair, anchor, target = pair[keep], anchor[keep], target[keep]
        skipped = int(b - torch.unique(pair).numel())
        if pair.numel() == 0:
            raise ValueError(f"none of the {b} view pairs of the batch has a patch correspondence")
        logits = z[pair, 0, anchor] @ z[pair, 1, target].T / self.pri3d_temperature
        labels = torch.arange(len(pair), device=logits.device)
        loss = (nn.functional.cross_entropy(logits, labels) + nn.functional.cross_entropy(logits.T, labels)) / 2
        return {"loss": loss, "loss_view": loss, "matches": len(pair), "skipped_pairs": skipped}

    def depth_input(self, depth, valid, mask, grid) -> torch.Tensor:
        """(B, 2, H, W): depth in the units of the targets, and validity (so a 0 is never read as a depth).

        For normalised targets the input is standardised with the statistics of the *visible* valid pixels
        only, so nothing about hidden patches leaks in while the decoder can copy visible values."""
        valid = valid.to(depth.dtype)
        if self.depth_norm != "metric":
            seen = valid * unpatchify(
                (~mask).to(depth.dtype)[..., None].expand(-1, -1, self.patch_size**2), self.patch_size, grid
            )
            count = seen.sum((1, 2, 3), keepdim=True).clamp(min=1)
            mean = (depth * seen).sum((1, 2, 3), keepdim=True) / count
            std = ((((depth - mean) * seen) ** 2).sum((1, 2, 3), keepdim=True) / count + 1e-6).sqrt()
            depth = (depth - mean) / std
        return torch.cat([depth * valid, valid], dim=1)

    def _unshuffle(self, visible: torch.Tensor, restore: torch.Tensor) -> torch.Tensor:
        """[visible tokens in shuffled order] + mask tokens -> full grid in row-major order."""
        b, n = restore.shape
        fill = self.mask_token.to(visible.dtype).expand(b, n - visible.shape[1], -1)
        return gather_tokens(torch.cat([visible, fill], dim=1), restore)

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
            "pixel_mean": list(PIXEL_MEAN),
            "pixel_std": list(PIXEL_STD),
        }


# --- losses --------------------------------------------------------------------------------------------
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
