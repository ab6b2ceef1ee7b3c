"""The standard monocular depth metrics (Eigen et al., NIPS 2014) as a Detectron2 `DatasetEvaluator`.

Per image, over ground-truth pixels inside the dataset's valid range (and the Eigen crop on NYUv2), with
the prediction clipped to that range: delta1/2/3 (fraction of pixels with max(p/g, g/p) < 1.25^k), AbsRel
mean(|p-g|/g), SqRel mean((p-g)^2/g) in metres, RMSE in metres, RMSE_log, log10 mean(|log10 p - log10 g|);
then averaged over images, as the NYUv2 depth literature does. Results: `{"depth": {"AbsRel": ..., ...}}`,
flattened into records as `depth/AbsRel`, `depth/delta1`, ...
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence

import numpy as np
from detectron2.data import MetadataCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm

from benchmark.depth import DepthError, read_depth_metres

METRICS = ("delta1", "delta2", "delta3", "AbsRel", "SqRel", "RMSE", "RMSE_log", "log10")
logger = logging.getLogger(__name__)


def depth_metrics(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray) -> dict[str, float] | None:
    """The metrics of one image over `valid` pixels; None when it has none."""
    if not valid.any():
        return None
    p, g = pred[valid].astype(np.float64), gt[valid].astype(np.float64)
    ratio = np.maximum(p / g, g / p)
    diff = p - g
    return {
        "delta1": float(np.mean(ratio < 1.25)),
        "delta2": float(np.mean(ratio < 1.25**2)),
        "delta3": float(np.mean(ratio < 1.25**3)),
        "AbsRel": float(np.mean(np.abs(diff) / g)),
        "SqRel": float(np.mean(diff**2 / g)),
        "RMSE": float(np.sqrt(np.mean(diff**2))),
        "RMSE_log": float(np.sqrt(np.mean((np.log(p) - np.log(g)) ** 2))),
        "log10": float(np.mean(np.abs(np.log10(p) - np.log10(g)))),
    }


def crop_mask(shape: Sequence[int], crop: Sequence[int] | None, frame: Sequence[int] | None) -> np.ndarray:
    """True inside `crop` (top, bottom, left, right on a `frame`-sized image), scaled to `shape`."""
    mask = np.ones(shape, dtype=bool)
    if crop is None:
        return mask
    sy, sx = (shape[0] / frame[0], shape[1] / frame[1]) if frame else (1.0, 1.0)
    top, bottom, left, right = round(crop[0] * sy), round(crop[1] * sy), round(crop[2] * sx), round(crop[3] * sx)
    mask[:] = False
    mask[top:bottom, left:right] = True
    return mask


class DepthEvaluator(DatasetEvaluator):
    """Scores `{"depth": (H, W)}` outputs against each input's `depth_file_name`, with the range and crop
    of the dataset's metadata (`min_depth`, `max_depth`, `eval_crop`, `eval_crop_frame`)."""

    def __init__(self, dataset_name: str, output_dir: str | None = None):
        meta = MetadataCatalog.get(dataset_name)
        self.dataset_name = dataset_name
        self.min_depth, self.max_depth = meta.get("min_depth", 1e-3), meta.get("max_depth", 10.0)
        self.crop, self.crop_frame = meta.get("eval_crop"), meta.get("eval_crop_frame")
        self._per_image: list[dict[str, float]] = []
        self._skipped = 0

    def reset(self):
        self._per_image, self._skipped = [], 0

    def process(self, inputs, outputs):
        for inp, out in zip(inputs, outputs, strict=False):
            gt = read_depth_metres(inp["depth_file_name"])
            pred = out["depth"].detach().to("cpu").float().numpy()
            if pred.shape != gt.shape:
                raise DepthError(
                    f"prediction for {inp['file_name']} is {pred.shape[1]}x{pred.shape[0]}, its depth "
                    f"{inp['depth_file_name']} {gt.shape[1]}x{gt.shape[0]}; the model must return "
                    "depth at the input's height x width"
                )
            valid = (gt >= self.min_depth) & (gt <= self.max_depth) & crop_mask(gt.shape, self.crop, self.crop_frame)
            metrics = depth_metrics(np.clip(pred, self.min_depth, self.max_depth), gt, valid)
            if metrics is None:
                self._skipped += 1
            else:
                self._per_image.append(metrics)

    def evaluate(self):
        comm.synchronize()
        per_image = list(itertools.chain(*comm.gather(self._per_image, dst=0)))
        skipped = sum(comm.gather(self._skipped, dst=0))
        if not comm.is_main_process():
            return {}
        if not per_image:
            raise DepthError(
                f"{self.dataset_name}: none of its {skipped} frames has a valid depth reading in "
                f"[{self.min_depth}, {self.max_depth}] m; check its depth PNGs (uint16 millimetres)"
            )
        if skipped:
            logger.warning(f"{self.dataset_name}: {skipped} frame(s) without valid depth were left out of the metrics")
        return {"depth": {k: float(np.mean([m[k] for m in per_image])) for k in METRICS}}
