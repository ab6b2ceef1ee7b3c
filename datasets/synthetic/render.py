"""Ray casting of a scene: every pixel's ray against every primitive, vectorised in numpy, then procedural shading
and a structured-light depth sensor model."""

from dataclasses import dataclass

import numpy as np

from datasets.synthetic.scene import BOX, FABRIC, GLASS, PICTURE, PLAIN, ROOM, STRIPES, TILES, WOOD

NEAR = 0.05  # metres; hits closer than this are ignored
MAX_RANGE = 5.0  # metres; the sensor returns 0 beyond
MIN_COS = 0.08  # the sensor returns 0 where the ray meets the surface at a grazing angle


@dataclass
class Frame:
    rgb: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) uint16 millimetres, 0 = invalid
    label: np.ndarray  # (H, W) uint16 ScanNet raw ids, 0 = unannotated
    instance: np.ndarray  # (H, W) uint8, 0 = none
    z: np.ndarray  # (H, W) float32 exact noise-free z-depth in metres (before the sensor model)
    normal: np.ndarray  # (H, W, 3) float32 world-space unit normals
    primitive: np.ndarray  # (H, W) int32 index of the visible primitive


def render(scene, K, pose, height, width, rng=None):
    """Ray-cast one frame. With `rng`, add sensor noise (RGB noise and gain, depth noise growing with
    z^2, dropouts at depth edges); without it the output is exact. Range and grazing-angle invalidation
    always apply."""
    K, pose = np.asarray(K, np.float64), np.asarray(pose, np.float64)
    tab = scene.arrays()
    rot, eye = pose[:3, :3], pose[:3, 3]
    u = (np.arange(width) - K[0, 2]) / K[0, 0]
    v = (np.arange(height) - K[1, 2]) / K[1, 1]
    cam = np.stack(np.broadcast_arrays(u[None, :], v[:, None], np.ones((1, 1))), -1)
    dirs = (cam @ rot.T).astype(np.float32)  # world ray directions with camera-z component 1
    components = (dirs[..., 0].copy(), dirs[..., 1].copy(), dirs[..., 2].copy())

    t, prim, normal = hit_room(scene.size, eye, components)
    for k in np.flatnonzero(tab["kind"] != ROOM):
        rect = _screen_rect(tab, k, K, rot, eye, height, width)
        if rect is not None:
            _hit_primitive(tab, k, eye, components, rect, t, prim, normal)

    points = eye.astype(np.float32) + t[..., None] * dirs
    rgb = _shade(scene, tab, prim, points, normal)
    cos = np.abs(np.einsum("hwc,hwc->hw", normal, dirs)) / np.linalg.norm(dirs, axis=-1)
    measured = t
    if rng is not None:
        measured, rgb = _sensor_noise(t, rgb, rng)
    valid = (measured > NEAR) & (measured <= MAX_RANGE) & (cos >= MIN_COS)
    depth = np.where(valid, np.round(measured * 1000.0), 0).astype(np.uint16)
    rgb = np.clip(np.round(rgb), 0, 255).astype(np.uint8)
    return Frame(
        rgb=rgb,
        depth=depth,
        label=tab["label"][prim],
        instance=tab["instance"][prim],
        z=t,
        normal=normal,
        primitive=prim,
    )


def hit_room(size, eye, dirs):
    """Exit distance of every ray from the room box (the camera must be inside), the surface hit and its
    inward normal."""
    t = np.full(dirs[0].shape, np.inf, np.float32)
    prim = np.zeros(dirs[0].shape, np.int32)
    with np.errstate(divide="ignore", invalid="ignore"):
        for axis, (lo_prim, hi_prim) in enumerate([(4, 5), (2, 3), (0, 1)]):
            d = dirs[axis]
            ta = np.where(d > 0, np.float32(size[axis] - eye[axis]), np.float32(-eye[axis])) / d
            ta[d == 0] = np.inf
            closer = ta < t
            t = np.where(closer, ta, t)
            prim = np.where(closer, np.where(d > 0, hi_prim, lo_prim), prim)
    inward = np.array([[0, 0, 1], [0, 0, -1], [0, 1, 0], [0, -1, 0], [1, 0, 0], [-1, 0, 0]], np.float32)
    return t, prim.astype(np.int32), inward[prim]


