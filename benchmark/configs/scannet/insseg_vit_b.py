"""ScanNet 2D instance segmentation and detection (`scannet_instance_{train,val}`), vit_b."""

from ..common.insseg_vit_b import dataloader, lr_multiplier, model, optimizer, train

dataloader.train.dataset.names = "scannet_instance_train"
dataloader.test.dataset.names = "scannet_instance_val"
