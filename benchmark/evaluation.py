"""Evaluation glue: reading label PNGs for `SemSegEvaluator` and turning evaluator output into records.

Detectron2's evaluators return `{"sem_seg": {"mIoU": ...}, "bbox": {"AP50": ...}, "segm": {...}}`; a run's
record in the results store holds them flattened as `sem_seg/mIoU`, `bbox/AP50`, `segm/AP50`, ...
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from detectron2.utils.file_io import PathManager
from PIL import Image

from core import units

COCO_HEADLINE = ("AP", "AP50", "AP75")


def read_label_png(filename: str, dtype=int) -> np.ndarray:
    """`SemSegEvaluator`'s GT reader (its default calls `np.array(copy=False)`, which numpy 2 rejects)."""
    with PathManager.open(filename, "rb") as f:
        return np.asarray(Image.open(f), dtype=dtype).copy()


def task_of(results: Mapping[str, Mapping[str, float]]) -> str:
    """The results-store task of a run: Mask R-CNN's box and mask AP together are `insseg`, boxes alone `det`."""
    if "sem_seg" in results:
        return "semseg"
    if "depth" in results:
        return "depth"
    if "segm" in results:
        return "insseg"
    if "bbox" in results:
        return "det"
    raise ValueError(f"no sem_seg, depth, segm or bbox metrics in the evaluation results {sorted(results)}")


def record_metrics(results: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Flat finite metrics for the results store.

    COCO's AP is NaN when the model made no detection at all; that is an AP of 0 (nothing recalled), so
    the headline numbers are stored as 0 rather than dropped. Other NaNs (a class or object size absent
    from the ground truth) carry no information and are left out of the record.
    """
    flat = {}
    for section, metrics in results.items():
        metrics = {name: float(v) for name, v in metrics.items()}
        if section in ("bbox", "segm") and math.isnan(metrics.get("AP", 0.0)):
            metrics.update({name: 0.0 for name in COCO_HEADLINE})
        flat.update({f"{section}/{name}": v for name, v in metrics.items() if math.isfinite(v)})
    return flat


def format_metric(name: str, value: float) -> str:
    """`bbox/AP 0.30 %`, `depth/RMSE 0.512 m`: the metric's unit and decimals (core.units)."""
    return units.with_unit(name, value)