def _screen_rect(tab, k, K, rot, eye, height, width):
    """Pixel rectangle covering the primitive's bounding box, or None when it cannot be seen."""
    hx, hy, hz = tab["half"][k]
    c, s = tab["cos"][k], tab["sin"][k]
    corners = np.array([[x, y, zz] for x in (-hx, hx) for y in (-hy, hy) for zz in (-hz, hz)])
    world = tab["center"][k] + np.stack(
        [c * corners[:, 0] - s * corners[:, 1], s * corners[:, 0] + c * corners[:, 1], corners[:, 2]], -1
    )
    camera = (world - eye) @ rot
    zc = camera[:, 2]
    if np.all(zc <= NEAR):
        return None
    if np.any(zc <= NEAR):
        return 0, height, 0, width
    px = K[0, 0] * camera[:, 0] / zc + K[0, 2]
    py = K[1, 1] * camera[:, 1] / zc + K[1, 2]
    u0, u1 = max(int(np.floor(px.min())), 0), min(int(np.ceil(px.max())) + 1, width)
    v0, v1 = max(int(np.floor(py.min())), 0), min(int(np.ceil(py.max())) + 1, height)
    if u0 >= u1 or v0 >= v1:
        return None
    return v0, v1, u0, u1


def _hit_primitive(tab, k, eye, dirs, rect, t_buf, prim_buf, normal_buf):
    """Intersect primitive k with the rays in `rect` and keep the nearer hits in the buffers (in place)."""
    v0, v1, u0, u1 = rect
    dx, dy, dz = dirs[0][v0:v1, u0:u1], dirs[1][v0:v1, u0:u1], dirs[2][v0:v1, u0:u1]
    c, s = np.float32(tab["cos"][k]), np.float32(tab["sin"][k])
    rel = eye - tab["center"][k]
    o = np.array([c * rel[0] + s * rel[1], -s * rel[0] + c * rel[1], rel[2]], np.float32)
    d = (c * dx + s * dy, -s * dx + c * dy, dz)  # ray directions in the primitive's frame
    half = tab["half"][k].astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if tab["kind"][k] == BOX:
            t, local_normals = _box(o, d, half)
        else:
            t, local_normals = _cylinder(o, d, half)
    tb = t_buf[v0:v1, u0:u1]
    closer = t < tb
    if not closer.any():
        return
    tb[closer] = t[closer]
    prim_buf[v0:v1, u0:u1][closer] = k
    n = local_normals(closer)
    world = np.stack([c * n[:, 0] - s * n[:, 1], s * n[:, 0] + c * n[:, 1], n[:, 2]], -1)
    normal_buf[v0:v1, u0:u1][closer] = world


def _box(o, d, half):
    """Slab test; returns entry distances (inf on a miss) and a function giving local normals on a mask."""
    near, far = [], []
    for axis in range(3):
        inv = np.float32(1.0) / d[axis]
        t1, t2 = (-half[axis] - o[axis]) * inv, (half[axis] - o[axis]) * inv
        near.append(np.minimum(t1, t2))
        far.append(np.maximum(t1, t2))
    tmin = np.maximum(np.maximum(near[0], near[1]), near[2])
    tmax = np.minimum(np.minimum(far[0], far[1]), far[2])
    t = np.where((tmin <= tmax) & (tmin > NEAR), tmin, np.float32(np.inf))

    def normals(mask):
        n = np.zeros((int(mask.sum()), 3), np.float32)
        tm = tmin[mask]
        for axis in (2, 1, 0):  # ties resolved towards the lowest axis, like argmax
            face = near[axis][mask] == tm
            n[face] = 0
            n[face, axis] = -np.sign(d[axis][mask][face])
        return n

    return t, normals


def _cylinder(o, d, half):
    """Vertical cylinder (radius half[0], half height half[2]) centred at the origin: side and caps."""
    r, hz = half[0], half[2]
    a = d[0] * d[0] + d[1] * d[1]
    b = 2 * (o[0] * d[0] + o[1] * d[1])
    cc = o[0] ** 2 + o[1] ** 2 - r * r
    disc = b * b - 4 * a * cc
    ts = (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a)
    zs = o[2] + ts * d[2]
    side = (disc >= 0) & (a > 0) & (ts > NEAR) & (np.abs(zs) <= hz)
    t = np.where(side, ts, np.float32(np.inf))
    cap_z = hz if o[2] > hz else (-hz if o[2] < -hz else None)
    cap = np.zeros_like(side)
    if cap_z is not None:
        tc = (cap_z - o[2]) / d[2]
        xc, yc = o[0] + tc * d[0], o[1] + tc * d[1]
        cap = (tc > NEAR) & (xc * xc + yc * yc <= r * r) & (tc < t)
        t = np.where(cap, tc, t)

    def normals(mask):
        tm = t[mask]
        n = np.stack([(o[0] + tm * d[0][mask]) / r, (o[1] + tm * d[1][mask]) / r, np.zeros_like(tm)], -1)
        n[cap[mask]] = (0, 0, np.sign(cap_z) if cap_z is not None else 1)
        return n.astype(np.float32)

    return t.astype(np.float32), normals


