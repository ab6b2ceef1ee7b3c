"""Prepare NYUv2's 1449 labelled frames for Detectron2 from the official files: `datasets.prepare.nyuv2` does the work.

    python -m tools.prepare_nyuv2 --mat nyu_depth_v2_labeled.mat --splits splits.mat --mapping classMapping40.mat \\
        --out DATA_ROOT/nyuv2
"""

import argparse
import os
import sys

from datasets.fileio import DataError
from datasets.prepare.nyuv2 import NyuOptions, prepare
from datasets.prepare.tree import INTERRUPTED, failure_message


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mat", required=True, help="nyu_depth_v2_labeled.mat")
    p.add_argument("--splits", required=True, help="splits.mat (trainNdxs / testNdxs)")
    p.add_argument("--mapping", required=True, help="classMapping40.mat (mapClass)")
    p.add_argument("--out", required=True, help="prepared folder, normally DATA_ROOT/nyuv2")
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 1) - 1))
    p.add_argument(
        "--min-instance-fraction",
        type=float,
        default=0.0005,
        help="drop instances smaller than this fraction of the image",
    )
    opts = NyuOptions(**vars(p.parse_args(argv)))
    try:
        res = prepare(opts)
    except (DataError, OSError) as e:
        message = failure_message(e)
        if message is None:
            raise
        print(f"prepare_nyuv2: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"prepare_nyuv2: {INTERRUPTED}", file=sys.stderr)
        return 130
    for e in res["errors"]:
        print(f"prepare_nyuv2: bad input: {e}", file=sys.stderr)
    print(
        f"prepare_nyuv2: train {res['counts']['train']} / test {res['counts']['test']} images in {opts.out} "
        f"({res['converted']} converted in {res['seconds']:.1f} s, {res['skipped']} already done, "
        f"{len(res['errors'])} bad)"
    )
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
