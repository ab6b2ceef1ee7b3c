"""`mask3d` (Hou et al. 2023): the encoder sees the visible RGB patches only; visible depth patches are embedded
and join the encoded RGB tokens in the decoder (the paper's Fig. 1 feeds depth patches to the decoder), which
predicts the dense depth of every patch from the RGB grid tokens. Loss on the masked depth patches."""

from __future__ import annotations

import torch
from torch import nn

from ..masking import gather_tokens, random_masking
from ..model import OBJECTIVE_REGISTRY, PatchEmbed, depth_loss
from .decoder import MaskedAutoencoder, total


@OBJECTIVE_REGISTRY.register()
class Mask3D(MaskedAutoencoder):
    name = "mask3d"
    batch_keys = ("image", "depth", "valid")
    predicts_depth = True

    def build(self, **decoder):
        super().build(**decoder)
        self.depth_embed = PatchEmbed(2, self.decoder_dim, self.patch_size)
        self.decoder_modality_embed = nn.Parameter(torch.zeros(2, self.decoder_dim))
        self.depth_head = nn.Linear(self.decoder_dim, self.patch_size**2)

    def losses(self, batch, generator):
        image, depth, valid = batch["image"], batch["depth"].float(), batch["valid"]
        x, grid = self.embed_rgb(image)
        b, n = x.shape[:2]
        keep_r, restore_r, mask_r = random_masking(b, n, self.rgb_mask_ratio, x.device, generator)
        keep_d, _, mask_d = random_masking(b, n, self.depth_mask_ratio, x.device, generator)
        latent = self.decoder_embed(self.encode(gather_tokens(x, keep_r)))
        pos = self.decoder_pos(grid, latent)
        rgb = self.unshuffle(latent, restore_r) + pos + self.decoder_modality_embed[0]
        visible_depth = gather_tokens(self.depth_embed(self.depth_input(depth, valid, mask_d, grid)) + pos, keep_d)
        seq = self.decode(torch.cat([rgb, visible_depth + self.decoder_modality_embed[1]], dim=1))
        pred = self.depth_head(seq[:, :n]).float()  # depth is read off the RGB grid tokens
        out = {"rgb_mask": mask_r, "grid": grid, "depth_mask": mask_d, "pred_depth": pred}
        loss = depth_loss(pred, depth, valid, mask_d, self.patch_size, self.depth_norm, self.depth_loss)
        return total(out, {"loss_depth": loss})
