"""The reconstruction picture: a heading (run, iteration, objective, what the marks mean), a titled column per
view, per row a colour bar in metres beside the depths, hidden patches marked on the predictions, and text that
grows with the frames."""

import numpy as np
import torch

from datasets.drawing import BAND, SCALE, band, text_scale, text_width
from pretrain.model import MaskedRGBD
from pretrain.visualize import reconstruction_panel, save_png

SMALL = dict(preset="vit_t", embed_dim=32, depth=2, num_heads=2, decoder_dim=32, decoder_depth=1, decoder_heads=2)


def _panel(h, w, b=2, title="run-mask3d: mask3d, iteration 5 of 10"):
    g = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (b, 3, h, w), generator=g, dtype=torch.uint8)
    depth = (1.0 + 3.0 * torch.arange(h).float() / h).view(1, 1, h, 1).repeat(b, 1, 1, w)
    model = MaskedRGBD(img_size=(h, w), **SMALL)
    batch = {"image": image, "depth": depth, "valid": depth > 0}
    return reconstruction_panel(model, batch, torch.Generator().manual_seed(0), title), model, batch


def test_panel_has_a_heading_titles_and_a_depth_colour_bar_per_row(tmp_path):
    b, h, w = 2, 32, 48
    pic, _, _ = _panel(h, w, b)
    top = band(SCALE * 1.25) + BAND  # the figure title and the line saying what the marks mean
    assert pic.dtype == np.uint8 and pic.shape[0] == top + BAND + b * h + (b - 1) * 2
    assert (pic[: band(SCALE * 1.25)] < 128).any(axis=2).sum() > 300  # "run-mask3d: mask3d, iteration 5 of 10"
    assert pic.shape[1] >= text_width("inputs: hidden patches grey; predictions: patches the model saw faded")
    # five views (RGB, RGB input, depth input, predicted depth, true depth), each as wide as its title at least
    titles = ("RGB", "RGB input", "depth input", "predicted depth", "true depth")
    columns = pic[top:]
    assert pic.shape[1] >= sum(max(w, text_width(t) + 8) + 2 for t in titles) + 40
    assert (columns[:BAND] < 128).any(axis=2).sum() > 200  # the column titles are drawn
    right = max(x for x in range(pic.shape[1]) if (columns[BAND:, x] < 255).any()) + 1  # the heading may be wider
    bar = columns[BAND : BAND + h, right - 60 : right]  # the rightmost column: this row's scale (1.0 .. 3.9 m)
    assert (bar < 128).any(axis=2).sum() > 20  # its labels
    assert save_png(pic, tmp_path / "r.png").stat().st_size > 0


def test_hidden_patches_stand_out_on_the_prediction_and_text_grows_with_the_frames():
    h, w = 240, 320
    pic, model, batch = _panel(h, w, b=1)
    scale = text_scale(w)
    assert scale > 0.7 and band(scale) > 1.5 * BAND  # ~16 px capitals on 320-px frames, not ~10
    top = band(scale * 1.25) + band(scale) + band(scale)
    x0 = next(x for x in range(pic.shape[1]) if (pic[top - band(scale) : top, x] < 128).any())  # "RGB"
    assert x0 < 10
    # the predicted depth is the fourth tile: the patches the model saw are faded towards white
    tiles = [x for x in range(1, pic.shape[1]) if (pic[top:, x] == 255).all() and not (pic[top:, x - 1] == 255).all()]
    start = tiles[2] + 2  # after RGB, RGB input, depth input and their 2-px gaps
    pred = pic[top : top + h, start : start + w].astype(int)
    g = torch.Generator().manual_seed(0)
    hidden = model(batch["image"], batch["depth"], batch["valid"], generator=g)["depth_mask"][0]
    p = model.patch_size
    per_patch = pred.reshape(h // p, p, w // p, p, 3).mean(axis=(1, 3, 4)).reshape(-1)
    assert per_patch[~hidden.bool().numpy()].min() > per_patch[hidden.bool().numpy()].mean()  # seen ones faded
