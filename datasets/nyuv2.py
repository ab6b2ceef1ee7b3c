"""Detectron2 registrar for NYUv2 as prepared by `datasets.prepare.nyuv2` (official 795 / 654 split)."""

import os

from datasets import labels as L
from datasets.catalog import read_index, read_meta, register


def load_nyuv2(folder: str, split: str, kind: str):
    """kind: 'rgbd', 'sem_seg' (40 classes), 'sem_seg13' or 'instance'."""
    dicts = []
    for r in read_index(folder, split, with_annotations=kind == "instance"):
        stem = f"{r['index']:04d}.png"
        d = {
            "file_name": os.path.join(folder, "image", stem),
            "height": r["height"],
            "width": r["width"],
            "image_id": r["image_id"],
            "depth_file_name": os.path.join(folder, "depth", stem),
            "intrinsics": r["intrinsics"],
        }
        if kind == "sem_seg":
            d["sem_seg_file_name"] = os.path.join(folder, "label40", stem)
        elif kind == "sem_seg13":
            d["sem_seg_file_name"] = os.path.join(folder, "label13", stem)
        elif kind == "instance":
            d["annotations"] = r["annotations"]
        dicts.append(d)
    return dicts


def register_nyuv2(folder: str):
    if read_meta(folder) is None:
        return []
    common = {"ignore_label": L.IGNORE_LABEL, "depth_unit": "mm", "root": folder}
    all40 = range(1, 41)
    sem40 = dict(common, stuff_classes=L.class_names(all40), stuff_colors=L.class_colors(all40))
    sem13 = dict(
        common, stuff_classes=list(L.NYU13_CLASSES), stuff_colors=list(L.NYU13_COLORS), evaluator_type="sem_seg"
    )
    things = L.NYUV2_THING_NYU40_IDS
    inst = dict(
        common,
        thing_classes=L.class_names(things),
        thing_colors=L.class_colors(things),
        thing_dataset_id_to_contiguous_id={nyu: i for i, nyu in enumerate(things)},
        evaluator_type="coco",
    )
    names = [register("nyuv2_rgbd_train", lambda: load_nyuv2(folder, "train", "rgbd"), **sem40)]
    for split in ("train", "test"):
        names += [
            register(
                f"nyuv2_sem_seg_{split}",
                lambda s=split: load_nyuv2(folder, s, "sem_seg"),
                **dict(sem40, evaluator_type="sem_seg"),
            ),
            register(f"nyuv2_sem_seg13_{split}", lambda s=split: load_nyuv2(folder, s, "sem_seg13"), **sem13),
            register(f"nyuv2_instance_{split}", lambda s=split: load_nyuv2(folder, s, "instance"), **inst),
        ]
    return names
