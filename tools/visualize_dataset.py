"""Draw samples of a registered dataset: annotations (Detectron2's Visualizer), the colour-mapped depth with its
colour bar in metres and a legend of the classes shown, under column titles.

`python -m tools.visualize_dataset NAME --out DIR -n 8 [--root DATA_ROOT]` writes DIR/NNN_<image_id>.png for
n samples spread evenly over the dataset."""

import argparse
import sys

from datasets.fileio import DataError
from datasets.visualize import draw


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("name", help="a registered dataset, e.g. scannet_instance_val")
    p.add_argument("--out", required=True, help="folder for the PNGs")
    p.add_argument("-n", type=int, default=8, help="number of samples")
    p.add_argument("--root", help="data root (default $MASK3D_DATA, else $DETECTRON2_DATASETS, else ./data)")
    args = p.parse_args(argv)
    from datasets.builtin import register_all

    register_all(args.root)
    try:
        written = draw(args.name, args.out, args.n)
    except (KeyError, AssertionError, FileNotFoundError) as e:
        print(f"visualize_dataset: {args.name}: {e.args[0] if e.args else e}", file=sys.stderr)
        return 1
    except DataError as e:
        print(f"visualize_dataset: {e}", file=sys.stderr)
        return 1
    print(f"visualize_dataset: {len(written)} images of {args.name} in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
