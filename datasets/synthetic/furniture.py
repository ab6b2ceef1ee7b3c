"""Furniture builders: each returns (parts, labels, colours, textures) in the object frame: x along the
object's width, +y towards its back (the wall, for wall objects), z up from the floor. Each class has its own
shape and size, so geometry predicts semantics."""

import numpy as np

from datasets.synthetic.scene import BOX, CYLINDER, FABRIC, GLASS, PICTURE, PLAIN, STRIPES, WOOD, Part


def box_part(center, size, group=0, yaw=0.0):
    return Part(BOX, tuple(center), tuple(0.5 * np.asarray(size, float)), yaw, group)


def cyl_part(center, radius, height, group=0):
    return Part(CYLINDER, tuple(center), (radius, radius, 0.5 * height), 0.0, group)


def _moved(parts, offset, yaw, group):
    """Parts of a sub-object moved into its parent's frame, renumbered to `group`."""
    c, s = np.cos(yaw), np.sin(yaw)
    return [
        Part(
            p.kind,
            (offset[0] + c * p.center[0] - s * p.center[1], offset[1] + s * p.center[0] + c * p.center[1], p.center[2]),
            p.half,
            p.yaw + yaw,
            group,
        )
        for p in parts
    ]


def hsv(rng, hue, sat, val):
    h = (rng.uniform(*hue) if isinstance(hue, tuple) else hue) % 1.0
    s = rng.uniform(*sat) if isinstance(sat, tuple) else sat
    v = rng.uniform(*val) if isinstance(val, tuple) else val
    i, f = int(h * 6) % 6, h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i])


def wood(rng):
    return hsv(rng, (0.06, 0.1), (0.35, 0.6), (0.35, 0.8))


def fabric(rng):
    return hsv(rng, (0.0, 1.0), (0.15, 0.55), (0.3, 0.75))


def neutral(rng):
    return hsv(rng, (0.0, 1.0), (0.0, 0.08), (0.55, 0.92))


def _chair_parts(rng, group=0):
    w, d = rng.uniform(0.42, 0.5), rng.uniform(0.42, 0.5)
    seat, top = rng.uniform(0.43, 0.48), rng.uniform(0.8, 0.95)
    parts = [box_part((0, 0, seat - 0.025), (w, d, 0.05), group)]
    parts += [
        box_part((sx * (w / 2 - 0.025), sy * (d / 2 - 0.025), (seat - 0.05) / 2), (0.04, 0.04, seat - 0.05), group)
        for sx in (-1, 1)
        for sy in (-1, 1)
    ]
    parts.append(box_part((0, d / 2 - 0.02, (seat + top) / 2), (w, 0.04, top - seat), group))
    return parts


def _office_chair_parts(rng, group=0):
    seat = rng.uniform(0.45, 0.52)
    return [
        cyl_part((0, 0, 0.03), 0.3, 0.06, group),
        cyl_part((0, 0, (seat - 0.02) / 2 + 0.03), 0.03, seat - 0.08, group),
        box_part((0, 0, seat - 0.04), (0.5, 0.48, 0.08), group),
        box_part((0, 0.22, seat + 0.33), (0.46, 0.06, rng.uniform(0.45, 0.6)), group),
    ]


def _chair(rng):
    return _chair_parts(rng), ["chair"], [wood(rng)], [WOOD]


def _bed(rng):
    w, length, h = rng.uniform(1.0, 1.9), rng.uniform(1.95, 2.15), rng.uniform(0.45, 0.6)
    parts = [
        box_part((0, 0, (h - 0.18) / 2), (w, length, h - 0.18)),
        box_part((0, -0.02, h - 0.09), (w - 0.06, length - 0.1, 0.18)),
        box_part((0, length / 2 - 0.04, rng.uniform(0.45, 0.62)), (w + 0.04, 0.08, rng.uniform(0.9, 1.24))),
    ]
    n = 1 if w < 1.3 else 2
    pw = min(0.62, w / n - 0.08)
    for i in range(n):
        x = 0.0 if n == 1 else (i - 0.5) * (w / 2)
        parts.append(box_part((x, length / 2 - 0.32, h + 0.065), (pw, 0.38, 0.13), 1 + i))
    pillow = hsv(rng, (0, 1), (0.0, 0.2), (0.8, 0.95))
    return (parts, ["bed"] + ["pillow"] * n, [fabric(rng)] + [pillow] * n, [FABRIC] * (1 + n))


