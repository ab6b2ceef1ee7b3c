"""Building blocks for pictures that explain themselves: titled columns, a depth colour bar in metres and a
class legend, laid out side by side on white. Everything is RGB uint8; text never runs past its column (a
column widens to its title instead), so nothing is cut off however small the frames are."""

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
SCALE = 0.42  # OpenCV font scale: ~10 px capitals, readable at 100 %
BAND = 18  # height of a title band
WHITE, BLACK = (255, 255, 255), (0, 0, 0)


def text_width(text: str, scale: float = SCALE) -> int:
    return cv2.getTextSize(text, FONT, scale, 1)[0][0]


def put_text(img: np.ndarray, text: str, x: int, y: int, color=BLACK, scale: float = SCALE) -> None:
    """Draw `text` with its baseline at y (anti-aliased, in place)."""
    cv2.putText(img, text, (int(x), int(y)), FONT, scale, color, 1, cv2.LINE_AA)


def pad_to(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """`img` at the top left of a white height x width canvas."""
    out = np.full((height, width, 3), 255, np.uint8)
    out[: img.shape[0], : img.shape[1]] = img
    return out


def titled(img: np.ndarray, title: str) -> np.ndarray:
    """`img` under a white band holding `title`; widened with white when the title is wider than `img`."""
    width = max(img.shape[1], text_width(title) + 8)
    band = np.full((BAND, width, 3), 255, np.uint8)
    put_text(band, title, 4, BAND - 5)
    return np.concatenate([band, pad_to(img, img.shape[0], width)], axis=0)


def hstack(columns, gap: int = 4) -> np.ndarray:
    """Columns side by side, top-aligned on white with `gap` px between them."""
    height = max(c.shape[0] for c in columns)
    parts = []
    for c in columns:
        parts += [pad_to(c, height, c.shape[1]), np.full((height, gap, 3), 255, np.uint8)]
    return np.concatenate(parts[:-1], axis=1)


def vstack(rows, gap: int = 4) -> np.ndarray:
    width = max(r.shape[1] for r in rows)
    parts = []
    for r in rows:
        parts += [pad_to(r, r.shape[0], width), np.full((gap, width, 3), 255, np.uint8)]
    return np.concatenate(parts[:-1], axis=0)


def depth_limits(depth_m: np.ndarray, valid: np.ndarray, percent=(2, 98)) -> tuple:
    """(near, far) in metres for the colour map: percentiles of the valid depth, so a few outliers do not
    wash the picture out; (0, 1) when nothing is valid."""
    if not valid.any():
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(depth_m[valid], percent))
    return lo, max(hi, lo + 1e-3)


def depth_colors(depth_m: np.ndarray, lo: float, hi: float, valid: np.ndarray = None) -> np.ndarray:
    """Turbo colours (blue = near, red = far) between lo and hi metres; invalid pixels black."""
    x = np.clip((depth_m.astype(np.float32) - lo) / max(hi - lo, 1e-6), 0, 1)
    rgb = cv2.applyColorMap((x * 255).astype(np.uint8), cv2.COLORMAP_TURBO)[..., ::-1]
    return rgb if valid is None else np.where(valid[..., None], rgb, 0).astype(np.uint8)


def _ticks(lo: float, hi: float, most: int) -> tuple:
    """(values, decimals): round ticks 1, 2 or 5 times a power of ten apart inside [lo, hi], at most `most`."""
    for e in range(-3, 5):
        for m in (1, 2, 5):
            step = m * 10.0**e
            ticks = np.arange(np.ceil(lo / step) * step, hi + 1e-9, step)
            if len(ticks) <= most:
                return (ticks if len(ticks) else np.array([lo])), max(0, -e)
    return np.array([lo, hi]), 1


def colour_scale(lo: float, hi: float, height: int) -> np.ndarray:
    """A vertical turbo scale for `depth_colors(.., lo, hi)`, far at the top, `height` px tall with round
    values beside it (as many as fit without overlapping, at least the two ends)."""
    top, bottom, strip = 6, max(int(height), 24) - 6, 12
    ticks, decimals = _ticks(lo, hi, max(2, (bottom - top) // 28))
    labels = [f"{t:.{decimals}f}" for t in ticks]
    out = np.full((bottom + 6, strip + 12 + max(text_width(t) for t in labels), 3), 255, np.uint8)
    out[top:bottom, 2 : 2 + strip] = depth_colors(np.linspace(hi, lo, bottom - top)[:, None].repeat(strip, 1), lo, hi)
    for t, text in zip(ticks, labels, strict=True):
        y = int(round(top + (hi - t) / max(hi - lo, 1e-6) * (bottom - top - 1)))
        out[y, 2 + strip : 6 + strip] = BLACK
        put_text(out, text, 8 + strip, min(max(y + 4, 10), out.shape[0] - 1))
    return out


def colour_bar(lo: float, hi: float, height: int, unit: str = "m") -> np.ndarray:
    """`colour_scale` (at least 48 px, so several values fit) under a title naming the unit."""
    return titled(colour_scale(lo, hi, max(height, 48)), f"depth ({unit})")


def legend(entries, title: str = "classes") -> np.ndarray:
    """One line per (name, RGB colour or None): a swatch and the full name."""
    row = 14
    entries = list(entries) or [("(none)", None)]
    out = np.full((row * len(entries) + 4, 18 + max(text_width(n) for n, _ in entries) + 4, 3), 255, np.uint8)
    for i, (name, color) in enumerate(entries):
        y = 2 + i * row
        if color is not None:
            out[y + 1 : y + row - 2, 2:13] = color
        put_text(out, name, 18, y + row - 3)
    return titled(out, title)
