"""ScanNet monocular depth estimation (`scannet_depth_{train,val}`, 0.001-10 m), r50."""

from ..common.depth_r50 import dataloader, lr_multiplier, model, optimizer, train

dataloader.train.dataset.names = "scannet_depth_train"
dataloader.test.dataset.names = "scannet_depth_val"
