"""What a campaign costs before it starts: GPU-hours of its fine-tunes.

No GPU step of a fine-tune has been measured in this project, so the default figure is an estimate from
FLOPs: the backbone's forward multiply-adds per image at the config's training size (fvcore, measured once,
below) x 2 FLOPs per MAC x 3 (forward + backward) x batch x iterations, at `mfu` of a `peak` FLOP/s.
Heads, evaluation and data loading are left out, so it is a lower bound. When `results/speed.json` (`make speed`)
or `results/gpu_check.json` (`tools.gpu_check`, rows in the same format, as a list or under `rows`) holds a
measured CUDA training step of our ViT-B (`step_mask3d_vit_b_cuda`, model FLOP/s of a real step on a real
GPU), that rate replaces `mfu x peak`, and the estimate says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from benchmark.campaign.runner import REPO
from benchmark.campaign.tables import Run, config_facts

H100_BF16_TFLOPS = 989.0  # dense bf16, NVIDIA's H100 SXM datasheet
DEFAULT_MFU = 0.45  # the step's target in `make speed` (benchmark/speed.py GPU_MFU)
# Backbone forward GMAC per image at the configs' training size (indoor 480x640, Cityscapes crops 512x1024).
# ViT-B: fvcore on Detectron2's ViTDet ViT-B (window attention as configured), measured once by the lead.
# R50: torchvision ResNet-50's 4.09 GMAC at 224x224 scaled by pixels (convolutions are linear in pixels).
BACKBONE_GMAC = {
    ("vit_b", "indoor"): 134.5,
    ("vit_b", "cityscapes"): 244.4,
    ("r50", "indoor"): 4.09 * 480 * 640 / 224**2,
    ("r50", "cityscapes"): 4.09 * 512 * 1024 / 224**2,
}
MEASURED_ROW = "step_mask3d_vit_b_cuda"
MEASUREMENTS = (REPO / "results" / "speed.json", REPO / "results" / "gpu_check.json")


@dataclass(frozen=True)
class Estimate:
    gpu_hours: float  # of the runs to run
    source: str  # where the rate comes from, for the console


def measured_rate(path: Path) -> float | None:
    """Model FLOP/s of a measured CUDA training step of ViT-B in a measurements file, if it holds one."""
    try:
        rows = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    rows = rows.get("rows", []) if isinstance(rows, dict) else rows
    row = next((r for r in rows if isinstance(r, dict) and r.get("name") == MEASURED_ROW), None)
    if not row or row.get("error") or not row.get("value") or row.get("unit") != "GFLOP/s":
        return None
    return float(row["value"]) * 1e9


def run_flops(run: Run, iters: int | None = None) -> float:
    facts = config_facts(run.job.config)
    size = "cityscapes" if run.job.config.split("/")[-2] == "cityscapes" else "indoor"
    gmac = BACKBONE_GMAC[(run.backbone, size)]
    return 2 * 3 * gmac * 1e9 * facts["batch"] * (iters or facts["max_iter"])


def estimate(
    runs: list[Run],
    iters: int | None = None,
    mfu: float = DEFAULT_MFU,
    peak_tflops: float = H100_BF16_TFLOPS,
    measurements: tuple[Path, ...] = MEASUREMENTS,
) -> Estimate:
    found = next(((p, r) for p in measurements if (r := measured_rate(p))), None)
    measured = found[1] if found else None
    rate = measured or mfu * peak_tflops * 1e12
    seconds = sum(run_flops(r, iters) for r in runs if (REPO / r.job.config).is_file()) / rate
    if measured:
        source = (
            f"measured: {measured / 1e12:.0f} TFLOP/s of a ViT-B training step on this project's GPU "
            f"({Path(found[0]).name}, {MEASURED_ROW}) applied to each run's backbone FLOPs"
        )
    else:
        source = (
            f"an estimate from FLOPs, not a measurement: backbone forward GMAC x 2 x 3 (fwd+bwd) x batch x "
            f"iterations at {mfu:g} MFU of {peak_tflops:g} TFLOP/s (H100 bf16); heads, evaluation and data "
            f"loading left out, so a lower bound"
        )
    return Estimate(seconds / 3600, source)