def _sofa_set(rng):
    w, d = rng.uniform(1.5, 2.3), rng.uniform(0.85, 0.95)
    arm, back = rng.uniform(0.15, 0.2), rng.uniform(0.78, 0.9)
    parts = [
        box_part((0, 0, 0.21), (w - 2 * arm, d, 0.42)),
        box_part((0, d / 2 - 0.1, back / 2), (w - 2 * arm, 0.2, back)),
        box_part((-(w - arm) / 2, 0, 0.3), (arm, d, 0.6)),
        box_part(((w - arm) / 2, 0, 0.3), (arm, d, 0.6)),
    ]
    labels, colors, textures = ["couch"], [fabric(rng)], [FABRIC]
    for i in range(int(rng.integers(0, 3))):
        x = (i - 0.5) * (w - 2 * arm - 0.5) if rng.random() < 0.9 else 0.0
        parts.append(box_part((x, d / 2 - 0.27, 0.61), (0.42, 0.14, 0.4), len(labels)))
        labels, colors, textures = labels + ["pillow"], colors + [fabric(rng)], textures + [FABRIC]
    if rng.random() < 0.8:  # coffee table in front of the sofa
        lt, wt, ht = rng.uniform(0.8, 1.2), rng.uniform(0.45, 0.6), rng.uniform(0.38, 0.46)
        y = -d / 2 - rng.uniform(0.35, 0.5) - wt / 2
        g = len(labels)
        parts.append(box_part((0, y, ht - 0.02), (lt, wt, 0.04), g))
        parts += [
            box_part((sx * (lt / 2 - 0.04), y + sy * (wt / 2 - 0.04), (ht - 0.04) / 2), (0.04, 0.04, ht - 0.04), g)
            for sx in (-1, 1)
            for sy in (-1, 1)
        ]
        labels, colors, textures = labels + ["coffee table"], colors + [wood(rng)], textures + [WOOD]
    return parts, labels, colors, textures


def _dining_set(rng):
    h = rng.uniform(0.72, 0.78)
    labels, colors, textures = ["table"], [wood(rng)], [WOOD]
    chair_color = wood(rng) if rng.random() < 0.5 else fabric(rng)
    seats = []
    if rng.random() < 0.7:
        lt, wt = rng.uniform(1.2, 1.8), rng.uniform(0.75, 0.95)
        parts = [box_part((0, 0, h - 0.02), (lt, wt, 0.04))]
        parts += [
            box_part((sx * (lt / 2 - 0.06), sy * (wt / 2 - 0.06), (h - 0.04) / 2), (0.06, 0.06, h - 0.04))
            for sx in (-1, 1)
            for sy in (-1, 1)
        ]
        per_side = 1 if lt < 1.4 else 2
        for sy, yaw in ((1, 0.0), (-1, np.pi)):
            for i in range(per_side):
                if rng.random() < 0.85:
                    x = 0.0 if per_side == 1 else (i - 0.5) * lt / 2
                    seats.append(((x, sy * (wt / 2 + rng.uniform(0.05, 0.3))), yaw))
    else:
        r = rng.uniform(0.45, 0.6)
        parts = [
            cyl_part((0, 0, h - 0.02), r, 0.04),
            cyl_part((0, 0, (h - 0.04) / 2), 0.05, h - 0.04),
            cyl_part((0, 0, 0.015), 0.25, 0.03),
        ]
        start = rng.uniform(0, 2 * np.pi)
        for i in range(int(rng.integers(2, 5))):
            phi = start + i * 2 * np.pi / 4
            dist = r + rng.uniform(0.1, 0.3)
            seats.append(((dist * np.cos(phi), dist * np.sin(phi)), phi - np.pi / 2))
    for offset, yaw in seats:
        parts += _moved(_chair_parts(rng), offset, yaw + rng.normal(0, 0.1), len(labels))
        labels, colors, textures = labels + ["chair"], colors + [chair_color], textures + [WOOD]
    return parts, labels, colors, textures


