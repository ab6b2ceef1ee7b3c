"""Class tables shared by the preparation tools and the registrars (no Detectron2 import, so tools stay fast).

NYU40 is the common currency: ScanNet ids map to it through `scannetv2-labels.combined.tsv`, NYUv2's 894
classes through `classMapping40.mat`. Benchmark label sets are subsets of NYU40 ids mapped to contiguous
train ids; everything else becomes 255 (ignore)."""

import numpy as np

IGNORE_LABEL = 255

# ScanNet's label table: its file name and header (the `id` and `nyu40id` columns are what we read).
SCANNET_TSV_NAME = "scannetv2-labels.combined.tsv"
SCANNET_TSV_COLUMNS = (
    "id",
    "raw_category",
    "category",
    "count",
    "nyu40id",
    "eigen13id",
    "nyuClass",
    "nyu40class",
    "eigen13class",
    "ModelNet40",
    "ModelNet10",
    "ShapeNetCore55",
    "synsetoffset",
    "wnsynsetid",
    "wnsynsetkey",
    "mpcat40",
    "mpcat40index",
)

# In id order 1..40, spelled as in the official lists (`className` of classMapping40.mat and the `nyu40class`
# column of ScanNet's tsv), typo "refridgerator" included, so names compare equal to the publishers' files.
NYU40_CLASSES = (
    "wall",
    "floor",
    "cabinet",
    "bed",
    "chair",
    "sofa",
    "table",
    "door",
    "window",
    "bookshelf",
    "picture",
    "counter",
    "blinds",
    "desk",
    "shelves",
    "curtain",
    "dresser",
    "pillow",
    "mirror",
    "floor mat",
    "clothes",
    "ceiling",
    "books",
    "refridgerator",
    "television",
    "paper",
    "towel",
    "shower curtain",
    "box",
    "whiteboard",
    "person",
    "night stand",
    "toilet",
    "sink",
    "lamp",
    "bathtub",
    "bag",
    "otherstructure",
    "otherfurniture",
    "otherprop",
)

# ScanNet's benchmark palette (BenchmarkScripts/util.py create_color_palette), indexed by NYU40 id 1..40.
NYU40_COLORS = (
    (174, 199, 232),
    (152, 223, 138),
    (31, 119, 180),
    (255, 187, 120),
    (188, 189, 34),
    (140, 86, 75),
    (255, 152, 150),
    (214, 39, 40),
    (197, 176, 213),
    (148, 103, 189),
    (196, 156, 148),
    (23, 190, 207),
    (178, 76, 76),
    (247, 182, 210),
    (66, 188, 102),
    (219, 219, 141),
    (140, 57, 197),
    (202, 185, 52),
    (51, 176, 203),
    (200, 54, 131),
    (92, 193, 61),
    (78, 71, 183),
    (172, 114, 82),
    (255, 127, 14),
    (91, 163, 138),
    (153, 98, 156),
    (140, 153, 101),
    (158, 218, 229),
    (100, 125, 154),
    (178, 127, 135),
    (120, 185, 128),
    (146, 111, 194),
    (44, 160, 44),
    (112, 128, 144),
    (96, 207, 209),
    (227, 119, 194),
    (213, 92, 176),
    (94, 106, 211),
    (82, 84, 163),
    (100, 85, 144),
)

# The ScanNet 2D/3D semantic benchmark (BenchmarkScripts VALID_CLASS_IDS / CLASS_LABELS): 20 NYU40 ids ->
# train ids 0..19, named as the benchmark names them ("refrigerator", unlike the NYU40 list).
SCANNET20_NYU40_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39)
SCANNET20_CLASSES = (
    "wall",
    "floor",
    "cabinet",
    "bed",
    "chair",
    "sofa",
    "table",
    "door",
    "window",
    "bookshelf",
    "picture",
    "counter",
    "desk",
    "curtain",
    "refrigerator",
    "shower curtain",
    "toilet",
    "sink",
    "bathtub",
    "otherfurniture",
)
# Instance benchmark: the same classes without wall and floor (18 things).
SCANNET_THING_NYU40_IDS = SCANNET20_NYU40_IDS[2:]
SCANNET_THING_CLASSES = SCANNET20_CLASSES[2:]
# NYUv2 instances: every NYU40 class except the layout ones (wall, floor, ceiling).
NYUV2_THING_NYU40_IDS = tuple(i for i in range(1, 41) if i not in (1, 2, 22))

# Couprie et al. 2013 13-class set, mapped from NYU40 as in the literature (nyudv2 class-mapping tables).
NYU13_CLASSES = (
    "bed",
    "books",
    "ceiling",
    "chair",
    "floor",
    "furniture",
    "objects",
    "picture",
    "sofa",
    "table",
    "tv",
    "wall",
    "window",
)
NYU40_TO_13 = (
    12,
    5,
    6,
    1,
    4,
    9,
    10,
    12,
    13,
    6,
    8,
    6,
    13,
    10,
    6,
    13,
    6,
    7,
    7,
    5,
    7,
    3,
    2,
    6,
    11,
    7,
    7,
    7,
    7,
    7,
    7,
    6,
    7,
    7,
    7,
    7,
    7,
    7,
    6,
    7,
)
NYU13_COLORS = tuple(NYU40_COLORS[i - 1] for i in (4, 23, 22, 5, 2, 3, 40, 11, 6, 7, 25, 1, 9))


def class_names(nyu40_ids):
    """NYU40 names of the ids, as the official list spells them."""
    return [NYU40_CLASSES[i - 1] for i in nyu40_ids]


def class_colors(nyu40_ids):
    return [NYU40_COLORS[i - 1] for i in nyu40_ids]


def semantic_class_names(num_classes: int):
    """Display names of the benchmark's semantic classes in train-id order: the ScanNet benchmark's own
    names for 20 classes, the NYU40 list for 40."""
    return list(SCANNET20_CLASSES) if num_classes == 20 else class_names(semantic_nyu40_ids(num_classes))


def semantic_nyu40_ids(num_classes: int):
    """NYU40 ids of the benchmark's semantic classes, in train-id order (20: ScanNet benchmark, 40: all)."""
    if num_classes == 20:
        return SCANNET20_NYU40_IDS
    if num_classes == 40:
        return tuple(range(1, 41))
    raise ValueError(f"unsupported number of classes {num_classes}: choose 20 or 40")


def nyu40_to_train_lut(nyu40_ids) -> np.ndarray:
    """uint8 table of 256 entries: NYU40 id -> contiguous train id, 255 for every other value."""
    lut = np.full(256, IGNORE_LABEL, np.uint8)
    lut[list(nyu40_ids)] = np.arange(len(nyu40_ids), dtype=np.uint8)
    return lut


def nyu40_to_13_lut() -> np.ndarray:
    """uint8 table of 256 entries: NYU40 id -> 13-class train id (0..12), 255 for unlabeled/other."""
    lut = np.full(256, IGNORE_LABEL, np.uint8)
    lut[1:41] = np.asarray(NYU40_TO_13, np.uint8) - 1
    return lut
