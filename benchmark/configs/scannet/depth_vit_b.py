"""ScanNet monocular depth estimation (`scannet_depth_{train,val}`, 0.001-10 m), vit_b."""

from ..common.depth_vit_b import dataloader, lr_multiplier, model, optimizer, train

dataloader.train.dataset.names = "scannet_depth_train"
dataloader.test.dataset.names = "scannet_depth_val"