def _desk_set(rng):
    w, d, h = rng.uniform(1.1, 1.6), rng.uniform(0.6, 0.75), rng.uniform(0.72, 0.76)
    side = rng.choice([-1, 1])
    parts = [
        box_part((0, 0, h - 0.015), (w, d, 0.03)),
        box_part((side * (w / 2 - 0.2), 0.02, (h - 0.03) / 2), (0.4, d - 0.05, h - 0.03)),
        box_part((-side * (w / 2 - 0.015), 0.02, (h - 0.03) / 2), (0.03, d - 0.05, h - 0.03)),
    ]
    labels, colors, textures = ["desk"], [wood(rng) if rng.random() < 0.6 else neutral(rng)], [WOOD]
    if rng.random() < 0.85:
        chair = _office_chair_parts(rng) if rng.random() < 0.7 else _chair_parts(rng)
        name = "office chair" if len(chair) == 4 else "chair"
        parts += _moved(chair, (rng.uniform(-0.2, 0.2), -d / 2 - rng.uniform(0.1, 0.35)), np.pi + rng.normal(0, 0.3), 1)
        labels, colors, textures = (
            labels + [name],
            colors + [hsv(rng, (0, 1), (0, 0.3), (0.1, 0.4))],
            textures + [PLAIN],
        )
    return parts, labels, colors, textures


def _cabinet(rng):
    w, d = rng.uniform(0.6, 1.6), rng.uniform(0.4, 0.6)
    h = rng.uniform(0.75, 1.0) if rng.random() < 0.65 else rng.uniform(1.6, 2.0)
    parts = [box_part((0, 0, 0.05), (w - 0.04, d - 0.04, 0.1)), box_part((0, 0, (h + 0.1) / 2), (w, d, h - 0.1))]
    for sx in (-1, 1):
        parts.append(box_part((sx * 0.06, -d / 2 - 0.015, h * 0.6), (0.02, 0.03, 0.14)))
    return parts, ["cabinet"], [wood(rng) if rng.random() < 0.6 else neutral(rng)], [WOOD]


def _bookshelf(rng):
    w, d, h = rng.uniform(0.7, 1.2), rng.uniform(0.28, 0.36), rng.uniform(1.7, 2.1)
    t = 0.02
    parts = [box_part((sx * (w / 2 - t / 2), 0, h / 2), (t, d, h)) for sx in (-1, 1)]
    parts += [
        box_part((0, d / 2 - 0.005, h / 2), (w, 0.01, h)),
        box_part((0, 0, h - t / 2), (w, d, t)),
        box_part((0, 0, 0.04), (w - 2 * t, d, 0.08)),
    ]
    n = int(rng.integers(4, 6))
    levels = np.linspace(0.08, h - t, n + 1)
    labels, colors, textures = ["bookshelf"], [wood(rng)], [WOOD]
    for i, z in enumerate(levels):
        if 0 < i < n:
            parts.append(box_part((0, 0, z), (w - 2 * t, d - 0.01, t)))
        if i < n and rng.random() < 0.6:
            gap = levels[i + 1] - z - t
            bw = rng.uniform(0.3, 0.9) * (w - 2 * t)
            x = rng.uniform(-(w - 2 * t - bw) / 2, (w - 2 * t - bw) / 2)
            bh = min(gap - 0.02, rng.uniform(0.18, 0.26))
            parts.append(box_part((x, d / 2 - 0.11, z + t / 2 + bh / 2), (bw, 0.2, bh), len(labels)))
            labels, colors, textures = labels + ["book"], colors + [fabric(rng)], textures + [STRIPES]
    return parts, labels, colors, textures


