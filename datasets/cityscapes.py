"""Cityscapes under our data root: detectron2's own loaders for the fine splits, plus `cityscapes_rgbd_train`.

The instance loader reads the instanceIds PNGs (`from_json=False`): the polygon path needs shapely, which is
not in our stack. Masks come back as RLE (str counts), dicts gain `image_id`; metadata and evaluator types
are detectron2's (`cityscapes_sem_seg` / `cityscapes_instance`, which evaluate with cityscapesscripts)."""
import os

from detectron2.data.datasets.builtin_meta import _get_builtin_metadata
from detectron2.data.datasets.cityscapes import load_cityscapes_instances, load_cityscapes_semantic

from datasets.catalog import read_meta, register
from datasets.fileio import read_json


def _colors():
    from cityscapesscripts.helpers.labels import labels

    stuff = [tuple(lab.color) for lab in labels if lab.trainId not in (255, -1)]
    things = [tuple(lab.color) for lab in labels if lab.hasInstances and not lab.ignoreInEval]
    return stuff, things


def load_semantic(image_dir, gt_dir):
    dicts = load_cityscapes_semantic(image_dir, gt_dir)
    for d in dicts:
        d["image_id"] = os.path.basename(d["file_name"])[: -len("_leftImg8bit.png")]
    return dicts


def load_instances(image_dir, gt_dir):
    dicts = load_cityscapes_instances(image_dir, gt_dir, from_json=False, to_polygons=False)
    for d in dicts:
        d["image_id"] = os.path.basename(d["file_name"])[: -len("_leftImg8bit.png")]
        for a in d["annotations"]:
            seg = a["segmentation"]
            a["segmentation"] = {"size": [int(s) for s in seg["size"]], "counts": seg["counts"].decode()}
            a["bbox"] = [float(v) for v in a["bbox"]]
            a["iscrowd"] = int(a["iscrowd"])
            a["category_id"] = int(a["category_id"])
    return dicts


def load_rgbd(folder, split):
    dicts = read_json(os.path.join(folder, f"rgbd_{split}.json"))
    for d in dicts:
        d["file_name"] = os.path.join(folder, d["file_name"])
        d["depth_file_name"] = os.path.join(folder, d["depth_file_name"])
    return dicts


def register_cityscapes(folder: str):
    if read_meta(folder) is None:
        return []
    meta = _get_builtin_metadata("cityscapes")
    stuff_colors, thing_colors = _colors()
    meta.update(stuff_colors=stuff_colors, thing_colors=thing_colors, ignore_label=255, depth_unit="mm",
                root=folder)
    names = [register("cityscapes_rgbd_train", lambda: load_rgbd(folder, "train"), **meta)]
    for split in ("train", "val"):
        image_dir = os.path.join(folder, "leftImg8bit", split)
        gt_dir = os.path.join(folder, "gtFine", split)
        names.append(register(f"cityscapes_fine_sem_seg_{split}", lambda x=image_dir, y=gt_dir: load_semantic(x, y),
                              image_dir=image_dir, gt_dir=gt_dir, evaluator_type="cityscapes_sem_seg", **meta))
        names.append(register(f"cityscapes_fine_instance_seg_{split}",
                              lambda x=image_dir, y=gt_dir: load_instances(x, y),
                              image_dir=image_dir, gt_dir=gt_dir, evaluator_type="cityscapes_instance", **meta))
    return names
