"""Semantic segmentation, ViT-B: the recipe the dataset configs specialise (defaults: ScanNet, 480x640).

MAE/BEiT's UperNet fine-tuning recipe on Detectron2's ViTDet backbone: AdamW lr 1e-4, weight decay
0.05, layer decay 0.65, drop path 0.1, 1500 warm-up iterations then linear decay, batch 16, about 127
epochs (MAE's 160k ADE20K iterations; ScanNet-25k's ~20k training frames give the same count).
"""

from .data import semseg as dataloader
from .models.semseg_vit import model
from .optim import vit_adamw as optimizer
from .schedules import segmentation as lr_multiplier
from .train import train

net = model.backbone.net
net.img_size = 640  # long side of a 480x640 frame: sizes the relative position tables of global blocks
net.window_size = 10  # 30x40 tokens at 480x640 tile into 3x4 windows
net.drop_path_rate = 0.1

optimizer.weight_decay = 0.05
optimizer.params.lr_factor_func.rate = 0.65

dataloader.train.total_batch_size = 16
train.max_iter = 160000
train.checkpointer.period = 10000
