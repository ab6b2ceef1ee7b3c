"""Procedural RGB-D indoor scenes with exact labels, rendered by vectorised numpy ray casting.

Why: no real dataset can be downloaded by our commands, yet pre-training and the benchmark must run end to
end. Scenes are rooms (floor, walls, ceiling) holding furniture of ScanNet's benchmark classes built from
boxes and vertical cylinders, each class with its own shape and size so that geometry predicts semantics.
Conventions are ScanNet's: world z is up (floor at z = 0), camera axes are OpenCV's (x right, y down,
z forward), poses are 4x4 camera-to-world, depth is the z-distance along the optical axis, labels are
ScanNet raw ids (the `id` column of `scannetv2-labels.combined.tsv`). `tools.make_synthetic` writes
scenes in the exported-ScanNet layout.
"""

from dataclasses import dataclass, field

import numpy as np

# name -> (ScanNet id, nyu40id), both as in ScanNet's public scannetv2-labels.combined.tsv.
# fmt: off
CATEGORIES = {
    "wall": (1, 1), "chair": (2, 5), "floor": (3, 2), "table": (4, 7), "door": (5, 8), "couch": (6, 6),
    "cabinet": (7, 3), "desk": (9, 14), "office chair": (10, 5), "bed": (11, 4), "pillow": (13, 18),
    "sink": (14, 34), "picture": (15, 11), "window": (16, 9), "toilet": (17, 33), "bookshelf": (18, 10),
    "curtain": (21, 16), "book": (22, 23), "coffee table": (24, 7), "box": (26, 29),
    "refrigerator": (27, 24), "lamp": (28, 35), "kitchen cabinet": (29, 3), "counter": (35, 12),
    "ceiling": (41, 22), "bathtub": (42, 36), "shower curtain": (55, 28), "trash can": (56, 39),
}
# fmt: on
NYU40_CLASSES = tuple(
    "wall|floor|cabinet|bed|chair|sofa|table|door|window|bookshelf|picture|counter|blinds|desk|shelves|curtain|"
    "dresser|pillow|mirror|floor mat|clothes|ceiling|books|refridgerator|television|paper|towel|shower curtain|"
    "box|whiteboard|person|night stand|toilet|sink|lamp|bathtub|bag|otherstructure|otherfurniture|otherprop".split("|")
)
UNANNOTATED = 0  # ScanNet's id for pixels no annotator labelled (ceiling lamps here)

BOX, CYLINDER, ROOM = 0, 1, 2
PLAIN, WOOD, FABRIC, TILES, STRIPES, PICTURE, GLASS, EMISSIVE = range(8)
NEAR = 0.05  # metres; hits closer than this are ignored
MAX_RANGE = 5.0  # metres; the sensor returns 0 beyond
MIN_COS = 0.08  # the sensor returns 0 where the ray meets the surface at a grazing angle


def label_id(name):
    return CATEGORIES[name][0]


@dataclass
class Part:
    """One primitive in its object's frame: a box (half extents) or a vertical cylinder (r, r, half height)."""

    kind: int
    center: tuple
    half: tuple
    yaw: float = 0.0
    group: int = 0  # parts of one object sharing a group form one instance


@dataclass
class Scene:
    """Room of size (Lx, Ly, Lz) with its corner at the origin, plus primitives as flat arrays.

    Primitives 0..5 are the room: floor, ceiling, walls at y=0, y=Ly, x=0, x=Lx."""

    name: str
    scene_type: str
    size: np.ndarray
    kind: list = field(default_factory=list)
    center: list = field(default_factory=list)
    half: list = field(default_factory=list)
    yaw: list = field(default_factory=list)
    label: list = field(default_factory=list)
    instance: list = field(default_factory=list)
    color: list = field(default_factory=list)
    texture: list = field(default_factory=list)
    params: list = field(default_factory=list)
    lights: list = field(default_factory=list)  # (x, y, z, power)
    occupied: list = field(default_factory=list)  # world AABBs (x0, y0, z0, x1, y1, z1) of placed objects
    n_instances: int = 0

    def add(self, kind, center, half, yaw, label, instance, color, texture, params=None):
        self.kind.append(kind)
        self.center.append(np.asarray(center, np.float64))
        self.half.append(np.asarray(half, np.float64))
        self.yaw.append(float(yaw))
        self.label.append(int(label))
        self.instance.append(int(instance))
        self.color.append(np.clip(np.asarray(color, np.float64), 0, 1))
        self.texture.append(int(texture))
        self.params.append(np.zeros(4) if params is None else np.asarray(params, np.float64))
        return len(self.kind) - 1

    def new_instance(self):
        if self.n_instances >= 255:
            raise ValueError(f"scene {self.name} has more than 255 instances (8-bit instance images)")
        self.n_instances += 1
        return self.n_instances

    def arrays(self):
        """The primitive table as numpy arrays (cached; call after the scene is complete)."""
        if getattr(self, "_arrays", None) is None or len(self._arrays["kind"]) != len(self.kind):
            self._arrays = {
                "kind": np.array(self.kind, np.int8),
                "center": np.array(self.center),
                "half": np.array(self.half),
                "cos": np.cos(self.yaw),
                "sin": np.sin(self.yaw),
                "label": np.array(self.label, np.uint16),
                "instance": np.array(self.instance, np.uint8),
                "color": np.array(self.color, np.float32),
                "texture": np.array(self.texture, np.int8),
                "params": np.array(self.params, np.float32),
            }
        return self._arrays


