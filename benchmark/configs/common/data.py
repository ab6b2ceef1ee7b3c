"""Data loaders for the benchmark: Detectron2's `DatasetMapper` on registered dataset dicts (RGB only).

Geometry helpers take the frame size `(height, width)` so one recipe serves 4:3 indoor frames (ScanNet,
NYUv2 at 480x640) and 2:1 Cityscapes (1024x2048). Dataset names are set by the dataset configs
(`docs/interfaces.md`); `datasets.builtin` registers them.
"""

import detectron2.data.transforms as T
from detectron2.config import LazyCall as L
from detectron2.data import (
    DatasetMapper,
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
)
from detectron2.evaluation import COCOEvaluator, SemSegEvaluator
from omegaconf import OmegaConf

from benchmark.evaluation import read_label_png


def semseg_train_augs(size, crop=None, scales=(0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)):
    """Multi-scale resize of the short edge (0.5-2x, as in MAE/BEiT's segmentation recipe), a crop of
    `crop` (default: the frame size) that no single class fills entirely, and a horizontal flip."""
    height, width = size
    crop = crop or size
    return [
        L(T.ResizeShortestEdge)(
            short_edge_length=[int(height * s) for s in scales],
            max_size=int(width * max(scales)),
            sample_style="choice",
        ),
        L(T.RandomCrop_CategoryAreaConstraint)(
            crop_type="absolute", crop_size=list(crop), single_category_max_area=1.0, ignored_category=255
        ),
        L(T.RandomFlip)(horizontal=True),
    ]


def lsj_augs(size, crop=None):
    """ViTDet's large-scale jitter adapted to non-square frames: rescale by 0.1-2x of `size`, then a
    fixed `crop` (default: the frame size), padded to it, and a horizontal flip."""
    height, width = size
    crop = crop or size
    return [
        L(T.RandomFlip)(horizontal=True),
        L(T.ResizeScale)(min_scale=0.1, max_scale=2.0, target_height=height, target_width=width),
        L(T.FixedSizeCrop)(crop_size=list(crop), pad=True),
    ]


def test_augs(size):
    """Evaluate at the frame size (short edge = height, long edge capped at width)."""
    height, width = size
    return [L(T.ResizeShortestEdge)(short_edge_length=height, max_size=width)]


INDOOR = (480, 640)

semseg = OmegaConf.create()
semseg.train = L(build_detection_train_loader)(
    dataset=L(get_detection_dataset_dicts)(names="scannet_sem_seg_train"),
    mapper=L(DatasetMapper)(is_train=True, augmentations=semseg_train_augs(INDOOR), image_format="RGB"),
    total_batch_size=16,
    num_workers=4,
)
semseg.test = L(build_detection_test_loader)(
    dataset=L(get_detection_dataset_dicts)(names="scannet_sem_seg_val", filter_empty=False),
    mapper=L(DatasetMapper)(is_train=False, augmentations=test_augs(INDOOR), image_format="RGB"),
    num_workers=4,
)
semseg.evaluator = L(SemSegEvaluator)(dataset_name="${..test.dataset.names}", sem_seg_loading_fn=read_label_png)

instances = OmegaConf.create()
instances.train = L(build_detection_train_loader)(
    dataset=L(get_detection_dataset_dicts)(names="scannet_instance_train"),
    mapper=L(DatasetMapper)(
        is_train=True,
        augmentations=lsj_augs(INDOOR),
        image_format="RGB",
        use_instance_mask=True,
        instance_mask_format="bitmask",
        recompute_boxes=True,
    ),
    total_batch_size=16,
    num_workers=4,
)
instances.test = L(build_detection_test_loader)(
    dataset=L(get_detection_dataset_dicts)(names="scannet_instance_val", filter_empty=False),
    mapper=L(DatasetMapper)(is_train=False, augmentations=test_augs(INDOOR), image_format="RGB"),
    num_workers=4,
)
instances.evaluator = L(COCOEvaluator)(dataset_name="${..test.dataset.names}", tasks=("bbox", "segm"))
