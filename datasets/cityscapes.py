"""Cityscapes under our data root: the fine semantic and instance splits, plus `cityscapes_rgbd_train`.

Both loaders list the images from our `rgbd_<split>.json` (the polygons json may be absent); the instance loader
converts the instanceIds PNGs with detectron2's per-image function (`from_json=False`: the polygon path needs
shapely, which is not in our stack). Masks come back as RLE (str counts), dicts gain `image_id`; metadata and
evaluator types are detectron2's (`cityscapes_sem_seg` / `cityscapes_instance`, evaluated by cityscapesscripts)."""

import functools
import multiprocessing as mp
import os

from detectron2.data.datasets.builtin_meta import _get_builtin_metadata
from detectron2.data.datasets.cityscapes import _cityscapes_files_to_dict

from datasets.catalog import read_meta, register
from datasets.fileio import read_json


def _colors():
    from cityscapesscripts.helpers.labels import labels

    stuff = [tuple(lab.color) for lab in labels if lab.trainId not in (255, -1)]
    things = [tuple(lab.color) for lab in labels if lab.hasInstances and not lab.ignoreInEval]
    return stuff, things


def _prepared(folder, split):
    """The prepared images of a split from our index: detectron2's own listing would require the polygons json,
    which a tree prepared from the gtFine PNGs may lack."""
    gt = os.path.join(folder, "gtFine", split)
    for r in read_json(os.path.join(folder, f"rgbd_{split}.json")):
        stem = os.path.join(gt, os.path.basename(os.path.dirname(r["file_name"])), r["image_id"] + "_gtFine_")
        yield r, os.path.join(folder, r["file_name"]), stem


def load_semantic(folder, split):
    return [
        {
            "file_name": image,
            "sem_seg_file_name": stem + "labelTrainIds.png",
            "height": r["height"],
            "width": r["width"],
            "image_id": r["image_id"],
        }
        for r, image, stem in _prepared(folder, split)
    ]


def load_instances(folder, split):
    """detectron2's per-image conversion of the instanceIds PNGs (the json is not read), on a process pool as
    `load_cityscapes_instances` does, and its contiguous category ids."""
    from cityscapesscripts.helpers.labels import labels

    files = [
        (image, stem + "instanceIds.png", stem + "labelIds.png", stem + "polygons.json")
        for _, image, stem in _prepared(folder, split)
    ]
    convert = functools.partial(_cityscapes_files_to_dict, from_json=False, to_polygons=False)
    with mp.Pool(max(1, min(8, (os.cpu_count() or 1) // 2))) as pool:
        dicts = pool.map(convert, files, chunksize=8)
    contiguous = {lab.id: i for i, lab in enumerate(lab for lab in labels if lab.hasInstances and not lab.ignoreInEval)}
    for d in dicts:
        d["image_id"] = os.path.basename(d["file_name"])[: -len("_leftImg8bit.png")]
        for a in d["annotations"]:
            seg = a["segmentation"]
            a["segmentation"] = {"size": [int(s) for s in seg["size"]], "counts": seg["counts"].decode()}
            a["bbox"] = [float(v) for v in a["bbox"]]
            a["iscrowd"] = int(a["iscrowd"])
            a["category_id"] = contiguous[int(a["category_id"])]
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
    meta.update(stuff_colors=stuff_colors, thing_colors=thing_colors, ignore_label=255, depth_unit="mm", root=folder)
    names = [register("cityscapes_rgbd_train", lambda: load_rgbd(folder, "train"), **meta)]
    for split in ("train", "val"):
        image_dir = os.path.join(folder, "leftImg8bit", split)
        gt_dir = os.path.join(folder, "gtFine", split)
        names.append(
            register(
                f"cityscapes_fine_sem_seg_{split}",
                lambda s=split: load_semantic(folder, s),
                image_dir=image_dir,
                gt_dir=gt_dir,
                evaluator_type="cityscapes_sem_seg",
                **meta,
            )
        )
        names.append(
            register(
                f"cityscapes_fine_instance_seg_{split}",
                lambda s=split: load_instances(folder, s),
                image_dir=image_dir,
                gt_dir=gt_dir,
                evaluator_type="cityscapes_instance",
                **meta,
            )
        )
    return names
