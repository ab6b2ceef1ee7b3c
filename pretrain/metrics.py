"""Depth errors of the hidden patches in metres (AbsRel, RMSE, delta < 1.25), what a reader can compare
across runs and depth normalisations, unlike the loss; and the encoder's health (`encoder_health`): how large its
output is and how much of it is one component shared by every token, which carries nothing about any image.

With `model.depth_norm` `image` or `patch` the model predicts standardised depth; predictions are taken back
to metres with the true depth's mean and spread (of the image or of each patch, as in training), so these
are errors after that alignment (scale-and-shift aligned, as for relative depth), not absolute-scale errors.
`metric` predicts metres and needs no alignment; `depth_alignment` in metrics.json says which applies.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import default_collate

from .data import to_model_inputs
from .masking import unpatchify
from .model import depth_to_metres

DELTA = 1.25
MIN_DEPTH = 1e-3  # metres: keeps the ratio of a non-positive prediction finite (it counts as a miss)


def error_sums(pred: torch.Tensor, depth: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """[sum |p - d| / d, sum (p - d)^2, count max(p/d, d/p) < 1.25, count] over the pixels `where`."""
    p, d = pred[where].double(), depth[where].double()
    ratio = torch.maximum(p.clamp(min=MIN_DEPTH) / d, d / p.clamp(min=MIN_DEPTH))
    return torch.stack(
        [
            ((p - d).abs() / d).sum(),
            ((p - d) ** 2).sum(),
            (ratio < DELTA).sum().double(),
            torch.tensor(float(p.numel()), dtype=torch.float64),
        ]
    )


def summarize(sums: torch.Tensor, alignment: str) -> dict:
    n = float(sums[3])
    if n == 0:
        return {}
    return {
        "depth_abs_rel": float(sums[0]) / n,
        "depth_rmse_m": float(np.sqrt(float(sums[1]) / n)),
        "depth_delta1": float(sums[2]) / n,
        "depth_pixels": int(n),
        "depth_alignment": "none" if alignment == "metric" else alignment,
    }


@torch.no_grad()
def masked_depth_errors(
    model, dataset, device, seed: int, max_images: int = 64, batch_size: int = 8, amp: bool = False
) -> dict:
    """Errors of `model`'s depth predictions on the valid pixels of hidden patches, over up to `max_images`
    centre views spread over `dataset`, masked from `seed`, for an objective that predicts depth (`pred_depth`
    and `depth_mask` in its output)."""
    if len(dataset) == 0:
        return {}
    indices = sorted({int(i) for i in np.linspace(0, len(dataset) - 1, min(max_images, len(dataset)))})
    generator, sums = torch.Generator().manual_seed(seed), torch.zeros(4, dtype=torch.float64)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(indices), batch_size):
            batch = to_model_inputs(default_collate([dataset[i] for i in indices[start : start + batch_size]]), device)
            image, depth, valid = batch["image"], batch["depth"], batch["valid"]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                out = model(image, depth, valid, generator=generator)
            p = model.patch_size
            pred = depth_to_metres(out["pred_depth"].float(), depth, valid, p, out["grid"], model.depth_norm)
            hidden = unpatchify(out["depth_mask"].float()[..., None].expand(-1, -1, p * p), p, out["grid"]) > 0
            sums += error_sums(pred.cpu(), depth.cpu(), (hidden & valid).cpu())
    finally:
        model.train(was_training)
    return summarize(sums, model.depth_norm)


HEALTH_FRAMES = 16  # frames of the fixed health batch: 3072 tokens at the miniature's 12x16 grid


def token_health(tokens: torch.Tensor) -> dict:
    """`encoder_rms` = sqrt(mean(X^2)) and `encoder_shared_share` = B*N*|m|^2 / sum |x|^2 of (B, N, C) tokens X,
    m the mean token over all B*N of them (docs/interfaces.md): the share of the output energy in the one
    component every token of every image carries. 1.0 for identical tokens, 0.0 for zero-mean ones."""
    x = tokens.detach().double().reshape(-1, tokens.shape[-1])
    energy = x.square().sum()
    shared = x.shape[0] * x.mean(0).square().sum()
    return {
        "encoder_rms": float((energy / x.numel()).sqrt()),
        "encoder_shared_share": float(shared / energy) if energy > 0 else 0.0,
    }


def health_images(dataset, frames: int = HEALTH_FRAMES) -> torch.Tensor:
    """A fixed batch: the un-augmented views (plain indices) of up to `frames` items spread over `dataset`, as
    (F, 3, H, W) uint8-range RGB (a view pair's two frames count as two)."""
    indices = sorted({int(i) for i in np.linspace(0, len(dataset) - 1, min(frames, len(dataset)))})
    images = to_model_inputs(default_collate([dataset[i] for i in indices]), "cpu")["image"]
    return images.reshape(-1, *images.shape[-3:])


@torch.no_grad()
def encoder_health(model, images: torch.Tensor) -> dict:
    """`token_health` of the encoder's unmasked output on `images`, in eval mode and float32, taken where the
    export hands it to the benchmark: `features()`, without the final norm. Draws no random numbers, so the
    training stream is the same with or without it."""
    was_training = model.training
    model.eval()
    try:
        features = model.features(images.to(model.pixel_mean.device))
    finally:
        model.train(was_training)
    return token_health(features.flatten(2).transpose(1, 2))