def empty_room(
    size,
    name="room",
    scene_type="test",
    floor_color=(0.55, 0.45, 0.35),
    wall_color=(0.8, 0.8, 0.78),
    ceiling_color=(0.92, 0.92, 0.92),
    floor_texture=WOOD,
    wall_texture=PLAIN,
):
    """A room [0, Lx] x [0, Ly] x [0, Lz] whose floor, ceiling and four walls are instances 1..6."""
    lx, ly, lz = (float(v) for v in size)
    scene = Scene(name, scene_type, np.array([lx, ly, lz]))
    surfaces = [  # label, centre, yaw (the surface's local x runs along it), colour, texture
        ("floor", (lx / 2, ly / 2, 0.0), 0.0, floor_color, floor_texture),
        ("ceiling", (lx / 2, ly / 2, lz), 0.0, ceiling_color, PLAIN),
        ("wall", (lx / 2, 0.0, lz / 2), np.pi, wall_color, wall_texture),
        ("wall", (lx / 2, ly, lz / 2), 0.0, wall_color, wall_texture),
        ("wall", (0.0, ly / 2, lz / 2), np.pi / 2, wall_color, wall_texture),
        ("wall", (lx, ly / 2, lz / 2), -np.pi / 2, wall_color, wall_texture),
    ]
    for name_, center, yaw, color, texture in surfaces:
        scene.add(
            ROOM, center, (0, 0, 0), yaw, label_id(name_), scene.new_instance(), color, texture, (0.4, 1.0, 0.0, 0.0)
        )
    return scene


def add_object(scene, parts, origin, yaw, labels, colors, textures, params=None):
    """Place `parts` (object frame, z from the floor) at `origin` rotated by `yaw`; each part group becomes
    one instance with `labels[group]` (a category name, or None for unannotated). Returns instance ids."""
    c, s = np.cos(yaw), np.sin(yaw)
    groups = sorted({p.group for p in parts})
    inst = {g: (0 if labels[g] is None else scene.new_instance()) for g in groups}
    for p in parts:
        px, py, pz = p.center
        center = np.array([origin[0] + c * px - s * py, origin[1] + s * px + c * py, origin[2] + pz])
        label = UNANNOTATED if labels[p.group] is None else label_id(labels[p.group])
        prm = None if params is None else params[p.group]
        scene.add(p.kind, center, p.half, yaw + p.yaw, label, inst[p.group], colors[p.group], textures[p.group], prm)
    return [inst[g] for g in groups]


def _world_extent(half, yaw, kind):
    hx, hy, hz = half
    if kind == CYLINDER:
        return np.array([hx, hx, hz])
    c, s = abs(np.cos(yaw)), abs(np.sin(yaw))
    return np.array([c * hx + s * hy, s * hx + c * hy, hz])


def intrinsics(height, width):
    """3x3 pinhole matrix with ScanNet's depth-camera field of view (fx = 577.87 at 640x480)."""
    fx = 577.870605 * width / 640.0
    fy = 577.870605 * height / 480.0
    return np.array([[fx, 0, (width - 1) / 2.0], [0, fy, (height - 1) / 2.0], [0, 0, 1.0]])


def look_at(eye, target, roll=0.0):
    """Camera-to-world 4x4 pose (OpenCV axes) at `eye` looking at `target`, z up, rolled by `roll` rad."""
    eye, target = np.asarray(eye, np.float64), np.asarray(target, np.float64)
    fwd = target - eye
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    cr, sr = np.cos(roll), np.sin(roll)
    right, down = cr * right + sr * down, -sr * right + cr * down
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, fwd, eye
    return pose


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

    t, prim, normal = _hit_room(scene.size, eye, components)
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


def _hit_room(size, eye, dirs):
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


# ----------------------------------------------------------------------------------------------------------
# Furniture: each builder returns (parts, labels, colours, textures) in the object frame: x along the
# object's width, +y towards its back (the wall, for wall objects), z up from the floor.


def _box_part(center, size, group=0, yaw=0.0):
    return Part(BOX, tuple(center), tuple(0.5 * np.asarray(size, float)), yaw, group)


def _cyl_part(center, radius, height, group=0):
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


def _hsv(rng, hue, sat, val):
    h = (rng.uniform(*hue) if isinstance(hue, tuple) else hue) % 1.0
    s = rng.uniform(*sat) if isinstance(sat, tuple) else sat
    v = rng.uniform(*val) if isinstance(val, tuple) else val
    i, f = int(h * 6) % 6, h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i])


def _wood(rng):
    return _hsv(rng, (0.06, 0.1), (0.35, 0.6), (0.35, 0.8))


def _fabric(rng):
    return _hsv(rng, (0.0, 1.0), (0.15, 0.55), (0.3, 0.75))


def _neutral(rng):
    return _hsv(rng, (0.0, 1.0), (0.0, 0.08), (0.55, 0.92))


