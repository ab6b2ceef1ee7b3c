"""ScanNet 2D instance segmentation and detection (`scannet_instance_{train,val}`), r50."""

from ..common.insseg_r50 import dataloader, lr_multiplier, model, optimizer, train

dataloader.train.dataset.names = "scannet_instance_train"
dataloader.test.dataset.names = "scannet_instance_val"
