"""Helpers shared by the registrars: re-registrable catalog entries and prepared-tree metadata.

Detectron2 refuses to register a name twice and to change metadata already set, but tests and notebooks call
`register_all` repeatedly with different roots; so a name is always dropped before it is registered again."""

import os

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode

from datasets.fileio import read_json


def unregister(name: str) -> None:
    if name in DatasetCatalog:
        DatasetCatalog.remove(name)
    if name in MetadataCatalog:
        MetadataCatalog.remove(name)


def register(name: str, loader, **metadata) -> str:
    unregister(name)
    DatasetCatalog.register(name, loader)
    MetadataCatalog.get(name).set(**metadata)
    return name


def read_meta(folder: str):
    """A prepared tree's `meta.json`, or None when the folder holds no finished preparation."""
    path = os.path.join(folder, "meta.json")
    if not os.path.isfile(path):
        return None
    meta = read_json(path)
    return meta if meta.get("complete") else None


def read_index(folder: str, split: str, with_annotations: bool = False):
    """The frame records of a split (see `datasets.fileio.write_index`), with Detectron2 instance
    annotations (XYXY_ABS boxes, RLE with str counts) under "annotations" when asked for."""
    records = read_json(os.path.join(folder, f"index_{split}.json"))
    if with_annotations:
        anns = read_json(os.path.join(folder, f"instances_{split}.json"))
        for r in records:
            r["annotations"] = [
                {
                    "bbox": a["bbox"],
                    "bbox_mode": BoxMode.XYXY_ABS,
                    "category_id": a["category_id"],
                    "segmentation": a["segmentation"],
                    "iscrowd": a["iscrowd"],
                }
                for a in anns[r["image_id"]]
            ]
    return records
