"""ScanNet 2D semantic segmentation (20 classes, `scannet_sem_seg_{train,val}`), vit_b."""

from ..common.semseg_vit_b import dataloader, lr_multiplier, model, optimizer, train

dataloader.train.dataset.names = "scannet_sem_seg_train"
dataloader.test.dataset.names = "scannet_sem_seg_val"
model.sem_seg_head.num_classes = 20
