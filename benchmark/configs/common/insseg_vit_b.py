"""Instance segmentation and detection, ViTDet Mask R-CNN ViT-B (defaults: ScanNet, 480x640).

ViTDet's recipe (Li et al., ECCV 2022): large-scale jitter, AdamW lr 1e-4, weight decay 0.1, layer
decay 0.7, drop path 0.1, batch 64, 100 epochs (~31k iterations for ScanNet-25k's ~20k training frames),
250 warm-up iterations, LR x0.1 at 88.9% and 96.3%.
"""

from .data import instances as dataloader
from .models.mask_rcnn_vit import model
from .optim import vit_adamw as optimizer
from .schedules import detection as lr_multiplier
from .train import train

net = model.backbone.net
net.img_size = 640
net.window_size = 10
net.drop_path_rate = 0.1
model.roi_heads.num_classes = 18

dataloader.train.total_batch_size = 64
train.max_iter = 31250
train.checkpointer.period = 5000
