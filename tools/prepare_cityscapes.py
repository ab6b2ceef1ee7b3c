"""Prepare Cityscapes for detectron2's loaders plus our depth: `datasets.prepare.cityscapes` does the work.

python -m tools.prepare_cityscapes --raw CITYSCAPES_RAW --out DATA_ROOT/cityscapes
"""

import argparse
import os
import sys

from datasets.fileio import DataError
from datasets.prepare.cityscapes import CityscapesOptions, prepare
from datasets.prepare.tree import INTERRUPTED, failure_message


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--raw", required=True, help="Cityscapes root with leftImg8bit/ gtFine/ disparity/ camera/")
    p.add_argument("--out", required=True, help="prepared folder, normally DATA_ROOT/cityscapes (may be --raw)")
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 1) - 1))
    opts = CityscapesOptions(**vars(p.parse_args(argv)))
    try:
        res = prepare(opts)
    except (DataError, OSError) as e:
        message = failure_message(e)
        if message is None:
            raise
        print(f"prepare_cityscapes: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"prepare_cityscapes: {INTERRUPTED}", file=sys.stderr)
        return 130
    for e in res["errors"]:
        print(f"prepare_cityscapes: bad input: {e}", file=sys.stderr)
    print(
        f"prepare_cityscapes: train {res['counts']['train']} / val {res['counts']['val']} images with "
        f"labelTrainIds and depth in {opts.out} ({res['seconds']:.1f} s, {len(res['errors'])} bad)"
    )
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
