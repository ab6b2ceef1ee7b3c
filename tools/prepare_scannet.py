"""Prepare ScanNet (or the synthetic tree in its layout) for Detectron2: `datasets.prepare.scannet` does the work.

python -m tools.prepare_scannet --raw SCANNET_RAW --out DATA_ROOT/scannet [--frame-skip 25] [--workers N]
"""

import argparse
import os
import sys

from datasets.fileio import DataError
from datasets.labels import SCANNET_TSV_NAME
from datasets.prepare.scannet import PREFIXES, ScanNetOptions, prepare
from datasets.prepare.tree import INTERRUPTED, failure_message


def parse_args(argv) -> ScanNetOptions:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--raw", required=True, help="ScanNet root (holding scans/ and the tsv) or scannet_frames_25k")
    p.add_argument("--out", required=True, help="prepared folder, normally DATA_ROOT/scannet")
    p.add_argument("--layout", choices=("exported", "frames25k"), help="default: detected")
    p.add_argument("--frame-skip", type=int, help="keep every K-th frame (default 25 exported, 1 frames25k)")
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 1) - 1))
    p.add_argument("--classes", type=int, choices=(20, 40), default=20, help="semantic label set")
    p.add_argument("--resolution", type=int, nargs=2, metavar=("H", "W"), help="default: the depth's (640x480)")
    p.add_argument(
        "--min-instance-fraction",
        type=float,
        default=0.0005,
        help="drop instances smaller than this fraction of the image (0.0005 = 154 px at 640x480)",
    )
    p.add_argument("--label-map", help=f"path of {SCANNET_TSV_NAME} (default RAW/{SCANNET_TSV_NAME})")
    p.add_argument("--splits-dir", help="folder with scannetv2_{train,val}.txt (default RAW)")
    p.add_argument("--prefix", choices=PREFIXES, help="dataset name prefix (default: --out's folder name if one)")
    p.add_argument("--skip-bad", action="store_true", help="leave out frames with bad input instead of failing")
    args = p.parse_args(argv)
    if args.frame_skip is not None and args.frame_skip < 1:
        p.error("--frame-skip must be >= 1")
    return ScanNetOptions(**dict(vars(args), resolution=tuple(args.resolution) if args.resolution else None))


def main(argv=None) -> int:
    opts = parse_args(argv)
    try:
        res = prepare(opts)
    except (DataError, OSError) as e:
        message = failure_message(e)
        if message is None:
            raise
        print(f"prepare_scannet: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"prepare_scannet: {INTERRUPTED}", file=sys.stderr)
        return 130
    for e in res["errors"][:50]:
        print(f"prepare_scannet: bad input: {e}", file=sys.stderr)
    fps = res["converted"] / res["seconds"] if res["seconds"] > 0 else 0.0
    print(
        f"prepare_scannet: {res['prefix']} train {res['counts']['train']} / val {res['counts']['val']} frames "
        f"in {opts.out} ({res['converted']} converted at {fps:.1f} frames/s, {res['skipped']} already done, "
        f"{len(res['errors'])} bad)"
    )
    print(
        "prepare_scannet: camera poses "
        + ", ".join(
            f"{split} {c['valid']} (invalid {c['invalid']}, no pose file {c['missing']})"
            for split, c in res["poses"].items()
            if split != "raw"
        )
    )
    if res["errors"] and not opts.skip_bad:
        print(
            "prepare_scannet: fix the files above (or pass --skip-bad) and rerun; finished frames are kept",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
