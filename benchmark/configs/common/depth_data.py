"""Data loaders for monocular depth estimation: `benchmark.depth.DepthDatasetMapper` on the `*_depth_*` splits.

Augmentation follows the NYUv2 depth literature (e.g. BTS, Lee et al. 2019: random 416x544 crops of
480x640 frames and horizontal flips), with no rescaling, which would change the apparent metric depth,
and no padding, which would invent depth. Evaluation is at the full frame.
"""

import detectron2.data.transforms as T
from detectron2.config import LazyCall as L
from detectron2.data import build_detection_test_loader, build_detection_train_loader, get_detection_dataset_dicts
from omegaconf import OmegaConf

from benchmark.depth import DepthDatasetMapper
from benchmark.depth_eval import DepthEvaluator

from .data import INDOOR, test_augs


def depth_train_augs(size, crop_fraction=(13 / 15, 17 / 20)):
    """A random crop of `crop_fraction` of the frame (416x544 at 480x640) and a horizontal flip."""
    crop = [round(size[0] * crop_fraction[0]), round(size[1] * crop_fraction[1])]
    return [L(T.RandomCrop)(crop_type="absolute", crop_size=crop), L(T.RandomFlip)(horizontal=True)]


depth = OmegaConf.create()
depth.train = L(build_detection_train_loader)(
    dataset=L(get_detection_dataset_dicts)(names="scannet_depth_train"),
    mapper=L(DepthDatasetMapper)(
        is_train=True, augmentations=depth_train_augs(INDOOR), image_format="RGB", max_depth=10.0
    ),
    total_batch_size=16,
    num_workers=4,
)
depth.test = L(build_detection_test_loader)(
    dataset=L(get_detection_dataset_dicts)(names="scannet_depth_val", filter_empty=False),
    mapper=L(DepthDatasetMapper)(is_train=False, augmentations=test_augs(INDOOR), image_format="RGB"),
    num_workers=4,
)
depth.evaluator = L(DepthEvaluator)(dataset_name="${..test.dataset.names}")
