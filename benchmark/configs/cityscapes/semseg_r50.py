"""Cityscapes semantic segmentation (19 classes, `cityscapes_fine_sem_seg_{train,val}`), r50.

2:1 frames: trained on 512x1024 crops of 0.5-2x rescaled 1024x2048 images, evaluated at 1024x2048;
~127 epochs of 2975 images at batch 16 is 23600 iterations."""

from ..common.data import semseg_train_augs, test_augs
from ..common.semseg_r50 import dataloader, lr_multiplier, model, optimizer, train

dataloader.train.dataset.names = "cityscapes_fine_sem_seg_train"
dataloader.test.dataset.names = "cityscapes_fine_sem_seg_val"
dataloader.train.mapper.augmentations = semseg_train_augs((1024, 2048), crop=(512, 1024))
dataloader.test.mapper.augmentations = test_augs((1024, 2048))
model.sem_seg_head.num_classes = 19
train.max_iter = 23600