def _shade(scene, tab, prim, points, normal):
    """Albedo from per-instance colours and procedural textures, lit by point lights plus ambient."""
    flat = prim.ravel()
    p = points.reshape(-1, 3)
    albedo = tab["color"][flat]
    factor = np.ones(flat.size, np.float32)
    lit = np.ones(flat.size, bool)
    tex = tab["texture"][flat]
    two_pi = np.float32(2 * np.pi)
    for code in np.unique(tex):
        idx = np.flatnonzero(tex == code)
        k = flat[idx]
        rel = p[idx] - tab["center"][k].astype(np.float32)
        c, s = tab["cos"][k].astype(np.float32), tab["sin"][k].astype(np.float32)
        qx, qy, qz = c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1], rel[:, 2]
        prm = tab["params"][k]
        if code == PLAIN:
            factor[idx] = 1 + 0.05 * np.sin(two_pi * 0.7 * qx + prm[:, 2]) * np.sin(two_pi * 0.9 * qz + prm[:, 3])
        elif code == WOOD:
            factor[idx] = 0.93 + 0.07 * np.sin(two_pi * 14 * (qy + qz + 0.03 * np.sin(two_pi * 1.3 * qx + prm[:, 2])))
        elif code == FABRIC:
            factor[idx] = 0.9 + 0.08 * np.sin(two_pi * 14 * qx) * np.sin(two_pi * 14 * qz + prm[:, 2])
        elif code == TILES:
            size = np.maximum(prm[:, 0], 0.1)
            gx, gy = p[idx, 0] / size, p[idx, 1] / size
            ix, iy = np.floor(gx).astype(np.int64), np.floor(gy).astype(np.int64)
            tone = ((ix * 73856093) ^ (iy * 19349663)) % 97 / np.float32(97.0)
            grout = (gx - ix < 0.04) | (gy - iy < 0.04)
            factor[idx] = np.where(grout, 0.6, 0.88 + 0.16 * tone)
        elif code == STRIPES:
            factor[idx] = np.where(np.sin(two_pi * 3 * qx + prm[:, 2]) > 0, 1.0, 0.94)
        elif code == PICTURE:
            phase = prm[:, 2:3] + np.array([0, 2.1, 4.2], np.float32)
            albedo[idx] = 0.5 + 0.4 * np.sin(two_pi * (1.7 * qx + 2.3 * qz)[:, None] + phase) * np.cos(
                two_pi * (2.9 * qz - 1.1 * qx)[:, None] + 0.5 * phase
            )
        elif code == GLASS:
            albedo[idx] = np.stack([0.55 + 0.1 * qz, 0.72 + 0.1 * qz, np.full_like(qz, 0.95)], -1)
            lit[idx] = False
        else:  # EMISSIVE
            lit[idx] = False
    shading = np.full(flat.size, 0.32, np.float32)
    n = normal.reshape(-1, 3)
    for x, y, zl, power in scene.lights:
        lx, ly, lz = np.float32(x) - p[:, 0], np.float32(y) - p[:, 1], np.float32(zl) - p[:, 2]
        dist2 = lx * lx + ly * ly + lz * lz
        lam = (n[:, 0] * lx + n[:, 1] * ly + n[:, 2] * lz) / np.sqrt(dist2)
        shading += np.float32(power) * np.maximum(lam, 0) / (1 + np.float32(0.18) * dist2)
    shading = np.where(lit, shading * factor, factor) * np.float32(255)
    return (albedo * shading[:, None]).reshape(points.shape)


def _sensor_noise(z, rgb, rng):
    """Structured-light style depth noise (sigma = 1.2 mm + 1.9 mm (z - 0.4)^2, Kinect-like), dropouts on
    the far side of depth edges, and RGB gain plus Gaussian luminance noise."""
    sigma = 0.0012 + 0.0019 * (z - 0.4) ** 2
    noisy = z + sigma * rng.standard_normal(z.shape, dtype=np.float32)
    edge = np.zeros(z.shape, bool)
    for a, b, ea, eb in ((z[1:], z[:-1], edge[1:], edge[:-1]), (z[:, 1:], z[:, :-1], edge[:, 1:], edge[:, :-1])):
        jump = np.abs(a - b) > 0.06 * np.minimum(a, b)
        ea |= jump & (a > b)  # the farther pixel of a jump loses its depth (sensor shadow)
        eb |= jump & (b > a)
    noisy[edge & (rng.random(z.shape, dtype=np.float32) < 0.6)] = 0
    gain = (rng.uniform(0.9, 1.1, 3) * rng.uniform(0.85, 1.15)).astype(np.float32)
    rgb = rgb * gain + np.float32(3.0) * rng.standard_normal((*rgb.shape[:2], 1), dtype=np.float32)
    return noisy, rgb
