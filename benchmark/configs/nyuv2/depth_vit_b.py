"""NYUv2 monocular depth estimation (`nyuv2_depth_{train,test}`: the labeled set's 795 / 654 split, metrics
inside the Eigen crop, 0.001-10 m), vit_b. About 50 epochs of 795 frames at batch 16."""

from ..common.depth_vit_b import dataloader, lr_multiplier, model, optimizer, train

dataloader.train.dataset.names = "nyuv2_depth_train"
dataloader.test.dataset.names = "nyuv2_depth_test"
train.max_iter = 2500
train.checkpointer.period = 500
