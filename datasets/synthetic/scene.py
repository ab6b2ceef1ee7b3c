"""The scene model: a room and its furniture as one flat table of primitives (boxes and vertical cylinders)
with ScanNet labels and instance ids, plus the camera helpers (intrinsics, poses)."""

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
UNANNOTATED = 0  # ScanNet's id for pixels no annotator labelled (ceiling lamps here)

BOX, CYLINDER, ROOM = 0, 1, 2
PLAIN, WOOD, FABRIC, TILES, STRIPES, PICTURE, GLASS, EMISSIVE = range(8)


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


def world_extent(half, yaw, kind):
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
