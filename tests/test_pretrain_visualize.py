"""The reconstruction picture: a titled column per view, and per row a colour bar in metres beside the depths."""

import numpy as np
import torch

from datasets.drawing import BAND, text_width
from pretrain.model import MaskedRGBD
from pretrain.visualize import reconstruction_panel, save_png

SMALL = dict(preset="vit_t", embed_dim=32, depth=2, num_heads=2, decoder_dim=32, decoder_depth=1, decoder_heads=2)


def test_panel_has_titles_and_a_depth_colour_bar_per_row(tmp_path):
    b, h, w = 2, 32, 48
    g = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (b, 3, h, w), generator=g, dtype=torch.uint8)
    depth = (1.0 + 3.0 * torch.arange(h).float() / h).view(1, 1, h, 1).repeat(b, 1, 1, w)
    model = MaskedRGBD(img_size=(h, w), **SMALL)
    pic = reconstruction_panel(
        model, {"image": image, "depth": depth, "valid": depth > 0}, torch.Generator().manual_seed(0)
    )
    assert pic.dtype == np.uint8 and pic.shape[0] == BAND + b * h + (b - 1) * 2
    # five views (RGB, RGB input, depth input, predicted depth, true depth), each as wide as its title at least
    titles = ("RGB", "RGB input", "depth input", "predicted depth", "true depth")
    assert pic.shape[1] >= sum(max(w, text_width(t) + 8) + 2 for t in titles) + 40
    assert (pic[:BAND] < 128).any(axis=2).sum() > 200  # the titles are drawn
    bar = pic[BAND : BAND + h, -60:]  # the rightmost column: this row's scale (1.0 .. 3.9 m), far at the top
    assert (bar < 128).any(axis=2).sum() > 20  # its labels
    assert save_png(pic, tmp_path / "r.png").stat().st_size > 0
