"""Label tables checked whole against the publishers' lists, written out here as literals: a swapped entry in
`datasets.labels` must fail a test, not slip through a check derived from the table itself."""

import numpy as np

from datasets import labels as L

# ScanNet benchmark (BenchmarkScripts: VALID_CLASS_IDS and CLASS_LABELS), NYU40 id -> name.
SCANNET20 = (
    (1, "wall"),
    (2, "floor"),
    (3, "cabinet"),
    (4, "bed"),
    (5, "chair"),
    (6, "sofa"),
    (7, "table"),
    (8, "door"),
    (9, "window"),
    (10, "bookshelf"),
    (11, "picture"),
    (12, "counter"),
    (14, "desk"),
    (16, "curtain"),
    (24, "refrigerator"),
    (28, "shower curtain"),
    (33, "toilet"),
    (34, "sink"),
    (36, "bathtub"),
    (39, "otherfurniture"),
)
# NYU40 (Gupta et al., classMapping40.mat `className`; ScanNet's tsv `nyu40class`), ids 1..40, official spelling.
NYU40 = (
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
# Couprie et al. 2013 13 classes (ids 1..13) and the standard NYU40 -> 13 mapping, by NYU40 name.
NYU13 = (
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
NYU40_TO_13 = {
    "wall": "wall",
    "floor": "floor",
    "cabinet": "furniture",
    "bed": "bed",
    "chair": "chair",
    "sofa": "sofa",
    "table": "table",
    "door": "wall",
    "window": "window",
    "bookshelf": "furniture",
    "picture": "picture",
    "counter": "furniture",
    "blinds": "window",
    "desk": "table",
    "shelves": "furniture",
    "curtain": "window",
    "dresser": "furniture",
    "pillow": "objects",
    "mirror": "objects",
    "floor mat": "floor",
    "clothes": "objects",
    "ceiling": "ceiling",
    "books": "books",
    "refridgerator": "furniture",
    "television": "tv",
    "paper": "objects",
    "towel": "objects",
    "shower curtain": "objects",
    "box": "objects",
    "whiteboard": "objects",
    "person": "objects",
    "night stand": "furniture",
    "toilet": "objects",
    "sink": "objects",
    "lamp": "objects",
    "bathtub": "objects",
    "bag": "objects",
    "otherstructure": "objects",
    "otherfurniture": "furniture",
    "otherprop": "objects",
}


def test_scannet20_ids_and_names_are_the_benchmark_table():
    assert tuple(zip(L.SCANNET20_NYU40_IDS, L.SCANNET20_CLASSES, strict=False)) == SCANNET20
    assert L.semantic_class_names(20) == [name for _, name in SCANNET20]
    assert (
        tuple(zip(L.SCANNET_THING_NYU40_IDS, L.SCANNET_THING_CLASSES, strict=False)) == SCANNET20[2:]
    )  # no wall, floor


def test_scannet20_train_ids_follow_the_benchmark_order():
    lut = L.nyu40_to_train_lut(L.semantic_nyu40_ids(20))
    assert [int(lut[nyu]) for nyu, _ in SCANNET20] == list(range(20))
    others = [i for i in range(256) if i not in dict(SCANNET20)]
    assert (lut[others] == 255).all()


def test_nyu40_names_are_the_official_list():
    assert L.NYU40_CLASSES == NYU40
    assert L.semantic_class_names(40) == list(NYU40)
    assert L.class_names(L.NYUV2_THING_NYU40_IDS) == [n for n in NYU40 if n not in ("wall", "floor", "ceiling")]


def test_nyu13_classes_and_mapping_are_the_standard_tables():
    assert L.NYU13_CLASSES == NYU13
    lut = L.nyu40_to_13_lut()
    assert {name: NYU13[lut[i + 1]] for i, name in enumerate(NYU40)} == NYU40_TO_13
    assert lut[0] == 255 and (lut[41:] == 255).all()


def test_nyu13_colours_are_those_of_the_matching_nyu40_class():
    by_name = dict(zip(NYU40, L.NYU40_COLORS, strict=False))
    representative = {"furniture": "cabinet", "objects": "otherprop", "tv": "television"}
    assert list(L.NYU13_COLORS) == [by_name[representative.get(n, n)] for n in NYU13]
    assert np.unique(np.asarray(L.NYU13_COLORS), axis=0).shape[0] == 13
