"""NYUv2 semantic segmentation, 13 classes (`nyuv2_sem_seg13_{train,test}`, 795 training images), vit_b.

Same recipe as ScanNet; ~127 epochs at batch 16 is 6300 iterations."""

from ..common.semseg_vit_b import dataloader, lr_multiplier, model, optimizer, train

dataloader.train.dataset.names = "nyuv2_sem_seg13_train"
dataloader.test.dataset.names = "nyuv2_sem_seg13_test"
model.sem_seg_head.num_classes = 13
train.max_iter = 6300
train.checkpointer.period = 2000
