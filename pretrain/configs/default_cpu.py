"""`make pretrain`: ViT-Ti (`vit_t`) at 240x320 on the synthetic RGB-D scenes, a few minutes on 2 CPU cores. The
depth loss clearly falls and the reconstruction PNG shows predicted depth following the true depth. Only
what differs from base.py is here; all of it is our choice, sized for a laptop CPU."""

from .base import data, model, train

model.preset = "vit_t"
model.decoder_dim = 128
model.decoder_depth = 2
model.decoder_heads = 4

data.names = ["synthetic_rgbd_train"]
data.workers = 1

train.max_iter = 600
train.batch_size = 8
train.base_lr = 4.8e-2  # lr 1.5e-3 at batch 8: a short run needs a large step
train.warmup_iters = 30
train.checkpoint_period = 100
train.vis_period = 200
train.log_period = 50
