"""NYUv2 instance segmentation and detection (`nyuv2_instance_{train,test}`, 795 training images), r50."""

from ..common.insseg_r50 import dataloader, lr_multiplier, model, optimizer, train

dataloader.train.dataset.names = "nyuv2_instance_train"
dataloader.test.dataset.names = "nyuv2_instance_test"
train.max_iter = 5000  # 100 epochs at batch 16
train.checkpointer.period = 1000
