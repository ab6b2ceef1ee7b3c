"""Learning-rate schedules and layer-wise decay, written as functions of `train.max_iter`.

Configs call these lazily with `max_iter="${train.max_iter}"`, so overriding the iteration count on the
command line (or shrinking a config to its tiny variant) moves the milestones and the warm-up with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from detectron2.modeling.backbone.vit import get_vit_lr_decay_rate
from detectron2.solver import WarmupParamScheduler
from fvcore.common.param_scheduler import MultiStepParamScheduler, PolynomialDecayParamScheduler


def _warmup_fraction(warmup_iters: int, max_iter: int) -> float:
    return min(max(warmup_iters, 0) / max(max_iter, 1), 0.5)


def step_schedule(
    max_iter: int,
    warmup_iters: int = 250,
    steps: Sequence[float] = (0.889, 0.963),
    gamma: float = 0.1,
    warmup_factor: float = 0.001,
) -> WarmupParamScheduler:
    """ViTDet's schedule: linear warm-up, then the LR drops by `gamma` at each fraction in `steps`
    (ViTDet's 100-epoch COCO recipe drops at 88.9% and 96.3% of training)."""
    milestones = sorted({max(1, min(max_iter - 1, int(f * max_iter))) for f in steps}) if max_iter > 1 else []
    values = [gamma**i for i in range(len(milestones) + 1)]
    return WarmupParamScheduler(
        MultiStepParamScheduler(values, milestones=milestones, num_updates=max_iter),
        warmup_factor=warmup_factor,
        warmup_length=_warmup_fraction(warmup_iters, max_iter),
    )


def poly_schedule(
    max_iter: int, warmup_iters: int = 1500, power: float = 1.0, warmup_factor: float = 1e-6
) -> WarmupParamScheduler:
    """Segmentation's schedule (MAE/BEiT UperNet recipe): linear warm-up, then polynomial decay to 0."""
    return WarmupParamScheduler(
        PolynomialDecayParamScheduler(1.0, power),
        warmup_factor=warmup_factor,
        warmup_length=_warmup_fraction(warmup_iters, max_iter),
    )


def vit_layer_decay(num_layers: int, rate: float):
    """Layer-wise LR decay (BEiT/MAE/ViTDet): block i gets `rate ** (num_layers + 1 - (i + 1))`; the patch
    and position embeddings get the smallest factor, heads get 1. Depth comes from the model config."""
    return partial(get_vit_lr_decay_rate, num_layers=num_layers, lr_decay_rate=rate)
