"""Write procedural RGB-D scenes in the exported-ScanNet layout: `datasets.synthetic.export` does the work.

python -m tools.make_synthetic --out data/synthetic_raw --scenes 24 --frames-per-scene 40 --seed 0
"""

import argparse
import os
import sys
from pathlib import Path

from datasets.synthetic.export import MAX_SCENES, generate, is_complete, write_preview


def _int_arg(name, low, high):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{name} must be in [{low}, {high}], got {value}")
        return value

    return parse


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.make_synthetic", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="output folder (ScanNet export layout)")
    parser.add_argument(
        "--scenes",
        type=_int_arg("--scenes", 2, MAX_SCENES - 1),
        default=24,
        help="number of scenes, >= 2 (the last ~20%% are val) [24]",
    )
    parser.add_argument(
        "--frames-per-scene",
        type=_int_arg("--frames-per-scene", 1, 100000),
        default=40,
        help="camera poses rendered per scene [40]",
    )
    parser.add_argument("--seed", type=_int_arg("--seed", 0, 2**63 - 1), default=0, help="random seed [0]")
    parser.add_argument("--height", type=_int_arg("--height", 16, 4096), default=240, help="image height [240]")
    parser.add_argument("--width", type=_int_arg("--width", 16, 4096), default=320, help="image width [320]")
    parser.add_argument("--preview", type=Path, help="also write a PNG contact sheet of a few frames here")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    parser.add_argument(
        "--skip-existing",
        action="store_true",
        help="do nothing when --out already holds a complete tree made with these arguments",
    )
    parser.add_argument(
        "--workers",
        type=_int_arg("--workers", 1, 256),
        default=min(4, os.cpu_count() or 1),
        help="parallel processes [min(4, CPUs)]; the output does not depend on it",
    )
    args = parser.parse_args(argv)
    if args.preview is not None and args.preview.suffix.lower() != ".png":
        parser.error(f"--preview must name a .png file, got {args.preview}")
    settings = (args.scenes, args.frames_per_scene, args.seed, args.height, args.width)
    if args.skip_existing and is_complete(args.out, *settings):
        print(
            f"make_synthetic: {args.out} is already complete ({args.scenes} scenes x {args.frames_per_scene} "
            f"frames, seed {args.seed}, {args.height}x{args.width}); nothing to do"
        )
    else:
        try:
            stats = generate(args.out, *settings, workers=args.workers, overwrite=args.overwrite)
        except FileExistsError as err:
            parser.error(str(err))
        print(
            f"make_synthetic: wrote {stats['frames']} frames of {stats['scenes']} scenes "
            f"({stats['train_scenes']} train, {stats['val_scenes']} val) at {args.height}x{args.width} to "
            f"{args.out} in {stats['seconds']:.1f} s: {stats['frames_per_s']:.1f} frames/s "
            f"({args.workers} workers)"
        )
    if args.preview is not None:
        write_preview(args.out, args.preview)
        print(f"make_synthetic: preview written to {args.preview}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