def _chair_parts(rng, group=0):
    w, d = rng.uniform(0.42, 0.5), rng.uniform(0.42, 0.5)
    seat, top = rng.uniform(0.43, 0.48), rng.uniform(0.8, 0.95)
    parts = [_box_part((0, 0, seat - 0.025), (w, d, 0.05), group)]
    parts += [
        _box_part((sx * (w / 2 - 0.025), sy * (d / 2 - 0.025), (seat - 0.05) / 2), (0.04, 0.04, seat - 0.05), group)
        for sx in (-1, 1)
        for sy in (-1, 1)
    ]
    parts.append(_box_part((0, d / 2 - 0.02, (seat + top) / 2), (w, 0.04, top - seat), group))
    return parts


def _office_chair_parts(rng, group=0):
    seat = rng.uniform(0.45, 0.52)
    return [
        _cyl_part((0, 0, 0.03), 0.3, 0.06, group),
        _cyl_part((0, 0, (seat - 0.02) / 2 + 0.03), 0.03, seat - 0.08, group),
        _box_part((0, 0, seat - 0.04), (0.5, 0.48, 0.08), group),
        _box_part((0, 0.22, seat + 0.33), (0.46, 0.06, rng.uniform(0.45, 0.6)), group),
    ]


def _chair(rng):
    return _chair_parts(rng), ["chair"], [_wood(rng)], [WOOD]


def _bed(rng):
    w, length, h = rng.uniform(1.0, 1.9), rng.uniform(1.95, 2.15), rng.uniform(0.45, 0.6)
    parts = [
        _box_part((0, 0, (h - 0.18) / 2), (w, length, h - 0.18)),
        _box_part((0, -0.02, h - 0.09), (w - 0.06, length - 0.1, 0.18)),
        _box_part((0, length / 2 - 0.04, rng.uniform(0.45, 0.62)), (w + 0.04, 0.08, rng.uniform(0.9, 1.24))),
    ]
    n = 1 if w < 1.3 else 2
    pw = min(0.62, w / n - 0.08)
    for i in range(n):
        x = 0.0 if n == 1 else (i - 0.5) * (w / 2)
        parts.append(_box_part((x, length / 2 - 0.32, h + 0.065), (pw, 0.38, 0.13), 1 + i))
    pillow = _hsv(rng, (0, 1), (0.0, 0.2), (0.8, 0.95))
    return (parts, ["bed"] + ["pillow"] * n, [_fabric(rng)] + [pillow] * n, [FABRIC] * (1 + n))


def _sofa_set(rng):
    w, d = rng.uniform(1.5, 2.3), rng.uniform(0.85, 0.95)
    arm, back = rng.uniform(0.15, 0.2), rng.uniform(0.78, 0.9)
    parts = [
        _box_part((0, 0, 0.21), (w - 2 * arm, d, 0.42)),
        _box_part((0, d / 2 - 0.1, back / 2), (w - 2 * arm, 0.2, back)),
        _box_part((-(w - arm) / 2, 0, 0.3), (arm, d, 0.6)),
        _box_part(((w - arm) / 2, 0, 0.3), (arm, d, 0.6)),
    ]
    labels, colors, textures = ["couch"], [_fabric(rng)], [FABRIC]
    for i in range(int(rng.integers(0, 3))):
        x = (i - 0.5) * (w - 2 * arm - 0.5) if rng.random() < 0.9 else 0.0
        parts.append(_box_part((x, d / 2 - 0.27, 0.61), (0.42, 0.14, 0.4), len(labels)))
        labels, colors, textures = labels + ["pillow"], colors + [_fabric(rng)], textures + [FABRIC]
    if rng.random() < 0.8:  # coffee table in front of the sofa
        lt, wt, ht = rng.uniform(0.8, 1.2), rng.uniform(0.45, 0.6), rng.uniform(0.38, 0.46)
        y = -d / 2 - rng.uniform(0.35, 0.5) - wt / 2
        g = len(labels)
        parts.append(_box_part((0, y, ht - 0.02), (lt, wt, 0.04), g))
        parts += [
            _box_part((sx * (lt / 2 - 0.04), y + sy * (wt / 2 - 0.04), (ht - 0.04) / 2), (0.04, 0.04, ht - 0.04), g)
            for sx in (-1, 1)
            for sy in (-1, 1)
        ]
        labels, colors, textures = labels + ["coffee table"], colors + [_wood(rng)], textures + [WOOD]
    return parts, labels, colors, textures


