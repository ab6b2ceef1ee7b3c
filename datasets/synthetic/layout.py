"""Room layouts: the furniture of each room type placed without overlaps, and camera poses a person scanning
the room would take."""

import numpy as np

from datasets.synthetic.furniture import BUILDERS, box_part, fabric, hsv, neutral, wood
from datasets.synthetic.render import hit_room
from datasets.synthetic.scene import (
    EMISSIVE,
    FABRIC,
    PLAIN,
    STRIPES,
    TILES,
    WOOD,
    add_object,
    empty_room,
    look_at,
    world_extent,
)

# Per room type: ScanNet's sceneType, (Lx, Ly, Lz) ranges in metres, floor textures, and the furniture as
# (builder, placement, probability) in placement order (big pieces first).
ROOM_TYPES = {
    "bedroom": dict(
        scannet="Bedroom / Hotel",
        size=((3.4, 5.0), (3.2, 4.6), (2.5, 2.9)),
        floor=(WOOD, FABRIC),
        items=[
            ("door", "wall", 1.0),
            ("bed", "wall", 1.0),
            ("window", "wall", 1.0),
            ("window", "wall", 0.3),
            ("cabinet", "wall", 0.8),
            ("desk_set", "wall", 0.5),
            ("bookshelf", "wall", 0.35),
            ("picture", "wall", 0.9),
            ("picture", "wall", 0.4),
            ("lamp", "free", 0.5),
            ("trash can", "wall", 0.6),
            ("chair", "free", 0.4),
            ("box", "free", 0.4),
            ("box", "wall", 0.3),
        ],
    ),
    "living": dict(
        scannet="Living room / Lounge",
        size=((4.0, 6.5), (3.5, 5.5), (2.5, 3.0)),
        floor=(WOOD, FABRIC),
        items=[
            ("door", "wall", 1.0),
            ("sofa_set", "wall", 1.0),
            ("window", "wall", 1.0),
            ("window", "wall", 0.5),
            ("bookshelf", "wall", 0.7),
            ("cabinet", "wall", 0.7),
            ("dining_set", "free", 0.35),
            ("picture", "wall", 0.9),
            ("picture", "wall", 0.5),
            ("lamp", "free", 0.6),
            ("chair", "free", 0.6),
            ("chair", "free", 0.4),
            ("trash can", "wall", 0.4),
            ("box", "free", 0.4),
            ("box", "wall", 0.3),
        ],
    ),
    "kitchen": dict(
        scannet="Kitchen",
        size=((3.2, 5.0), (3.0, 4.5), (2.5, 2.9)),
        floor=(TILES,),
        items=[
            ("door", "wall", 1.0),
            ("counter_unit", "wall", 1.0),
            ("refrigerator", "wall", 0.9),
            ("dining_set", "free", 0.9),
            ("window", "wall", 0.8),
            ("cabinet", "wall", 0.4),
            ("trash can", "wall", 0.9),
            ("picture", "wall", 0.4),
            ("chair", "free", 0.3),
            ("box", "wall", 0.4),
        ],
    ),
    "office": dict(
        scannet="Office",
        size=((3.5, 6.0), (3.2, 5.0), (2.6, 3.0)),
        floor=(FABRIC, WOOD),
        items=[
            ("door", "wall", 1.0),
            ("desk_set", "wall", 1.0),
            ("desk_set", "wall", 0.8),
            ("bookshelf", "wall", 0.9),
            ("window", "wall", 0.9),
            ("cabinet", "wall", 0.7),
            ("desk_set", "wall", 0.4),
            ("bookshelf", "wall", 0.5),
            ("window", "wall", 0.4),
            ("dining_set", "free", 0.3),
            ("picture", "wall", 0.5),
            ("trash can", "wall", 0.8),
            ("box", "free", 0.5),
            ("box", "free", 0.3),
        ],
    ),
    "bathroom": dict(
        scannet="Bathroom",
        size=((2.5, 3.6), (2.3, 3.2), (2.4, 2.7)),
        floor=(TILES,),
        items=[
            ("door", "wall", 1.0),
            ("bath_unit", "wall", 1.0),
            ("toilet", "wall", 1.0),
            ("bath_sink", "wall", 1.0),
            ("window", "wall", 0.4),
            ("cabinet", "wall", 0.4),
            ("trash can", "wall", 0.7),
            ("picture", "wall", 0.3),
        ],
    ),
}
# fmt: on
SCENE_CYCLE = ("bedroom", "kitchen", "office", "living", "bathroom")


def _extent(parts, yaw):
    """World-frame bounds of `parts` rotated by `yaw` about the object origin."""
    c, s = np.cos(yaw), np.sin(yaw)
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    for p in parts:
        center = np.array([c * p.center[0] - s * p.center[1], s * p.center[0] + c * p.center[1], p.center[2]])
        ext = world_extent(p.half, yaw + p.yaw, p.kind)
        lo, hi = np.minimum(lo, center - ext), np.maximum(hi, center + ext)
    return lo, hi


def _place(scene, rng, builder, where, tries=40):
    """Put one object against a wall (its +y side to the wall) or free on the floor, without overlaps."""
    parts, labels, colors, textures = BUILDERS[builder](rng)
    keepout = []
    if builder == "door":  # keep the door's swing free
        keepout = [box_part((0, -0.5, 1.0), (0.9, 0.9, 2.0))]
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
    wall_color = hsv(rng, (0.05, 0.6), (0.0, 0.15), (0.7, 0.92))
    floor_texture = spec["floor"][int(rng.integers(len(spec["floor"])))]
    floor_color = wood(rng) if floor_texture == WOOD else (fabric(rng) if floor_texture == FABRIC else neutral(rng))
    scene = empty_room(
        size,
        name or f"scene{index:04d}_00",
        scene_type,
        floor_color,
        wall_color,
        hsv(rng, 0.1, (0, 0.05), (0.85, 0.95)),
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
            [box_part((0, 0, size[2] - 0.02), (0.5, 0.5, 0.04))],
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
            free = hit_room(scene.size, eye, tuple(axis_dir[i : i + 1].astype(np.float32) for i in range(3)))[0]
            if free[0] * np.linalg.norm(axis_dir[:2]) >= 2.0 or attempt == tries - 1:
                break
        poses.append(look_at(eye, target, rng.normal(0, 0.05)))
    return np.stack(poses)
