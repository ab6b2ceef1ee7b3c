"""Detectron2 registrar for a ScanNet-layout tree prepared by `datasets.prepare.scannet` (ScanNet or synthetic).

Reads only `meta.json`, `index_{split}.json`, `poses_{split}.json` (absent in trees prepared before poses were
kept) and (instance sets) `instances_{split}.json`; dicts are built lazily when Detectron2 asks for them."""

import os
import random

from datasets import labels as L
from datasets.catalog import read_index, read_meta, register
from datasets.poses import load_poses, poses_path

FRACTIONS = (20, 40, 60, 80)
HOLDOUT_PERCENT = 20  # training scenes held out to choose a fine-tuning recipe without looking at val


def train_subset(scenes, percent: int):
    """A deterministic subset of the training scenes (seeded shuffle of the sorted list, at least one scene);
    smaller fractions are contained in larger ones, so results across fractions stay comparable."""
    order = sorted(scenes)
    random.Random(0).shuffle(order)
    return sorted(order[: max(1, round(len(order) * percent / 100))])


def holdout_split(scenes) -> tuple[list, list]:
    """(fit, holdout): the training scenes split for recipe selection; the holdout is the *last*
    HOLDOUT_PERCENT of `train_subset`'s seeded order, so it shares no scene with the 20 % split."""
    order = sorted(scenes)
    random.Random(0).shuffle(order)
    k = max(1, round(len(order) * HOLDOUT_PERCENT / 100))
    if k >= len(order):
        return sorted(order), []
    return sorted(order[:-k]), sorted(order[-k:])


def load_frames(folder: str, split: str, kind: str, scenes=None):
    """Dataset dicts of one split. kind: 'rgbd' (image + depth), 'sem_seg' (+ label), 'instance' (+ annotations).
    Every dict carries `scene_id`, and `pose` (4x4 camera-to-world) where the tree holds a valid one."""
    keep = set(scenes) if scenes is not None else None
    poses = load_poses(folder, split) or {}
    dicts = []
    for r in read_index(folder, split, with_annotations=kind == "instance"):
        if keep is not None and r["scene"] not in keep:
            continue
        base = os.path.join(folder, "scenes", r["scene"])
        d = {
            "file_name": os.path.join(base, "color", r["frame"] + ".jpg"),
            "height": r["height"],
            "width": r["width"],
            "image_id": r["image_id"],
            "scene_id": r["scene"],
            "depth_file_name": os.path.join(base, "depth", r["frame"] + ".png"),
            "intrinsics": r["intrinsics"],
        }
        if poses.get(r["image_id"]) is not None:
            d["pose"] = poses[r["image_id"]]
        if kind == "sem_seg":
            d["sem_seg_file_name"] = os.path.join(base, "label", r["frame"] + ".png")
        elif kind == "instance":
            d["annotations"] = r["annotations"]
        dicts.append(d)
    return dicts


def register_scannet(folder: str):
    """Register every split of one prepared tree under its prefix (`scannet` or `synthetic`); returns names."""
    meta = read_meta(folder)
    if meta is None:
        return []
    prefix, opts = meta["options"]["prefix"], meta["options"]
    stuff_ids = L.semantic_nyu40_ids(opts["classes"])
    common = {"ignore_label": L.IGNORE_LABEL, "depth_unit": "mm", "root": folder, "prefix": prefix}
    rgbd_meta = dict(
        common, stuff_classes=L.semantic_class_names(opts["classes"]), stuff_colors=L.class_colors(stuff_ids)
    )
    sem_meta = dict(rgbd_meta, evaluator_type="sem_seg")
    things = L.SCANNET_THING_NYU40_IDS
    inst_meta = dict(
        common,
        thing_classes=list(L.SCANNET_THING_CLASSES),
        thing_colors=L.class_colors(things),
        thing_dataset_id_to_contiguous_id={nyu: i for i, nyu in enumerate(things)},
        evaluator_type="coco",
    )
    names = []
    for split in ("train", "val"):
        posed = {"poses_file": poses_path(folder, split)}
        names.append(
            register(f"{prefix}_rgbd_{split}", lambda s=split: load_frames(folder, s, "rgbd"), **rgbd_meta, **posed)
        )
        names.append(
            register(
                f"{prefix}_sem_seg_{split}",
                lambda s=split: load_frames(folder, s, "sem_seg"),
                **dict(sem_meta, data_fraction=100),
                **posed,
            )
        )
        names.append(
            register(
                f"{prefix}_instance_{split}", lambda s=split: load_frames(folder, s, "instance"), **inst_meta, **posed
            )
        )
    for pct in FRACTIONS:
        scenes = train_subset(meta["splits"]["train"], pct)
        names.append(
            register(
                f"{prefix}_sem_seg_train_{pct}pct",
                lambda sc=scenes: load_frames(folder, "train", "sem_seg", sc),
                **dict(sem_meta, data_fraction=pct, scenes=scenes),
                poses_file=poses_path(folder, "train"),
            )
        )
    train = meta["splits"]["train"]
    for part, scenes in zip(("fit", "holdout"), holdout_split(train), strict=True):
        if scenes:
            fraction = round(100 * len(scenes) / len(train))
            names.append(
                register(
                    f"{prefix}_sem_seg_train_{part}",
                    lambda sc=scenes: load_frames(folder, "train", "sem_seg", sc),
                    **dict(sem_meta, data_fraction=fraction, scenes=scenes),
                    poses_file=poses_path(folder, "train"),
                )
            )
    return names
