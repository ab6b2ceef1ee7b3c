"""ScanNet 2D semantic segmentation (20 classes, `scannet_sem_seg_{train,val}`), r50."""

from ..common.semseg_r50 import dataloader, lr_multiplier, model, optimizer, train

dataloader.train.dataset.names = "scannet_sem_seg_train"
dataloader.test.dataset.names = "scannet_sem_seg_val"
model.sem_seg_head.num_classes = 20
