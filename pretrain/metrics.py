"""Depth errors of the hidden patches in metres (AbsRel, RMSE, delta < 1.25), what a reader can compare
across runs and depth normalisations, unlike the loss.

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
