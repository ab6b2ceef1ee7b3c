"""Pack registered RGB-D datasets into memory-mapped shards of pre-resized frames (`datasets.packed`).

    python -m tools.pack_rgbd scannet_rgbd_train --out DATA_ROOT/packed/scannet_300x400 [--size 300 400]

A rerun with the same arguments resumes an interrupted pack; other arguments into the same folder are refused."""

import argparse
import os
import sys

from datasets.fileio import DataError
from datasets.packed import DEFAULT_SHARD_FRAMES, DEFAULT_SIZE, pack


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("names", help="registered RGB-D datasets, comma-separated, e.g. scannet_rgbd_train")
    p.add_argument("--out", required=True, help="pack folder")
    p.add_argument(
        "--size",
        type=int,
        nargs=2,
        default=DEFAULT_SIZE,
        metavar=("H", "W"),
        help="stored frame size, a little above the training size (default %(default)s for 240x320)",
    )
    p.add_argument("--shard-frames", type=int, default=DEFAULT_SHARD_FRAMES, help="frames per shard file")
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 1) - 1))
    p.add_argument("--root", help="data root (default $MASK3D_DATA, else $DETECTRON2_DATASETS, else ./data)")
    args = p.parse_args(argv)
    if min(args.size) < 16 or args.shard_frames < 1:
        p.error(f"--size must be at least 16 16 and --shard-frames at least 1, got {args.size} {args.shard_frames}")
    from datasets.builtin import get_dicts, register_all
    from pretrain.data import parse_names

    register_all(args.root)
    names = parse_names(args.names)
    try:
        dicts = [d for name in names for d in get_dicts(name)]
        res = pack(dicts, args.out, args.size, args.shard_frames, args.workers, source=names)
    except (KeyError, DataError) as e:
        print(f"pack_rgbd: error: {e.args[0] if e.args else e}", file=sys.stderr)
        return 1
    for e in res["errors"]:
        print(f"pack_rgbd: bad input: {e}", file=sys.stderr)
    print(
        f"pack_rgbd: {res['frames']} frames of {','.join(names)} in {res['shards']} shards at "
        f"{args.size[0]}x{args.size[1]} in {args.out} ({res['packed']} packed, {res['kept']} kept, "
        f"{len(res['errors'])} bad, {res['seconds']:.1f} s)"
    )
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