def _refrigerator(rng):
    w, d, h = rng.uniform(0.6, 0.8), rng.uniform(0.65, 0.75), rng.uniform(1.7, 1.9)
    split = h * rng.uniform(0.6, 0.7)
    parts = [
        box_part((0, 0, h / 2), (w, d, h)),
        box_part((w / 2 - 0.08, -d / 2 - 0.02, split - 0.3), (0.025, 0.04, 0.4)),
        box_part((w / 2 - 0.08, -d / 2 - 0.02, split + 0.2), (0.025, 0.04, 0.25)),
    ]
    return parts, ["refrigerator"], [hsv(rng, (0, 1), (0, 0.05), (0.7, 0.95))], [PLAIN]


def _counter_unit(rng):
    length, d, h = rng.uniform(1.6, 3.0), 0.62, rng.uniform(0.88, 0.92)
    sw, sd = rng.uniform(0.5, 0.7), 0.4
    sx = rng.uniform(-(length - sw) / 2 + 0.1, (length - sw) / 2 - 0.1)
    top, base = h - 0.04, 0.1
    left, right = sx - sw / 2, sx + sw / 2
    a, b = -length / 2, length / 2
    parts = [
        box_part((0, 0.03, base / 2), (length - 0.02, d - 0.1, base)),  # plinth
        box_part(((a + left) / 2, 0.0, (base + top) / 2), (left - a, d - 0.04, top - base)),
        box_part(((right + b) / 2, 0.0, (base + top) / 2), (b - right, d - 0.04, top - base)),
        box_part((sx, 0.0, (base + 0.66) / 2), (sw, d - 0.04, 0.66 - base)),
        box_part((sx, -(d - 0.04) / 2 + 0.01, (0.66 + top) / 2), (sw, 0.02, top - 0.66)),
    ]
    y0, y1 = -sd / 2 - 0.02, sd / 2 - 0.02  # sink opening in the counter's depth
    g = 1
    parts += [
        box_part(((a + left) / 2, 0, h - 0.02), (left - a, d, 0.04), g),
        box_part(((right + b) / 2, 0, h - 0.02), (b - right, d, 0.04), g),
        box_part((sx, (-d / 2 + y0) / 2, h - 0.02), (sw, y0 + d / 2, 0.04), g),
        box_part((sx, (y1 + d / 2) / 2, h - 0.02), (sw, d / 2 - y1, 0.04), g),
    ]
    g = 2
    parts += [
        box_part((sx, (y0 + y1) / 2, 0.67), (sw, y1 - y0, 0.02), g),
        box_part((left + 0.01, (y0 + y1) / 2, (0.68 + top) / 2), (0.02, y1 - y0, top - 0.68), g),
        box_part((right - 0.01, (y0 + y1) / 2, (0.68 + top) / 2), (0.02, y1 - y0, top - 0.68), g),
        box_part((sx, y0 + 0.01, (0.68 + top) / 2), (sw - 0.04, 0.02, top - 0.68), g),
        box_part((sx, y1 - 0.01, (0.68 + top) / 2), (sw - 0.04, 0.02, top - 0.68), g),
    ]
    labels = ["kitchen cabinet", "counter", "sink"]
    colors = [
        wood(rng) if rng.random() < 0.5 else neutral(rng),
        hsv(rng, (0, 1), (0, 0.1), (0.2, 0.9)),
        hsv(rng, 0.6, (0.0, 0.05), (0.75, 0.9)),
    ]
    textures = [WOOD, PLAIN, PLAIN]
    if rng.random() < 0.7:  # wall cabinets above the counter
        wl = rng.uniform(0.6, length)
        labels, colors, textures = labels + ["kitchen cabinet"], colors + [colors[0]], textures + [WOOD]
        parts.append(
            box_part((rng.uniform(-(length - wl) / 2, (length - wl) / 2), d / 2 - 0.18, 1.8), (wl, 0.34, 0.7), 3)
        )
    return parts, labels, colors, textures


def _toilet(rng):
    white = hsv(rng, 0.6, (0.0, 0.04), (0.85, 0.97))
    parts = [
        box_part((0, 0.25, 0.6), (0.42, 0.18, 0.4)),
        box_part((0, 0.08, 0.19), (0.26, 0.26, 0.38)),
        cyl_part((0, -0.1, 0.19), 0.19, 0.38),
        cyl_part((0, -0.1, 0.4), 0.21, 0.04),
    ]
    return parts, ["toilet"], [white], [PLAIN]


