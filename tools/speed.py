"""`make speed`: throughput measured against this machine's own limits, as ratios taken in the same run.

    python -m tools.speed [--toy] [--out results/speed.json] [--only NAME,...] [--isolate | --shared]

Measurements (`--list` prints them):
- `step_{mask3d,timm}_{vit_s,vit_b}_{cpu,cuda}`: model FLOP/s of a training step (forward + backward,
  FLOPs = 2 x fvcore's multiply-adds, step = 3 x forward) of our pre-training model and of timm's
  supervised ViT, against a large matmul on the same device and dtype timed in the same rounds (on a GPU
  in bf16: the model FLOPs utilisation); `mask3d_vs_timm_*` divides the two; `matmul_*` is the matmul alone.
- `loader_rgbd` / `loader_rgbd_worker`: RGB-D frames/s from files to augmented tensors through
  pretrain/data.py, in one process and through a one-worker DataLoader, against cv2.imread of the same files.
- `packed_read`, `packed_loader`, `packed_cores_per_gpu`: the packed pre-training loader on one core
  (`pretrain.speed_packed`): the packed reader against a plain read of the same bytes, the augmented
  frames/s at 240x320, and the cores one GPU needs: its ViT-B mask3d frames/s from results/gpu_check.json when
  `make gpu-check` wrote one, else estimated from FLOPs at 0.45 MFU of an H100 (`gpu_rate_from` says which).
- `synthetic_generate`, `prepare_scannet`: frames/s of making data. `inference_*_tiny_*`: images/s of the
  benchmark configs' `--tiny` recipe.

The suite, its targets and how rows are judged: benchmark/speed.py. Exit status 1 only when a measurement
failed to run; a missed target is reported, not an error.
"""

from __future__ import annotations

import argparse
import sys

from benchmark import speed

DEFAULT_OUT = "results/speed.json"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.speed",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--toy", "--tiny", dest="toy", action="store_true", help="toy sizes, a few seconds (tests); targets not checked"
    )
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"JSON list of measurements [{DEFAULT_OUT}]")
    parser.add_argument("--only", help="comma-separated measurement names or shell patterns, e.g. 'step_*_vit_s_cpu'")
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--isolate",
        dest="isolate",
        action="store_true",
        default=None,
        help="one process per measurement (default unless --toy)",
    )
    group.add_argument(
        "--shared", dest="isolate", action="store_false", help="all measurements in one process (default with --toy)"
    )
    parser.add_argument("--list", action="store_true", help="print the measurement names and exit")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per worker process [1800]")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join([n for m in speed.measurements(cuda=True) for n in m.row_names] + list(speed.derived_names())))
        return 0
    rows = speed.run(tiny=args.toy, out=args.out, only=args.only, isolate=args.isolate, timeout=args.timeout)
    return 1 if any(r.get("error") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
