"""`mae` (He et al. 2022): RGB reconstructed from masked RGB, no depth; per-pixel MSE on the hidden patches,
targets normalised per patch (`model.rgb_norm_pix`)."""

from __future__ import annotations

from torch import nn

from ..masking import gather_tokens, random_masking
from ..model import OBJECTIVE_REGISTRY, rgb_loss
from .decoder import MaskedAutoencoder, total


@OBJECTIVE_REGISTRY.register()
class MAE(MaskedAutoencoder):
    name = "mae"
    batch_keys = ("image",)

    def build(self, **decoder):
        super().build(**decoder)
        self.rgb_head = nn.Linear(self.decoder_dim, self.patch_size**2 * 3)

    def losses(self, batch, generator):
        image = batch["image"]
        x, grid = self.embed_rgb(image)
        b, n = x.shape[:2]
        keep, restore, mask = random_masking(b, n, self.rgb_mask_ratio, x.device, generator)
        latent = self.decoder_embed(self.encode(gather_tokens(x, keep)))
        seq = self.decode(self.unshuffle(latent, restore) + self.decoder_pos(grid, latent))
        pred = self.rgb_head(seq).float()
        out = {"rgb_mask": mask, "grid": grid, "pred_rgb": pred}
        loss = rgb_loss(pred, self.normalize(image), mask, self.patch_size, self.rgb_norm_pix)
        return total(out, {"loss_rgb": loss})
