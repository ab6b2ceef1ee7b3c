"""Building blocks for pictures that explain themselves: titled columns, a depth colour bar in metres, a class
legend and a heading, laid out side by side on white. Everything is RGB uint8; text never runs past its column
(a column widens to its title instead), so nothing is cut off however small the frames are. `scale` is OpenCV's
font scale: `text_scale` grows it with the frames, so titles stay readable on a picture of large frames."""

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
SCALE = 0.42  # OpenCV font scale: ~10 px capitals, readable at 100 %
BAND = 18  # height of a title band at SCALE
WHITE, BLACK = (255, 255, 255), (0, 0, 0)


def text_scale(frame_width: int) -> float:
    """A font scale for pictures of `frame_width`-px frames: SCALE up to ~300 px, then growing with the frame
    (a 320-px frame gets ~16 px capitals), so text stays the same share of the picture."""
    return max(SCALE, round(frame_width / 400, 2))


def band(scale: float = SCALE) -> int:
    """Height of a title band at `scale`."""
    return int(round(BAND * scale / SCALE))


def _thickness(scale: float) -> int:
    return 1 if scale < 0.7 else 2


def text_width(text: str, scale: float = SCALE) -> int:
    return cv2.getTextSize(text, FONT, scale, _thickness(scale))[0][0]


def put_text(img: np.ndarray, text: str, x: int, y: int, color=BLACK, scale: float = SCALE) -> None:
    """Draw `text` with its baseline at y (anti-aliased, in place)."""
    cv2.putText(img, text, (int(x), int(y)), FONT, scale, color, _thickness(scale), cv2.LINE_AA)


def pad_to(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """`img` at the top left of a white height x width canvas."""
    out = np.full((height, width, 3), 255, np.uint8)
    out[: img.shape[0], : img.shape[1]] = img
    return out


def titled(img: np.ndarray, title: str, scale: float = SCALE) -> np.ndarray:
    """`img` under a white band holding `title`; widened with white when the title is wider than `img`."""
    width = max(img.shape[1], text_width(title, scale) + 8)
    top = np.full((band(scale), width, 3), 255, np.uint8)
    put_text(top, title, 4, band(scale) - int(round(5 * scale / SCALE)), scale=scale)
    return np.concatenate([top, pad_to(img, img.shape[0], width)], axis=0)


def heading(img: np.ndarray, lines: list[str], scale: float = SCALE) -> np.ndarray:
    """`img` under a figure title: the first line larger, the others (what the colours mean) at `scale`."""
    sizes = [scale * 1.25] + [scale] * (len(lines) - 1)
    width = max(img.shape[1], *(text_width(t, s) + 8 for t, s in zip(lines, sizes, strict=True)))
    bands = []
    for text, size in zip(lines, sizes, strict=True):
        row = np.full((band(size), width, 3), 255, np.uint8)
        put_text(row, text, 4, band(size) - int(round(5 * size / SCALE)), scale=size)
        bands.append(row)
    return np.concatenate([*bands, pad_to(img, img.shape[0], width)], axis=0)


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


def colour_scale(lo: float, hi: float, height: int, scale: float = SCALE) -> np.ndarray:
    """A vertical turbo scale for `depth_colors(.., lo, hi)`, far at the top, `height` px tall with round
    values beside it (as many as fit without overlapping, at least the two ends)."""
    grow = scale / SCALE
    top, bottom, strip = 6, max(int(height), 24) - 6, int(round(12 * grow))
    ticks, decimals = _ticks(lo, hi, max(2, int((bottom - top) // (28 * grow))))
    labels = [f"{t:.{decimals}f}" for t in ticks]
    out = np.full((bottom + 6, strip + 12 + max(text_width(t, scale) for t in labels), 3), 255, np.uint8)
    out[top:bottom, 2 : 2 + strip] = depth_colors(np.linspace(hi, lo, bottom - top)[:, None].repeat(strip, 1), lo, hi)
    half = int(round(4 * grow))
    for t, text in zip(ticks, labels, strict=True):
        y = int(round(top + (hi - t) / max(hi - lo, 1e-6) * (bottom - top - 1)))
        out[y, 2 + strip : 6 + strip] = BLACK
        put_text(out, text, 8 + strip, min(max(y + half, 2 * half + 2), out.shape[0] - 1), scale=scale)
    return out


def colour_bar(lo: float, hi: float, height: int, unit: str = "m", scale: float = SCALE) -> np.ndarray:
    """`colour_scale` (at least 48 px, so several values fit) under a title naming the unit."""
    return titled(colour_scale(lo, hi, max(height, 48), scale), f"depth ({unit})", scale)


def legend(entries, title: str = "classes", scale: float = SCALE) -> np.ndarray:
    """One line per (name, RGB colour or None): a swatch and the full name."""
    grow = scale / SCALE
    row, swatch = int(round(14 * grow)), int(round(11 * grow))
    entries = list(entries) or [("(none)", None)]
    width = swatch + 7 + max(text_width(n, scale) for n, _ in entries) + 4
    out = np.full((row * len(entries) + 4, width, 3), 255, np.uint8)
    for i, (name, color) in enumerate(entries):
        y = 2 + i * row
        if color is not None:
            out[y + 1 : y + row - 2, 2 : 2 + swatch] = color
        put_text(out, name, swatch + 7, y + row - int(round(3 * grow)), scale=scale)
    return titled(out, title, scale)


def label(img: np.ndarray, text: str, cx: int, cy: int, scale: float = SCALE, taken: list | None = None) -> None:
    """`text` in white on a black box centred near (cx, cy), moved so the whole box stays inside `img` and, when
    it can, off the boxes in `taken` (which it joins), in place: a name on a picture reads on any colour and is
    never cut off."""
    (w, h), base = cv2.getTextSize(text, FONT, scale, _thickness(scale))
    box_w, box_h = w + 6, h + base + 4
    taken = [] if taken is None else taken

    def placed(x, y):
        return int(min(max(x, 0), max(img.shape[1] - box_w, 0))), int(min(max(y, 0), max(img.shape[0] - box_h, 0)))

    def free(x, y):
        return all(x + box_w <= a or a + aw <= x or y + box_h <= b or b + bh <= y for a, b, aw, bh in taken)

    spots = [placed(cx - box_w // 2, cy - box_h // 2 + k * box_h) for k in (0, 1, -1, 2, -2)]
    x, y = next((spot for spot in spots if free(*spot)), spots[0])
    taken.append((x, y, box_w, box_h))
    img[y : y + box_h, x : x + box_w] = BLACK
    put_text(img, text, x + 3, y + 2 + h, WHITE, scale)
