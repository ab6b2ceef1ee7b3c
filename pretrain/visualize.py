"""Reconstruction pictures: one row per sample; RGB, what the model saw, and predicted vs true depth/RGB, under
column titles, with each row's depth colour bar in metres (predicted and true depth share its range). A heading
names the run, iteration and objective and says what the marks mean: hidden patches are grey on the inputs; on
the predictions the patches the model saw are faded, so the hidden ones (the loss's) stand out. Text grows with
the frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from core.io import atomic_write
from datasets.drawing import (
    colour_scale,
    depth_colors,
    depth_limits,
    heading,
    hstack,
    text_scale,
    titled,
    vstack,
)

from .masking import patchify, unpatchify
from .model import depth_to_metres


def _pixels(mask: torch.Tensor, patch: int, grid) -> np.ndarray:
    """A per-patch mask (1 = hidden) as an HxW boolean picture."""
    m = mask.float().reshape(1, 1, *grid)
    return torch.nn.functional.interpolate(m, scale_factor=patch, mode="nearest")[0, 0].bool().cpu().numpy()


def _hide(img: np.ndarray, mask: torch.Tensor, patch: int, grid) -> np.ndarray:
    """Grey out hidden patches of an HxWx3 picture."""
    out = img.copy()
    out[_pixels(mask, patch, grid)] = 96
    return out


def _mark(img: np.ndarray, mask: torch.Tensor, patch: int, grid) -> np.ndarray:
    """Fade the patches of a prediction that the model saw, so the hidden ones (the loss's) stand out."""
    out = img.copy()
    seen = ~_pixels(mask, patch, grid)
    out[seen] = (0.35 * img[seen] + 0.65 * 255).astype(np.uint8)
    return out


@torch.no_grad()
def reconstruction_panel(model, batch: dict, generator: torch.Generator, title: str = "") -> np.ndarray:
    """An RGB uint8 picture of `model`'s reconstructions of `batch` (eval mode, fixed masks) under a heading:
    `title` (the run, iteration and objective) and what the marks mean."""
    was_training = model.training
    model.eval()
    out = model(batch["image"], batch.get("depth"), batch.get("valid"), generator=generator)
    model.train(was_training)
    p, grid = model.patch_size, out["grid"]
    columns, limits = {"RGB": [], "RGB input": []}, []
    if "pred_depth" in out:
        columns.update({"depth input": [], "predicted depth": [], "true depth": []})
        pred_m = depth_to_metres(out["pred_depth"], batch["depth"].float(), batch["valid"], p, grid, model.depth_norm)
    if "pred_rgb" in out:
        columns["predicted RGB"] = []
        target = patchify(model.normalize(batch["image"]), p)
        pred = out["pred_rgb"]
        if model.rgb_norm_pix:  # show in image colours using the true patch statistics, as MAE does
            pred = pred * (target.var(-1, keepdim=True) + 1e-6).sqrt() + target.mean(-1, keepdim=True)
        pred_rgb = unpatchify(pred, p, grid) * model.pixel_std + model.pixel_mean
    for i in range(batch["image"].shape[0]):
        rgb = batch["image"][i].permute(1, 2, 0).cpu().numpy().astype(np.uint8)
        columns["RGB"].append(rgb)
        columns["RGB input"].append(_hide(rgb, out["rgb_mask"][i].cpu(), p, grid))
        if "pred_depth" in out:
            true = batch["depth"][i, 0].float().cpu().numpy()
            valid = batch["valid"][i, 0].cpu().numpy()
            lo, hi = depth_limits(true, valid, (1, 99))
            limits.append((lo, hi))
            true_c = depth_colors(true, lo, hi, valid)
            columns["true depth"].append(true_c)
            columns["depth input"].append(_hide(true_c, out["depth_mask"][i].cpu(), p, grid))
            pred_i = pred_m[i, 0].cpu().numpy()
            columns["predicted depth"].append(_mark(depth_colors(pred_i, lo, hi), out["depth_mask"][i], p, grid))
        if "pred_rgb" in out:
            rgb_pred = pred_rgb[i].permute(1, 2, 0).clamp(0, 255).byte().cpu().numpy()
            columns["predicted RGB"].append(_mark(rgb_pred, out["rgb_mask"][i], p, grid))
    scale = text_scale(batch["image"].shape[-1])
    legend = "inputs: hidden patches grey; predictions: patches the model saw faded, hidden ones (the loss's) in colour"
    return heading(_layout(columns, limits, scale), [title, legend] if title else [legend], scale)


def _layout(columns: dict, limits: list, scale: float) -> np.ndarray:
    """Titled columns of one tile per sample; with depth, each row's colour bar in metres right of the depths."""
    tiles = [titled(vstack(images, gap=2), title, scale) for title, images in columns.items()]
    if limits:
        height = columns["true depth"][0].shape[0]
        scales = [colour_scale(lo, hi, height, scale) for lo, hi in limits]
        bar = titled(vstack(scales, gap=2), "depth (m)", scale)
        tiles.insert(list(columns).index("true depth") + 1, bar)
    return hstack(tiles, gap=2)


def save_png(picture_rgb: np.ndarray, path: str | Path) -> Path:
    ok, data = cv2.imencode(".png", np.ascontiguousarray(picture_rgb[..., ::-1]))
    if not ok:
        raise RuntimeError(f"OpenCV cannot encode the picture for {path}")
    return atomic_write(path, lambda f: f.write(data.tobytes()))
