"""The paper-scale recipe: Mask3D pre-training of ViT-B/16 on ScanNet RGB-D frames (needs
`scannet_rgbd_train`, see datasets/). Run with torchrun on 8 GPUs, e.g.
`torchrun --standalone --nproc_per_node 8 -m pretrain --config pretrain/configs/scannet_vit_b.py --resume` (or
`python -m pretrain --num-gpus 8 ...`, Detectron2's launcher).
Baselines on the same data and budget: `model.objective=mae`, `model.objective=multimae`."""

from .base import data, model, train

data.names = ["scannet_rgbd_train"]
