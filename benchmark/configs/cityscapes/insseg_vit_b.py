"""Cityscapes instance segmentation and detection (8 thing classes,
`cityscapes_fine_instance_seg_{train,val}`), vit_b.

2:1 frames: large-scale jitter around 1024x2048 with 512x1024 crops, evaluated at 1024x2048;
100 epochs of 2975 images."""

from ..common.data import lsj_augs, test_augs
from ..common.insseg_vit_b import dataloader, lr_multiplier, model, optimizer, train

dataloader.train.dataset.names = "cityscapes_fine_instance_seg_train"
dataloader.test.dataset.names = "cityscapes_fine_instance_seg_val"
dataloader.train.mapper.augmentations = lsj_augs((1024, 2048), crop=(512, 1024))
dataloader.test.mapper.augmentations = test_augs((1024, 2048))
model.roi_heads.num_classes = 8
train.max_iter = 4650  # 100 epochs at batch 64
train.checkpointer.period = 1000
# 64x128 tokens at 1024x2048 (32x64 on crops) tile into 16x16 windows; rel-pos tables sized for crops.
model.backbone.net.img_size = 1024
model.backbone.net.window_size = 16