def _dining_set(rng):
    h = rng.uniform(0.72, 0.78)
    labels, colors, textures = ["table"], [_wood(rng)], [WOOD]
    chair_color = _wood(rng) if rng.random() < 0.5 else _fabric(rng)
    seats = []
    if rng.random() < 0.7:
        lt, wt = rng.uniform(1.2, 1.8), rng.uniform(0.75, 0.95)
        parts = [_box_part((0, 0, h - 0.02), (lt, wt, 0.04))]
        parts += [
            _box_part((sx * (lt / 2 - 0.06), sy * (wt / 2 - 0.06), (h - 0.04) / 2), (0.06, 0.06, h - 0.04))
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
            _cyl_part((0, 0, h - 0.02), r, 0.04),
            _cyl_part((0, 0, (h - 0.04) / 2), 0.05, h - 0.04),
            _cyl_part((0, 0, 0.015), 0.25, 0.03),
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
        _box_part((0, 0, h - 0.015), (w, d, 0.03)),
        _box_part((side * (w / 2 - 0.2), 0.02, (h - 0.03) / 2), (0.4, d - 0.05, h - 0.03)),
        _box_part((-side * (w / 2 - 0.015), 0.02, (h - 0.03) / 2), (0.03, d - 0.05, h - 0.03)),
    ]
    labels, colors, textures = ["desk"], [_wood(rng) if rng.random() < 0.6 else _neutral(rng)], [WOOD]
    if rng.random() < 0.85:
        chair = _office_chair_parts(rng) if rng.random() < 0.7 else _chair_parts(rng)
        name = "office chair" if len(chair) == 4 else "chair"
        parts += _moved(chair, (rng.uniform(-0.2, 0.2), -d / 2 - rng.uniform(0.1, 0.35)), np.pi + rng.normal(0, 0.3), 1)
        labels, colors, textures = (
            labels + [name],
            colors + [_hsv(rng, (0, 1), (0, 0.3), (0.1, 0.4))],
            textures + [PLAIN],
        )
    return parts, labels, colors, textures


def _cabinet(rng):
    w, d = rng.uniform(0.6, 1.6), rng.uniform(0.4, 0.6)
    h = rng.uniform(0.75, 1.0) if rng.random() < 0.65 else rng.uniform(1.6, 2.0)
    parts = [_box_part((0, 0, 0.05), (w - 0.04, d - 0.04, 0.1)), _box_part((0, 0, (h + 0.1) / 2), (w, d, h - 0.1))]
    for sx in (-1, 1):
        parts.append(_box_part((sx * 0.06, -d / 2 - 0.015, h * 0.6), (0.02, 0.03, 0.14)))
    return parts, ["cabinet"], [_wood(rng) if rng.random() < 0.6 else _neutral(rng)], [WOOD]


def _bookshelf(rng):
    w, d, h = rng.uniform(0.7, 1.2), rng.uniform(0.28, 0.36), rng.uniform(1.7, 2.1)
    t = 0.02
    parts = [_box_part((sx * (w / 2 - t / 2), 0, h / 2), (t, d, h)) for sx in (-1, 1)]
    parts += [
        _box_part((0, d / 2 - 0.005, h / 2), (w, 0.01, h)),
        _box_part((0, 0, h - t / 2), (w, d, t)),
        _box_part((0, 0, 0.04), (w - 2 * t, d, 0.08)),
    ]
    n = int(rng.integers(4, 6))
    levels = np.linspace(0.08, h - t, n + 1)
    labels, colors, textures = ["bookshelf"], [_wood(rng)], [WOOD]
    for i, z in enumerate(levels):
        if 0 < i < n:
            parts.append(_box_part((0, 0, z), (w - 2 * t, d - 0.01, t)))
        if i < n and rng.random() < 0.6:
            gap = levels[i + 1] - z - t
            bw = rng.uniform(0.3, 0.9) * (w - 2 * t)
            x = rng.uniform(-(w - 2 * t - bw) / 2, (w - 2 * t - bw) / 2)
            bh = min(gap - 0.02, rng.uniform(0.18, 0.26))
            parts.append(_box_part((x, d / 2 - 0.11, z + t / 2 + bh / 2), (bw, 0.2, bh), len(labels)))
            labels, colors, textures = labels + ["book"], colors + [_fabric(rng)], textures + [STRIPES]
    return parts, labels, colors, textures


def _refrigerator(rng):
    w, d, h = rng.uniform(0.6, 0.8), rng.uniform(0.65, 0.75), rng.uniform(1.7, 1.9)
    split = h * rng.uniform(0.6, 0.7)
    parts = [
        _box_part((0, 0, h / 2), (w, d, h)),
        _box_part((w / 2 - 0.08, -d / 2 - 0.02, split - 0.3), (0.025, 0.04, 0.4)),
        _box_part((w / 2 - 0.08, -d / 2 - 0.02, split + 0.2), (0.025, 0.04, 0.25)),
    ]
    return parts, ["refrigerator"], [_hsv(rng, (0, 1), (0, 0.05), (0.7, 0.95))], [PLAIN]


