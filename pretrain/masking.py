"""Patch bookkeeping for masked pre-training on non-square images.

Patches are numbered row-major over an (H/p) x (W/p) grid, the order Detectron2's ViT uses for its
(1, H, W, C) token map, so a token index means the same image region in pre-training and fine-tuning.
"""

from __future__ import annotations

import torch


def grid_size(image_size: tuple[int, int], patch_size: int) -> tuple[int, int]:
    """(rows, cols) of the patch grid; a clear error when the size does not divide."""
    h, w = image_size
    if h % patch_size or w % patch_size:
        raise ValueError(
            f"image size {h}x{w} is not divisible by patch size {patch_size}; "
            f"choose a size that is a multiple of {patch_size} (e.g. 240x320 for 16)"
        )
    return h // patch_size, w // patch_size


def patchify(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, L, p*p*C), L = (H/p)*(W/p); each row holds one patch as (py, px, c)."""
    b, c, h, w = x.shape
    gh, gw = grid_size((h, w), patch_size)
    x = x.reshape(b, c, gh, patch_size, gw, patch_size)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, gh * gw, patch_size * patch_size * c)


def unpatchify(x: torch.Tensor, patch_size: int, grid: tuple[int, int]) -> torch.Tensor:
    """Inverse of `patchify`: (B, L, p*p*C) -> (B, C, gh*p, gw*p)."""
    b, n, d = x.shape
    gh, gw = grid
    c = d // (patch_size * patch_size)
    if n != gh * gw or c * patch_size * patch_size != d:
        raise ValueError(f"cannot unpatchify {tuple(x.shape)} into a {gh}x{gw} grid of {patch_size}px patches")
    x = x.reshape(b, gh, gw, patch_size, patch_size, c)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(b, c, gh * patch_size, gw * patch_size)


def num_kept(num_patches: int, mask_ratio: float) -> int:
    """Visible patches for a ratio in [0, 1); at least one so attention always has a key."""
    check_ratio(mask_ratio, "mask_ratio")
    return max(1, int(num_patches * (1.0 - mask_ratio)))


def check_ratio(ratio: float, name: str) -> None:
    if not 0.0 <= float(ratio) < 1.0:
        raise ValueError(
            f"{name}={ratio} is outside [0, 1): it is the fraction of patches hidden from the "
            f"model, and 1 would hide everything"
        )


def random_masking(
    batch: int, num_patches: int, mask_ratio: float, device=None, generator: torch.Generator | None = None
):
    """Per-sample random subsets of visible patches, by sorting uniform noise.

    Returns `keep` (B, n_keep): indices of visible patches in shuffled order; `restore` (B, L): the
    permutation that puts [visible tokens, mask tokens] back into grid order; `mask` (B, L) bool, True
    where the patch is hidden.
    """
    n_keep = num_kept(num_patches, mask_ratio)
    noise = torch.rand(batch, num_patches, generator=generator, device=generator.device if generator else device)
    shuffle = torch.argsort(noise, dim=1)
    restore = torch.argsort(shuffle, dim=1)
    keep = shuffle[:, :n_keep]
    mask = torch.ones(batch, num_patches, dtype=torch.bool, device=noise.device)
    mask[:, :n_keep] = False
    mask = torch.gather(mask, 1, restore)
    if device is not None:
        keep, restore, mask = keep.to(device), restore.to(device), mask.to(device)
    return keep, restore, mask


def gather_tokens(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (B, L, D), index (B, K) -> (B, K, D)."""
    return torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
