"""Monocular depth estimation, ViT-B (defaults: ScanNet, 480x640): the recipe the dataset configs specialise.

The paper gives no depth recipe; ours is the semantic-segmentation one (AdamW lr 1e-4, weight decay 0.05,
layer decay 0.65, drop path 0.1, linear decay, batch 16) with 250 warm-up iterations, Eigen et al.'s
scale-invariant log loss (lambda 0.5) and a 10 m range. About 32 epochs of ScanNet-25k's ~20k frames.
"""

from .depth_data import depth as dataloader
from .models.depth_vit import model
from .optim import vit_adamw as optimizer
from .schedules import segmentation as lr_multiplier
from .train import train

net = model.backbone.net
net.img_size = 640
net.window_size = 10
net.drop_path_rate = 0.1

optimizer.weight_decay = 0.05
optimizer.params.lr_factor_func.rate = 0.65
lr_multiplier.warmup_iters = 250

dataloader.train.total_batch_size = 16
train.max_iter = 40000
train.checkpointer.period = 5000