def _counter_unit(rng):
    length, d, h = rng.uniform(1.6, 3.0), 0.62, rng.uniform(0.88, 0.92)
    sw, sd = rng.uniform(0.5, 0.7), 0.4
    sx = rng.uniform(-(length - sw) / 2 + 0.1, (length - sw) / 2 - 0.1)
    top, base = h - 0.04, 0.1
    left, right = sx - sw / 2, sx + sw / 2
    a, b = -length / 2, length / 2
    parts = [
        _box_part((0, 0.03, base / 2), (length - 0.02, d - 0.1, base)),  # plinth
        _box_part(((a + left) / 2, 0.0, (base + top) / 2), (left - a, d - 0.04, top - base)),
        _box_part(((right + b) / 2, 0.0, (base + top) / 2), (b - right, d - 0.04, top - base)),
        _box_part((sx, 0.0, (base + 0.66) / 2), (sw, d - 0.04, 0.66 - base)),
        _box_part((sx, -(d - 0.04) / 2 + 0.01, (0.66 + top) / 2), (sw, 0.02, top - 0.66)),
    ]
    y0, y1 = -sd / 2 - 0.02, sd / 2 - 0.02  # sink opening in the counter's depth
    g = 1
    parts += [
        _box_part(((a + left) / 2, 0, h - 0.02), (left - a, d, 0.04), g),
        _box_part(((right + b) / 2, 0, h - 0.02), (b - right, d, 0.04), g),
        _box_part((sx, (-d / 2 + y0) / 2, h - 0.02), (sw, y0 + d / 2, 0.04), g),
        _box_part((sx, (y1 + d / 2) / 2, h - 0.02), (sw, d / 2 - y1, 0.04), g),
    ]
    g = 2
    parts += [
        _box_part((sx, (y0 + y1) / 2, 0.67), (sw, y1 - y0, 0.02), g),
        _box_part((left + 0.01, (y0 + y1) / 2, (0.68 + top) / 2), (0.02, y1 - y0, top - 0.68), g),
        _box_part((right - 0.01, (y0 + y1) / 2, (0.68 + top) / 2), (0.02, y1 - y0, top - 0.68), g),
        _box_part((sx, y0 + 0.01, (0.68 + top) / 2), (sw - 0.04, 0.02, top - 0.68), g),
        _box_part((sx, y1 - 0.01, (0.68 + top) / 2), (sw - 0.04, 0.02, top - 0.68), g),
    ]
    labels = ["kitchen cabinet", "counter", "sink"]
    colors = [
        _wood(rng) if rng.random() < 0.5 else _neutral(rng),
        _hsv(rng, (0, 1), (0, 0.1), (0.2, 0.9)),
        _hsv(rng, 0.6, (0.0, 0.05), (0.75, 0.9)),
    ]
    textures = [WOOD, PLAIN, PLAIN]
    if rng.random() < 0.7:  # wall cabinets above the counter
        wl = rng.uniform(0.6, length)
        labels, colors, textures = labels + ["kitchen cabinet"], colors + [colors[0]], textures + [WOOD]
        parts.append(
            _box_part((rng.uniform(-(length - wl) / 2, (length - wl) / 2), d / 2 - 0.18, 1.8), (wl, 0.34, 0.7), 3)
        )
    return parts, labels, colors, textures


def _toilet(rng):
    white = _hsv(rng, 0.6, (0.0, 0.04), (0.85, 0.97))
    parts = [
        _box_part((0, 0.25, 0.6), (0.42, 0.18, 0.4)),
        _box_part((0, 0.08, 0.19), (0.26, 0.26, 0.38)),
        _cyl_part((0, -0.1, 0.19), 0.19, 0.38),
        _cyl_part((0, -0.1, 0.4), 0.21, 0.04),
    ]
    return parts, ["toilet"], [white], [PLAIN]


def _bath_sink(rng):
    w, d, h = rng.uniform(0.45, 0.6), rng.uniform(0.38, 0.46), rng.uniform(0.82, 0.88)
    parts = [
        _cyl_part((0, 0.0, 0.35), 0.09, 0.7),
        _box_part((0, 0, 0.715), (w, d, 0.03)),
        _box_part((-(w / 2 - 0.015), 0, (0.73 + h) / 2), (0.03, d, h - 0.73)),
        _box_part((w / 2 - 0.015, 0, (0.73 + h) / 2), (0.03, d, h - 0.73)),
        _box_part((0, -(d / 2 - 0.015), (0.73 + h) / 2), (w - 0.06, 0.03, h - 0.73)),
        _box_part((0, d / 2 - 0.015, (0.73 + h) / 2), (w - 0.06, 0.03, h - 0.73)),
    ]
    return parts, ["sink"], [_hsv(rng, 0.6, (0.0, 0.04), (0.85, 0.97))], [PLAIN]


def _bath_unit(rng):
    length, w, h = rng.uniform(1.5, 1.75), rng.uniform(0.7, 0.8), rng.uniform(0.5, 0.6)
    t = 0.07
    parts = [
        _box_part((0, 0, 0.06), (length, w, 0.12)),
        _box_part((-(length - t) / 2, 0, h / 2), (t, w, h)),
        _box_part(((length - t) / 2, 0, h / 2), (t, w, h)),
        _box_part((0, -(w - t) / 2, h / 2), (length - 2 * t, t, h)),
        _box_part((0, (w - t) / 2, h / 2), (length - 2 * t, t, h)),
    ]
    labels, colors, textures = ["bathtub"], [_hsv(rng, 0.6, (0.0, 0.04), (0.85, 0.97))], [PLAIN]
    if rng.random() < 0.8:  # shower curtain hanging into the tub, partly drawn: folds are vertical cylinders
        r = rng.uniform(0.06, 0.08)
        span = length * rng.uniform(0.35, 0.9)
        n = max(2, int(span / (1.5 * r)))
        top, bottom = rng.uniform(1.9, 2.05), 0.25
        x0 = -length / 2 + r if rng.random() < 0.5 else length / 2 - r - (n - 1) * 1.5 * r
        y = -w / 2 + t + r + 0.02
        parts += [
            _cyl_part((x0 + i * 1.5 * r, y + 0.3 * r * (i % 2), (top + bottom) / 2), r, top - bottom, 1)
            for i in range(n)
        ]
        labels, colors, textures = labels + ["shower curtain"], colors + [_fabric(rng)], textures + [FABRIC]
    return parts, labels, colors, textures


