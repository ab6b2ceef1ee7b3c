"""Check a registered dataset in one pass: every file exists and decodes, sizes agree, values are in range.

`python -m tools.check_dataset NAME [--limit N] [--root DATA_ROOT]` prints a summary table and every problem
with its file, and exits 1 when there is any problem."""

import argparse
import sys

from datasets.check import check
from datasets.fileio import DataError


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("name", help="a registered dataset, e.g. scannet_sem_seg_val")
    p.add_argument("--limit", type=int, help="check only the first N images")
    p.add_argument("--root", help="data root (default $MASK3D_DATA, else $DETECTRON2_DATASETS, else ./data)")
    args = p.parse_args(argv)
    from datasets.builtin import register_all

    register_all(args.root)
    try:
        rows, problems = check(args.name, args.limit)
    except (KeyError, DataError, AssertionError, FileNotFoundError) as e:
        print(f"check_dataset: {args.name}: {e.args[0] if e.args else e}", file=sys.stderr)
        return 1
    print(f"check_dataset: {args.name}")
    for key, value in rows:
        print(f"  {key:<12} {value}")
    for path, msg in problems:
        print(f"  PROBLEM {path}: {msg}")
    print(f"check_dataset: {args.name}: {'OK' if not problems else f'{len(problems)} problems'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