def _bath_sink(rng):
    w, d, h = rng.uniform(0.45, 0.6), rng.uniform(0.38, 0.46), rng.uniform(0.82, 0.88)
    parts = [
        cyl_part((0, 0.0, 0.35), 0.09, 0.7),
        box_part((0, 0, 0.715), (w, d, 0.03)),
        box_part((-(w / 2 - 0.015), 0, (0.73 + h) / 2), (0.03, d, h - 0.73)),
        box_part((w / 2 - 0.015, 0, (0.73 + h) / 2), (0.03, d, h - 0.73)),
        box_part((0, -(d / 2 - 0.015), (0.73 + h) / 2), (w - 0.06, 0.03, h - 0.73)),
        box_part((0, d / 2 - 0.015, (0.73 + h) / 2), (w - 0.06, 0.03, h - 0.73)),
    ]
    return parts, ["sink"], [hsv(rng, 0.6, (0.0, 0.04), (0.85, 0.97))], [PLAIN]


def _bath_unit(rng):
    length, w, h = rng.uniform(1.5, 1.75), rng.uniform(0.7, 0.8), rng.uniform(0.5, 0.6)
    t = 0.07
    parts = [
        box_part((0, 0, 0.06), (length, w, 0.12)),
        box_part((-(length - t) / 2, 0, h / 2), (t, w, h)),
        box_part(((length - t) / 2, 0, h / 2), (t, w, h)),
        box_part((0, -(w - t) / 2, h / 2), (length - 2 * t, t, h)),
        box_part((0, (w - t) / 2, h / 2), (length - 2 * t, t, h)),
    ]
    labels, colors, textures = ["bathtub"], [hsv(rng, 0.6, (0.0, 0.04), (0.85, 0.97))], [PLAIN]
    if rng.random() < 0.8:  # shower curtain hanging into the tub, partly drawn: folds are vertical cylinders
        r = rng.uniform(0.06, 0.08)
        span = length * rng.uniform(0.35, 0.9)
        n = max(2, int(span / (1.5 * r)))
        top, bottom = rng.uniform(1.9, 2.05), 0.25
        x0 = -length / 2 + r if rng.random() < 0.5 else length / 2 - r - (n - 1) * 1.5 * r
        y = -w / 2 + t + r + 0.02
        parts += [
            cyl_part((x0 + i * 1.5 * r, y + 0.3 * r * (i % 2), (top + bottom) / 2), r, top - bottom, 1)
            for i in range(n)
        ]
        labels, colors, textures = labels + ["shower curtain"], colors + [fabric(rng)], textures + [FABRIC]
    return parts, labels, colors, textures


def _window(rng, curtains=0.6):
    w, zb, zt = rng.uniform(0.8, 1.6), rng.uniform(0.85, 1.0), rng.uniform(2.0, 2.2)
    h = zt - zb
    parts = [
        box_part((0, -0.005, (zb + zt) / 2), (w - 0.1, 0.01, h - 0.1), 1),
        box_part((-(w - 0.05) / 2, -0.025, (zb + zt) / 2), (0.05, 0.05, h)),
        box_part(((w - 0.05) / 2, -0.025, (zb + zt) / 2), (0.05, 0.05, h)),
        box_part((0, -0.025, zt - 0.025), (w - 0.1, 0.05, 0.05)),
        box_part((0, -0.025, zb + 0.025), (w - 0.1, 0.05, 0.05)),
        box_part((0, -0.075, zb - 0.015), (w + 0.1, 0.15, 0.03)),
    ]
    frame = hsv(rng, 0.1, (0.0, 0.1), (0.8, 0.95))
    labels, colors, textures = ["window", "window"], [frame, frame], [PLAIN, GLASS]
    if rng.random() < curtains:  # a gathered curtain panel on each side: folds are vertical cylinders
        r, panel = rng.uniform(0.04, 0.06), rng.uniform(0.3, 0.55)
        n = max(2, int(panel / (1.5 * r)))
        color = fabric(rng)
        for side in (-1, 1):
            g = len(labels)
            x0 = side * (w / 2 + 0.05)
            parts += [
                cyl_part((x0 - side * i * 1.5 * r, -0.12 - 0.3 * r * (i % 2), (zt + 0.17) / 2), r, zt + 0.13, g)
                for i in range(n)
            ]
            labels, colors, textures = labels + ["curtain"], colors + [color], textures + [FABRIC]
    # both window groups are one instance in ScanNet terms: merge the pane into the frame
    parts = [Part(p.kind, p.center, p.half, p.yaw, 0 if p.group == 1 else p.group) for p in parts]
    return parts, labels, colors, textures