def _window(rng, curtains=0.6):
    w, zb, zt = rng.uniform(0.8, 1.6), rng.uniform(0.85, 1.0), rng.uniform(2.0, 2.2)
    h = zt - zb
    parts = [
        _box_part((0, -0.005, (zb + zt) / 2), (w - 0.1, 0.01, h - 0.1), 1),
        _box_part((-(w - 0.05) / 2, -0.025, (zb + zt) / 2), (0.05, 0.05, h)),
        _box_part(((w - 0.05) / 2, -0.025, (zb + zt) / 2), (0.05, 0.05, h)),
        _box_part((0, -0.025, zt - 0.025), (w - 0.1, 0.05, 0.05)),
        _box_part((0, -0.025, zb + 0.025), (w - 0.1, 0.05, 0.05)),
        _box_part((0, -0.075, zb - 0.015), (w + 0.1, 0.15, 0.03)),
    ]
    frame = _hsv(rng, 0.1, (0.0, 0.1), (0.8, 0.95))
    labels, colors, textures = ["window", "window"], [frame, frame], [PLAIN, GLASS]
    if rng.random() < curtains:  # a gathered curtain panel on each side: folds are vertical cylinders
        r, panel = rng.uniform(0.04, 0.06), rng.uniform(0.3, 0.55)
        n = max(2, int(panel / (1.5 * r)))
        color = _fabric(rng)
        for side in (-1, 1):
            g = len(labels)
            x0 = side * (w / 2 + 0.05)
            parts += [
                _cyl_part((x0 - side * i * 1.5 * r, -0.12 - 0.3 * r * (i % 2), (zt + 0.17) / 2), r, zt + 0.13, g)
                for i in range(n)
            ]
            labels, colors, textures = labels + ["curtain"], colors + [color], textures + [FABRIC]
    # both window groups are one instance in ScanNet terms: merge the pane into the frame
    parts = [Part(p.kind, p.center, p.half, p.yaw, 0 if p.group == 1 else p.group) for p in parts]
    return parts, labels, colors, textures


def _door(rng):
    w, h = rng.uniform(0.8, 0.95), rng.uniform(2.0, 2.1)
    parts = [
        _box_part((0, -0.02, h / 2), (w, 0.04, h)),
        _box_part((-(w / 2 + 0.03), -0.01, h / 2), (0.06, 0.02, h + 0.06)),
        _box_part(((w / 2 + 0.03), -0.01, h / 2), (0.06, 0.02, h + 0.06)),
        _box_part((0, -0.01, h + 0.03), (w, 0.02, 0.06)),
        _box_part((w / 2 - 0.1, -0.065, 1.0), (0.12, 0.05, 0.03)),
    ]
    return parts, ["door"], [_wood(rng) if rng.random() < 0.6 else _neutral(rng)], [WOOD]


def _picture(rng):
    w, h, zc = rng.uniform(0.3, 1.0), rng.uniform(0.3, 0.8), rng.uniform(1.35, 1.7)
    parts = [_box_part((0, -0.015, zc), (w, 0.03, h)), _box_part((0, -0.033, zc), (w - 0.06, 0.006, h - 0.06), 1)]
    parts = [Part(p.kind, p.center, p.half, p.yaw, 0) for p in parts]
    return parts, ["picture"], [_hsv(rng, (0, 1), (0.0, 0.3), (0.1, 0.9))], [PICTURE]


def _trash_can(rng):
    r, h = rng.uniform(0.12, 0.18), rng.uniform(0.3, 0.6)
    return (
        [_cyl_part((0, 0, h / 2), r, h), _cyl_part((0, 0, h + 0.01), r + 0.01, 0.02)],
        ["trash can"],
        [_hsv(rng, (0, 1), (0.0, 0.6), (0.2, 0.8))],
        [PLAIN],
    )


def _lamp(rng):
    h = rng.uniform(1.3, 1.6)
    parts = [
        _cyl_part((0, 0, 0.015), 0.14, 0.03),
        _cyl_part((0, 0, h / 2), 0.015, h),
        _cyl_part((0, 0, h + 0.1), rng.uniform(0.18, 0.22), 0.25),
    ]
    return parts, ["lamp"], [_hsv(rng, 0.12, (0.1, 0.3), (0.8, 0.95))], [PLAIN]


def _box_pile(rng):
    s = rng.uniform(0.25, 0.5, 3)
    parts = [_box_part((0, 0, s[2] / 2), s)]
    labels = ["box"]
    if rng.random() < 0.3:
        s2 = s * rng.uniform(0.6, 0.9, 3)
        parts.append(_box_part((0, 0, s[2] + s2[2] / 2), s2, 1, rng.uniform(-0.3, 0.3)))
        labels.append("box")
    card = _hsv(rng, (0.07, 0.1), (0.4, 0.6), (0.5, 0.75))
    return parts, labels, [card] * len(labels), [PLAIN] * len(labels)


