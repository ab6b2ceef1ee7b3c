"""NYUv2 instance segmentation and detection (`nyuv2_instance_{train,test}`, 795 training images), vit_b."""

from ..common.insseg_vit_b import dataloader, lr_multiplier, model, optimizer, train

dataloader.train.dataset.names = "nyuv2_instance_train"
dataloader.test.dataset.names = "nyuv2_instance_test"
train.max_iter = 1250  # 100 epochs at batch 64
train.checkpointer.period = 500
