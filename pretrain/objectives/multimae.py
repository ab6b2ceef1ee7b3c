"""`multimae` (Bachmann et al. 2022, simplified): visible RGB and depth tokens both enter the encoder (modality
embeddings tell them apart); one shared decoder reconstructs both, RGB from the RGB grid tokens and depth from
the depth grid tokens. Loss: the masked depth patches' plus MAE's on the masked RGB patches."""

from __future__ import annotations

import torch
from torch import nn

from ..masking import gather_tokens, random_masking
from ..model import OBJECTIVE_REGISTRY, PatchEmbed, depth_loss, rgb_loss
from .decoder import MaskedAutoencoder, total


@OBJECTIVE_REGISTRY.register()
class MultiMAE(MaskedAutoencoder):
    name = "multimae"
    batch_keys = ("image", "depth", "valid")
    predicts_depth = True

    def build(self, **decoder):
        super().build(**decoder)
        self.depth_embed = PatchEmbed(2, self.embed_dim, self.patch_size)
        self.modality_embed = nn.Parameter(torch.zeros(2, self.embed_dim))
        self.decoder_modality_embed = nn.Parameter(torch.zeros(2, self.decoder_dim))
        self.depth_head = nn.Linear(self.decoder_dim, self.patch_size**2)
        self.rgb_head = nn.Linear(self.decoder_dim, self.patch_size**2 * 3)

    def no_weight_decay(self) -> set[str]:
        return super().no_weight_decay() | {"modality_embed"}

    def losses(self, batch, generator):
        image, depth, valid = batch["image"], batch["depth"].float(), batch["valid"]
        x, grid = self.embed_rgb(image)
        b, n = x.shape[:2]
        keep_r, restore_r, mask_r = random_masking(b, n, self.rgb_mask_ratio, x.device, generator)
        keep_d, restore_d, mask_d = random_masking(b, n, self.depth_mask_ratio, x.device, generator)
        depth_in = self.depth_embed(self.depth_input(depth, valid, mask_d, grid))
        depth_tokens = gather_tokens(
            depth_in + self.pos("pos_embed", grid, self.embed_dim, x) + self.modality_embed[1], keep_d
        )
        tokens = torch.cat([gather_tokens(x, keep_r) + self.modality_embed[0], depth_tokens], dim=1)
        latent = self.decoder_embed(self.encode(tokens))
        pos, n_rgb = self.decoder_pos(grid, latent), keep_r.shape[1]
        rgb = self.unshuffle(latent[:, :n_rgb], restore_r) + pos + self.decoder_modality_embed[0]
        dep = self.unshuffle(latent[:, n_rgb:], restore_d) + pos + self.decoder_modality_embed[1]
        seq = self.decode(torch.cat([rgb, dep], dim=1))
        out = {"rgb_mask": mask_r, "grid": grid, "depth_mask": mask_d}
        out["pred_depth"] = self.depth_head(seq[:, n:]).float()
        out["pred_rgb"] = self.rgb_head(seq[:, :n]).float()
        losses = {
            "loss_depth": depth_loss(
                out["pred_depth"], depth, valid, mask_d, self.patch_size, self.depth_norm, self.depth_loss
            ),
            "loss_rgb": rgb_loss(out["pred_rgb"], self.normalize(image), mask_r, self.patch_size, self.rgb_norm_pix),
        }
        return total(out, losses)
