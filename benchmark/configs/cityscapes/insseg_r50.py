"""Cityscapes instance segmentation and detection (8 thing classes,
`cityscapes_fine_instance_seg_{train,val}`), r50.

2:1 frames: large-scale jitter around 1024x2048 with 512x1024 crops, evaluated at 1024x2048;
100 epochs of 2975 images."""

from ..common.data import lsj_augs, test_augs
from ..common.insseg_r50 import dataloader, lr_multiplier, model, optimizer, train

dataloader.train.dataset.names = "cityscapes_fine_instance_seg_train"
dataloader.test.dataset.names = "cityscapes_fine_instance_seg_val"
dataloader.train.mapper.augmentations = lsj_augs((1024, 2048), crop=(512, 1024))
dataloader.test.mapper.augmentations = test_augs((1024, 2048))
model.roi_heads.num_classes = 8
train.max_iter = 18600  # 100 epochs at batch 16
train.checkpointer.period = 5000