def _door(rng):
    w, h = rng.uniform(0.8, 0.95), rng.uniform(2.0, 2.1)
    parts = [
        box_part((0, -0.02, h / 2), (w, 0.04, h)),
        box_part((-(w / 2 + 0.03), -0.01, h / 2), (0.06, 0.02, h + 0.06)),
        box_part(((w / 2 + 0.03), -0.01, h / 2), (0.06, 0.02, h + 0.06)),
        box_part((0, -0.01, h + 0.03), (w, 0.02, 0.06)),
        box_part((w / 2 - 0.1, -0.065, 1.0), (0.12, 0.05, 0.03)),
    ]
    return parts, ["door"], [wood(rng) if rng.random() < 0.6 else neutral(rng)], [WOOD]


def _picture(rng):
    w, h, zc = rng.uniform(0.3, 1.0), rng.uniform(0.3, 0.8), rng.uniform(1.35, 1.7)
    parts = [box_part((0, -0.015, zc), (w, 0.03, h)), box_part((0, -0.033, zc), (w - 0.06, 0.006, h - 0.06), 1)]
    parts = [Part(p.kind, p.center, p.half, p.yaw, 0) for p in parts]
    return parts, ["picture"], [hsv(rng, (0, 1), (0.0, 0.3), (0.1, 0.9))], [PICTURE]


def _trash_can(rng):
    r, h = rng.uniform(0.12, 0.18), rng.uniform(0.3, 0.6)
    return (
        [cyl_part((0, 0, h / 2), r, h), cyl_part((0, 0, h + 0.01), r + 0.01, 0.02)],
        ["trash can"],
        [hsv(rng, (0, 1), (0.0, 0.6), (0.2, 0.8))],
        [PLAIN],
    )


def _lamp(rng):
    h = rng.uniform(1.3, 1.6)
    parts = [
        cyl_part((0, 0, 0.015), 0.14, 0.03),
        cyl_part((0, 0, h / 2), 0.015, h),
        cyl_part((0, 0, h + 0.1), rng.uniform(0.18, 0.22), 0.25),
    ]
    return parts, ["lamp"], [hsv(rng, 0.12, (0.1, 0.3), (0.8, 0.95))], [PLAIN]


def _box_pile(rng):
    s = rng.uniform(0.25, 0.5, 3)
    parts = [box_part((0, 0, s[2] / 2), s)]
    labels = ["box"]
    if rng.random() < 0.3:
        s2 = s * rng.uniform(0.6, 0.9, 3)
        parts.append(box_part((0, 0, s[2] + s2[2] / 2), s2, 1, rng.uniform(-0.3, 0.3)))
        labels.append("box")
    card = hsv(rng, (0.07, 0.1), (0.4, 0.6), (0.5, 0.75))
    return parts, labels, [card] * len(labels), [PLAIN] * len(labels)


# fmt: off
BUILDERS = {
    "bed": _bed, "sofa_set": _sofa_set, "dining_set": _dining_set, "desk_set": _desk_set, "chair": _chair,
    "cabinet": _cabinet, "bookshelf": _bookshelf, "refrigerator": _refrigerator, "counter_unit": _counter_unit,
    "toilet": _toilet, "bath_sink": _bath_sink, "bath_unit": _bath_unit, "window": _window, "door": _door,
    "picture": _picture, "trash can": _trash_can, "lamp": _lamp, "box": _box_pile,
}
