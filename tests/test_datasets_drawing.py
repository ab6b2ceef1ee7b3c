"""The picture building blocks: titles that are drawn and never cut, a colour bar that reads monotonically in
metres, a legend as wide as its longest name."""

import cv2
import numpy as np
import pytest

from datasets import drawing as D


def turbo_index(rgb_row: np.ndarray) -> int:
    """The turbo colour-map step (0 = near ... 255 = far) closest to an RGB colour."""
    lut = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_TURBO)[:, 0, ::-1].astype(int)
    return int(np.abs(lut - rgb_row.astype(int)).sum(1).argmin())


def test_title_is_drawn_in_its_band_and_widens_a_narrow_column():
    img = np.zeros((20, 30, 3), np.uint8)
    out = D.titled(img, "predicted depth")
    assert out.shape[0] == 20 + D.BAND and out.shape[1] >= D.text_width("predicted depth") + 8 > 30
    band = out[: D.BAND]
    assert (band < 128).any(axis=2).sum() > 50  # dark text pixels on the white band
    assert (band[:, -3:] == 255).all()  # the text ends inside the band, not cut at its edge
    assert (out[D.BAND :, :30] == 0).all() and (out[D.BAND :, 30:] == 255).all()


@pytest.mark.parametrize("lo,hi", [(0.4, 5.0), (1.21, 1.29), (2.0, 60.0)])
def test_colour_bar_runs_from_far_at_the_top_to_near_with_round_labels(lo, hi):
    bar = D.colour_bar(lo, hi, 200)
    strip = bar[D.BAND + 6 : D.BAND + 200 - 6, 8]  # the middle column of the colour strip
    steps = [turbo_index(c) for c in strip]
    assert steps[0] >= 250 and steps[-1] <= 5
    assert all(a >= b for a, b in zip(steps[:-1], steps[1:], strict=True))  # monotone: far to near, top to bottom
    ticks, decimals = D._ticks(lo, hi, 6)
    assert 2 <= len(ticks) <= 6 and lo - 1e-9 <= ticks.min() and ticks.max() <= hi + 1e-9
    assert np.allclose(ticks, np.round(ticks, decimals))
    assert (bar[D.BAND :, 20:] < 128).any()  # tick labels are drawn right of the strip


def test_legend_fits_its_longest_name():
    short = D.legend([("bed", (255, 0, 0))])
    long = D.legend([("bed", (255, 0, 0)), ("kitchen cabinet", None)])
    assert long.shape[1] - short.shape[1] >= D.text_width("kitchen cabinet") - D.text_width("classes") - 1
    assert long.shape[0] > short.shape[0]
    assert (short[D.BAND + 4, 4] == (255, 0, 0)).all()  # the swatch
    assert (long[:, -2:] == 255).all()  # no name runs into the edge


def test_columns_of_different_heights_are_stacked_on_white():
    out = D.hstack([np.zeros((10, 5, 3), np.uint8), np.zeros((4, 6, 3), np.uint8)], gap=2)
    assert out.shape == (10, 13, 3) and (out[4:, 7:] == 255).all() and (out[:, 5:7] == 255).all()
