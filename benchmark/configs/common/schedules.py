"""Learning-rate multipliers, functions of `train.max_iter` so overrides move milestones and warm-up."""

from detectron2.config import LazyCall as L

from benchmark.solver import poly_schedule, step_schedule

# ViTDet (Li et al., ECCV 2022): 250 warm-up iterations, x0.1 at 88.9% and 96.3% of training.
detection = L(step_schedule)(max_iter="${train.max_iter}", warmup_iters=250)
# MAE / BEiT UperNet fine-tuning: 1500 warm-up iterations, then linear decay to zero.
segmentation = L(poly_schedule)(max_iter="${train.max_iter}", warmup_iters=1500, power=1.0)
