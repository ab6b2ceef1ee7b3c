"""`make gpu-check`: is this GPU machine ready for the paper's runs? Under 8 minutes on one H100/H200.

    python -m tools.gpu_check [--smoke] [--out results/gpu_check.json] [--data ROOT] [--keep]

Stages, one line each, stopping at the first failure (exit 1, the stage named): bf16 matmul rate; bf16
pre-training steps of ViT-B `mask3d` at the per-GPU batch, eager and with `torch.compile`, with MFU against
that matmul rate (target >= 0.45); the attention kernel SDPA ran; checkpoint -> resume -> export on the
device; 20 iterations + evaluation of the ViT-B semseg and Mask R-CNN configs at 480x640 with AMP on a small
synthetic tree. The JSON holds device, versions, and per stage status, seconds, peak memory and facts; what the
stages print themselves (training logs, COCO's evaluation tables) goes to the log beside it (OUT with `.log`).

`--smoke` runs every stage at toy size on the CPU (the test suite does) and writes
output/gpu_check_smoke.json, never the committed results file. The check is `benchmark.gpu_check`; runs go
to a temporary folder (results store included) unless `--keep`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark import gpu_check

DEFAULT_OUT = "results/gpu_check.json"
SMOKE_OUT = "output/gpu_check_smoke.json"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="every stage at toy size on the CPU")
    parser.add_argument(
        "--out", type=Path, default=None, help=f"JSON report (default {DEFAULT_OUT}; {SMOKE_OUT} with --smoke)"
    )
    parser.add_argument(
        "--data", type=Path, default=None, help="a data root already holding synthetic/ (default: a fresh small tree)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the runs' folders")
    args = parser.parse_args(argv)
    return gpu_check.run(args.smoke, args.out or Path(SMOKE_OUT if args.smoke else DEFAULT_OUT), args.data, args.keep)


if __name__ == "__main__":
    sys.exit(main())