# fmt: off
BUILDERS = {
    "bed": _bed, "sofa_set": _sofa_set, "dining_set": _dining_set, "desk_set": _desk_set, "chair": _chair,
    "cabinet": _cabinet, "bookshelf": _bookshelf, "refrigerator": _refrigerator, "counter_unit": _counter_unit,
    "toilet": _toilet, "bath_sink": _bath_sink, "bath_unit": _bath_unit, "window": _window, "door": _door,
    "picture": _picture, "trash can": _trash_can, "lamp": _lamp, "box": _box_pile,
}
# Per room type: ScanNet's sceneType, (Lx, Ly, Lz) ranges in metres, floor textures, and the furniture as
# (builder, placement, probability) in placement order (big pieces first).
ROOM_TYPES = {
    "bedroom": dict(scannet="Bedroom / Hotel", size=((3.4, 5.0), (3.2, 4.6), (2.5, 2.9)), floor=(WOOD, FABRIC),
                    items=[("door", "wall", 1.0), ("bed", "wall", 1.0), ("window", "wall", 1.0),
                           ("window", "wall", 0.3), ("cabinet", "wall", 0.8), ("desk_set", "wall", 0.5),
                           ("bookshelf", "wall", 0.35), ("picture", "wall", 0.9), ("picture", "wall", 0.4),
                           ("lamp", "free", 0.5), ("trash can", "wall", 0.6), ("chair", "free", 0.4),
                           ("box", "free", 0.4), ("box", "wall", 0.3)]),
    "living": dict(scannet="Living room / Lounge", size=((4.0, 6.5), (3.5, 5.5), (2.5, 3.0)), floor=(WOOD, FABRIC),
                   items=[("door", "wall", 1.0), ("sofa_set", "wall", 1.0), ("window", "wall", 1.0),
                          ("window", "wall", 0.5), ("bookshelf", "wall", 0.7), ("cabinet", "wall", 0.7),
                          ("dining_set", "free", 0.35), ("picture", "wall", 0.9), ("picture", "wall", 0.5),
                          ("lamp", "free", 0.6), ("chair", "free", 0.6), ("chair", "free", 0.4),
                          ("trash can", "wall", 0.4), ("box", "free", 0.4), ("box", "wall", 0.3)]),
    "kitchen": dict(scannet="Kitchen", size=((3.2, 5.0), (3.0, 4.5), (2.5, 2.9)), floor=(TILES,),
                    items=[("door", "wall", 1.0), ("counter_unit", "wall", 1.0), ("refrigerator", "wall", 0.9),
                           ("dining_set", "free", 0.9), ("window", "wall", 0.8), ("cabinet", "wall", 0.4),
                           ("trash can", "wall", 0.9), ("picture", "wall", 0.4), ("chair", "free", 0.3),
                           ("box", "wall", 0.4)]),
    "office": dict(scannet="Office", size=((3.5, 6.0), (3.2, 5.0), (2.6, 3.0)), floor=(FABRIC, WOOD),
                   items=[("door", "wall", 1.0), ("desk_set", "wall", 1.0), ("desk_set", "wall", 0.8),
                          ("bookshelf", "wall", 0.9), ("window", "wall", 0.9), ("cabinet", "wall", 0.7),
                          ("desk_set", "wall", 0.4), ("bookshelf", "wall", 0.5), ("window", "wall", 0.4),
                          ("dining_set", "free", 0.3), ("picture", "wall", 0.5), ("trash can", "wall", 0.8),
                          ("box", "free", 0.5), ("box", "free", 0.3)]),
    "bathroom": dict(scannet="Bathroom", size=((2.5, 3.6), (2.3, 3.2), (2.4, 2.7)), floor=(TILES,),
                     items=[("door", "wall", 1.0), ("bath_unit", "wall", 1.0), ("toilet", "wall", 1.0),
                            ("bath_sink", "wall", 1.0), ("window", "wall", 0.4), ("cabinet", "wall", 0.4),
                            ("trash can", "wall", 0.7), ("picture", "wall", 0.3)]),
}
# fmt: on
SCENE_CYCLE = ("bedroom", "kitchen", "office", "living", "bathroom")


def _extent(parts, yaw):
    """World-frame bounds of `parts` rotated by `yaw` about the object origin."""
    c, s = np.cos(yaw), np.sin(yaw)
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    for p in parts:
        center = np.array([c * p.center[0] - s * p.center[1], s * p.center[0] + c * p.center[1], p.center[2]])
        ext = _world_extent(p.half, yaw + p.yaw, p.kind)
        lo, hi = np.minimum(lo, center - ext), np.maximum(hi, center + ext)
    return lo, hi


def _place(scene, rng, builder, where, tries=40):
    """Put one object against a wall (its +y side to the wall) or free on the floor, without overlaps."""
    parts, labels, colors, textures = BUILDERS[builder](rng)
    keepout = []
    if builder == "door":  # keep the door's swing free
        keepout = [_box_part((0, -0.5, 1.0), (0.9, 0.9, 2.0))]
    lx, ly, lz = scene.size
    wall_yaw = {2: np.pi, 3: 0.0, 4: np.pi / 2, 5: -np.pi / 2}
    for _ in range(tries):
        if where == "wall":
            wall = int(rng.integers(2, 6))
            yaw = wall_yaw[wall]
        else:
            wall, yaw = None, rng.choice([0.0, np.pi / 2, np.pi, -np.pi / 2]) + rng.normal(0, 0.2)
        lo, hi = _extent(parts + keepout, yaw)
        if np.any(hi[:2] - lo[:2] > np.array([lx, ly]) - 0.1) or hi[2] > lz - 0.05:
            continue
        ox = rng.uniform(0.05 - lo[0], lx - 0.05 - hi[0])
        oy = rng.uniform(0.05 - lo[1], ly - 0.05 - hi[1])
        gap = 0.002
        if wall == 2:
            oy = gap - lo[1]
        elif wall == 3:
            oy = ly - gap - hi[1]
        elif wall == 4:
            ox = gap - lo[0]
        elif wall == 5:
            ox = lx - gap - hi[0]
        box = np.concatenate([lo + (ox, oy, 0), hi + (ox, oy, 0)])
        if any(_overlap(box, other) for other in scene.occupied):
            continue
        params = [(rng.uniform(0.3, 0.6), 1.0, rng.uniform(0, 6.3), rng.uniform(0, 6.3)) for _ in labels]
        add_object(scene, parts, (ox, oy, 0.0), yaw, labels, colors, textures, params)
        scene.occupied.append(box)
        return True
    return False


