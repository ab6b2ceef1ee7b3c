"""Monocular depth estimation, ResNet-50 FPN (Pri3D's backbone; defaults: ScanNet, 480x640).

SGD lr 0.01, momentum 0.9, weight decay 1e-4, batch 16, linear decay after 250 warm-up iterations, as the
R50 segmentation recipe; loss, range and iterations as the ViT-B depth recipe.
"""

from .depth_data import depth as dataloader
from .models.depth_r50 import model
from .optim import r50_sgd as optimizer
from .schedules import segmentation as lr_multiplier
from .train import train

optimizer.lr = 0.01
lr_multiplier.warmup_iters = 250
dataloader.train.total_batch_size = 16
train.max_iter = 40000
train.checkpointer.period = 5000
