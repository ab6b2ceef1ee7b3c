"""Semantic segmentation, ResNet-50 FPN (Pri3D's backbone; defaults: ScanNet, 480x640).

SGD lr 0.01, momentum 0.9, weight decay 1e-4, batch 16, the segmentation schedule (1500 warm-up
iterations, linear decay); iterations as the ViT-B recipe. Pri3D itself fine-tuned a ResNet-50 UNet; we
use Detectron2's FPN semantic head so both backbones share one meta-architecture.
"""

from .data import semseg as dataloader
from .models.semseg_r50 import model
from .optim import r50_sgd as optimizer
from .schedules import segmentation as lr_multiplier
from .train import train

optimizer.lr = 0.01
dataloader.train.total_batch_size = 16
train.max_iter = 160000
train.checkpointer.period = 10000
