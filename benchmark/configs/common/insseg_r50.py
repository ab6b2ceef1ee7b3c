"""Instance segmentation and detection, Mask R-CNN ResNet-50 FPN (Pri3D; defaults: ScanNet, 480x640).

Pri3D's ScanNet Mask R-CNN config: SGD base lr 0.0025, batch 16, 32 RoIs per image; large-scale jitter
and 100 epochs (~125k iterations at batch 16) as the ViT-B recipe, the detection schedule.
"""

from .data import instances as dataloader
from .models.mask_rcnn_r50 import model
from .optim import r50_sgd as optimizer
from .schedules import detection as lr_multiplier
from .train import train

model.roi_heads.num_classes = 18
model.roi_heads.batch_size_per_image = 32

dataloader.train.total_batch_size = 16
train.max_iter = 125000
train.checkpointer.period = 10000
