"""Draw samples of a registered dataset: Detectron2's Visualizer (metadata colours) beside the colour-mapped depth.

`python -m tools.visualize_dataset NAME --out DIR -n 8 [--root DATA_ROOT]` writes DIR/NNN_<image_id>.png for
n samples spread evenly over the dataset."""
import argparse
import os
import sys

import cv2
import numpy as np

from datasets.fileio import DataError, read_depth_png, read_rgb, write_image


def depth_to_color(depth: np.ndarray) -> np.ndarray:
    """Turbo colour map between the 2nd and 98th percentile of valid depth; invalid (0) pixels black."""
    valid = depth > 0
    out = np.zeros(depth.shape + (3,), np.uint8)
    if valid.any():
        lo, hi = np.percentile(depth[valid], (2, 98))
        scaled = np.clip((depth.astype(np.float32) - lo) / max(hi - lo, 1.0), 0, 1)
        colored = cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_TURBO)[..., ::-1]
        out[valid] = colored[valid]
    return out


def render(d, meta) -> np.ndarray:
    """RGB panel: annotated image, then the depth map (when the dict has one) at the image's size."""
    from detectron2.utils.visualizer import Visualizer

    img = read_rgb(d["file_name"])
    panel = Visualizer(img, metadata=meta).draw_dataset_dict(d).get_image()
    if "depth_file_name" in d:
        depth = depth_to_color(read_depth_png(d["depth_file_name"]))
        if depth.shape[:2] != panel.shape[:2]:
            depth = cv2.resize(depth, (panel.shape[1], panel.shape[0]), interpolation=cv2.INTER_NEAREST)
        panel = np.concatenate([panel, depth], axis=1)
    return panel


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("name", help="a registered dataset, e.g. scannet_instance_val")
    p.add_argument("--out", required=True, help="folder for the PNGs")
    p.add_argument("-n", type=int, default=8, help="number of samples")
    p.add_argument("--root", help="data root (default $MASK3D_DATA, else $DETECTRON2_DATASETS, else ./data)")
    args = p.parse_args(argv)
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from tqdm import tqdm

    from datasets.builtin import register_all

    register_all(args.root)
    try:
        dicts = DatasetCatalog.get(args.name)
    except (KeyError, DataError, AssertionError, FileNotFoundError) as e:
        print(f"visualize_dataset: {args.name}: {e.args[0] if e.args else e}", file=sys.stderr)
        return 1
    meta = MetadataCatalog.get(args.name)
    picks = sorted(set(np.linspace(0, len(dicts) - 1, min(args.n, len(dicts))).round().astype(int).tolist()))
    written = []
    for i in tqdm(picks, desc=f"drawing {args.name}", unit="image"):
        d = dicts[i]
        path = os.path.join(args.out, f"{i:03d}_{d['image_id']}.png")
        try:
            write_image(path, render(d, meta), rgb=True)
        except DataError as e:
            print(f"visualize_dataset: {e}", file=sys.stderr)
            return 1
        written.append(path)
    print(f"visualize_dataset: {len(written)} images of {args.name} in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
