"""Procedural RGB-D indoor scenes with exact labels, rendered by vectorised numpy ray casting.

Why: no real dataset can be downloaded by our commands, yet pre-training and the benchmark must run end to
end. Scenes are rooms (floor, walls, ceiling) holding furniture of ScanNet's benchmark classes built from
boxes and vertical cylinders, each class with its own shape and size so that geometry predicts semantics.
Conventions are ScanNet's: world z is up (floor at z = 0), camera axes are OpenCV's (x right, y down,
z forward), poses are 4x4 camera-to-world, depth is the z-distance along the optical axis, labels are
ScanNet raw ids (the `id` column of `scannetv2-labels.combined.tsv`). `export.generate` writes scenes in the
exported-ScanNet layout (`tools.make_synthetic` is its command line).

Modules: `scene` (the primitive table, camera helpers), `render` (ray casting, shading, sensor noise),
`furniture` (object builders), `layout` (room types, placement, camera poses), `export` (the raw tree).
"""

from datasets.synthetic.layout import ROOM_TYPES, SCENE_CYCLE, make_scene, sample_poses
from datasets.synthetic.render import MAX_RANGE, Frame, render
from datasets.synthetic.scene import (
    BOX,
    CATEGORIES,
    CYLINDER,
    EMISSIVE,
    FABRIC,
    GLASS,
    PICTURE,
    PLAIN,
    ROOM,
    STRIPES,
    TILES,
    UNANNOTATED,
    WOOD,
    Part,
    Scene,
    add_object,
    empty_room,
    intrinsics,
    label_id,
    look_at,
)

__all__ = [
    "BOX",
    "CATEGORIES",
    "CYLINDER",
    "EMISSIVE",
    "FABRIC",
    "GLASS",
    "MAX_RANGE",
    "PICTURE",
    "PLAIN",
    "ROOM",
    "ROOM_TYPES",
    "SCENE_CYCLE",
    "STRIPES",
    "TILES",
    "UNANNOTATED",
    "WOOD",
    "Frame",
    "Part",
    "Scene",
    "add_object",
    "empty_room",
    "intrinsics",
    "label_id",
    "look_at",
    "make_scene",
    "render",
    "sample_poses",
]
