"""The light decoder that `mask3d`, `mae` and `multimae` share (MAE's): the encoder's visible tokens, projected
to the decoder width and put back on the patch grid with a learned mask token in the hidden places, then a few
transformer blocks. Its objectives differ in what enters the encoder and the decoder and in what they predict.
Not registered: a base class, like MAE's decoder half."""

from __future__ import annotations

import torch
from torch import nn

from ..masking import gather_tokens, unpatchify
from ..metrics import masked_depth_errors
from ..model import DEPTH_NORMS, NORM_EPS, MaskedRGBD, sincos_pos_embed, vit_blocks
from ..visualize import reconstruction_panel


class MaskedAutoencoder(MaskedRGBD):
    """`MaskedRGBD` with MAE's decoder; subclasses add their embeddings and heads in `build` and write `losses`."""

    predicts_depth = False  # whether `losses` returns `pred_depth` and `depth_mask` (depth errors, pictures)

    def build(
        self,
        decoder_dim=512,
        decoder_depth=8,
        decoder_heads=16,
        depth_loss="l1",
        depth_norm="image",
        rgb_norm_pix=True,
    ):
        if depth_loss not in ("l1", "l2"):
            raise ValueError(f"depth_loss {depth_loss!r} must be 'l1' or 'l2'")
        if depth_norm not in DEPTH_NORMS:
            raise ValueError(f"depth_norm {depth_norm!r} is not one of {DEPTH_NORMS}")
        self.decoder_dim, self.decoder_depth = decoder_dim, decoder_depth
        self.depth_loss, self.depth_norm, self.rgb_norm_pix = depth_loss, depth_norm, rgb_norm_pix
        self.decoder_embed = nn.Linear(self.embed_dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.decoder_blocks = vit_blocks(decoder_dim, decoder_depth, decoder_heads, self.mlp_ratio)
        self.decoder_norm = nn.LayerNorm(decoder_dim, eps=NORM_EPS)
        self.register_buffer(
            "decoder_pos_embed", sincos_pos_embed(self.grid, decoder_dim, self.centre_pos)[None], persistent=False
        )

    def no_weight_decay(self) -> set[str]:
        return {"mask_token", "decoder_modality_embed"}  # MAE: no decay on learned tokens

    def decoder_pos(self, grid: tuple[int, int], ref: torch.Tensor) -> torch.Tensor:
        return self.pos("decoder_pos_embed", grid, self.decoder_dim, ref)

    def unshuffle(self, visible: torch.Tensor, restore: torch.Tensor) -> torch.Tensor:
        """[visible tokens in shuffled order] + mask tokens -> full grid in row-major order."""
        b, n = restore.shape
        fill = self.mask_token.to(visible.dtype).expand(b, n - visible.shape[1], -1)
        return gather_tokens(torch.cat([visible, fill], dim=1), restore)

    def decode(self, seq: torch.Tensor) -> torch.Tensor:
        for blk in self.decoder_blocks:
            seq = blk(seq)
        return self.decoder_norm(seq)

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

    def metrics(self, dataset, device, seed, amp=False) -> dict:
        """The hidden patches' depth errors in metres (`pretrain.metrics`), for objectives that predict depth."""
        return masked_depth_errors(self, dataset, device, seed, amp=amp) if self.predicts_depth else {}

    def picture(self, batch, generator, title=""):
        return reconstruction_panel(self, batch, generator, title)


def total(out: dict, losses: dict) -> dict:
    """`out` with the named losses and their sum as `loss`."""
    out.update(losses)
    out["loss"] = sum(losses.values())
    return out