def _overlap(a, b, margin=0.03):
    return bool(np.all(a[:3] < b[3:] + margin) and np.all(b[:3] < a[3:] + margin))


def make_scene(seed, index, name=None):
    """The `index`-th scene of the set drawn with `seed`: room type cycles through SCENE_CYCLE so every
    class appears in small sets; everything else is random but fixed by (seed, index)."""
    rng = np.random.default_rng([int(seed), int(index)])
    scene_type = SCENE_CYCLE[index % len(SCENE_CYCLE)]
    spec = ROOM_TYPES[scene_type]
    size = [rng.uniform(*r) for r in spec["size"]]
    wall_color = _hsv(rng, (0.05, 0.6), (0.0, 0.15), (0.7, 0.92))
    floor_texture = spec["floor"][int(rng.integers(len(spec["floor"])))]
    floor_color = _wood(rng) if floor_texture == WOOD else (_fabric(rng) if floor_texture == FABRIC else _neutral(rng))
    scene = empty_room(
        size,
        name or f"scene{index:04d}_00",
        scene_type,
        floor_color,
        wall_color,
        _hsv(rng, 0.1, (0, 0.05), (0.85, 0.95)),
        floor_texture,
        STRIPES if rng.random() < 0.3 else PLAIN,
    )
    scene.params[0] = np.array([rng.uniform(0.3, 0.6), 1.0, rng.uniform(0, 6.3), rng.uniform(0, 6.3)])
    n_lights = 1 if size[0] * size[1] < 14 else 2
    for i in range(n_lights):
        x = size[0] * (i + 1) / (n_lights + 1) + rng.uniform(-0.3, 0.3)
        y = size[1] / 2 + rng.uniform(-0.4, 0.4)
        add_object(
            scene,
            [_box_part((0, 0, size[2] - 0.02), (0.5, 0.5, 0.04))],
            (x, y, 0),
            0.0,
            [None],
            [(1.0, 0.98, 0.92)],
            [EMISSIVE],
        )
        scene.lights.append((x, y, size[2] - 0.3, rng.uniform(1.0, 1.4) / n_lights**0.5))
    for builder, where, prob in spec["items"]:
        if rng.random() < prob:
            _place(scene, rng, builder, where)
    return scene


def sample_poses(scene, n, rng, tries=300):
    """`n` camera-to-world poses at eye height, mostly from near the walls looking across the room (as a
    person scanning it would), each looking at furniture or the floor at least 1.5 m away with at least
    2 m of free room along the optical axis, never from inside an object."""
    lx, ly, lz = scene.size
    occupied = np.array(scene.occupied).reshape(-1, 6)
    targets = (occupied[:, :3] + occupied[:, 3:]) / 2  # object centres
    targets[:, 2] = np.minimum(targets[:, 2], 0.8)
    poses = []
    for _ in range(n):
        for attempt in range(tries):
            eye = np.array([rng.uniform(0.4, lx - 0.4), rng.uniform(0.4, ly - 0.4), rng.uniform(1.2, 1.8)])
            if rng.random() < 0.7:  # pull the camera towards a random wall
                axis, side = int(rng.integers(2)), int(rng.integers(2))
                eye[axis] = rng.uniform(0.4, 1.2) if side == 0 else scene.size[axis] - rng.uniform(0.4, 1.2)
            if np.any(np.all((eye > occupied[:, :3] - 0.3) & (eye < occupied[:, 3:] + 0.3), axis=1)):
                continue
            if len(targets) and rng.random() < 0.8:
                target = targets[int(rng.integers(len(targets)))] + rng.normal(0, 0.25, 3)
            else:
                target = np.array([rng.uniform(0.2, lx - 0.2), rng.uniform(0.2, ly - 0.2), rng.uniform(0.2, 1.2)])
            target[2] = np.clip(target[2], 0.1, eye[2] - 0.25)
            if np.linalg.norm((target - eye)[:2]) < 1.5:
                continue
            axis_dir = (target - eye) / np.linalg.norm(target - eye)
            free = _hit_room(scene.size, eye, tuple(axis_dir[i : i + 1].astype(np.float32) for i in range(3)))[0]
            if free[0] * np.linalg.norm(axis_dir[:2]) >= 2.0 or attempt == tries - 1:
                break
        poses.append(look_at(eye, target, rng.normal(0, 0.05)))
    return np.stack(poses)
