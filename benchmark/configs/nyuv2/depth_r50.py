"""NYUv2 monocular depth estimation (`nyuv2_depth_{train,test}`, Eigen crop, 0.001-10 m), r50; 2500
iterations as the ViT-B depth recipe."""

from ..common.depth_r50 import dataloader, lr_multiplier, model, optimizer, train

dataloader.train.dataset.names = "nyuv2_depth_train"
dataloader.test.dataset.names = "nyuv2_depth_test"
train.max_iter = 2500
train.checkpointer.period = 500
