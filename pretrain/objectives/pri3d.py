"""`pri3d` (Hou et al. 2021, the "View" variant): two overlapping frames of one scene, whole and unmasked;
InfoNCE between the projected tokens of patches that see the same 3D point (`pretrain.correspondence`, pairs
from `pretrain.pairs`), each match's other matches in the batch as negatives (PointContrast's PointInfoNCE, which
Pri3D builds on) at temperature 0.4 (Pri3D's `pretrain.nceT=0.4` in its ScanNet script). No decoder."""

from __future__ import annotations

import torch
from torch import nn

from ..model import OBJECTIVE_REGISTRY, MaskedRGBD


@OBJECTIVE_REGISTRY.register()
class Pri3D(MaskedRGBD):
    name = "pri3d"
    batch_keys = ("image", "match")  # image (B, 2, 3, H, W): a view pair per sample
    logged = ("skipped_pairs",)
    frames_per_sample = 2

    def build(self, pri3d_temperature=0.4, pri3d_dim=128):
        self.pri3d_temperature = pri3d_temperature
        # A projection head keeps the contrastive geometry off the encoder (SimCLR).
        self.pri3d_proj = nn.Linear(self.embed_dim, pri3d_dim)

    def losses(self, batch, generator):
        return self.view_contrast(batch["image"], batch["match"])

    def view_contrast(self, image: torch.Tensor, match: torch.Tensor) -> dict:
        """Pri3D's view-invariant loss. image (B, 2, 3, H, W); match (B, N): the patch of view 2 that sees the
        3D point of each patch of view 1, -1 for none. Pairs without any match are left out and counted."""
        b, n = match.shape
        x, _ = self.embed_rgb(image.flatten(0, 1))
        z = nn.functional.normalize(self.pri3d_proj(self.encode(x)).float(), dim=-1).view(b, 2, n, -1)
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
