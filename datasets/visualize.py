"""Draw samples of a registered dataset: Detectron2's Visualizer (metadata colours) beside the colour-mapped depth.
`tools.visualize_dataset` is its command line."""
import os

import cv2
import numpy as np

from datasets.fileio import read_depth_png, read_rgb, write_image


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


def draw(name: str, out: str, n: int = 8) -> list:
    """Write `n` samples of a registered dataset, spread evenly over it, as `out/NNN_<image_id>.png`; returns
    their paths. Raises KeyError (naming the preparation command) for an absent dataset, DataError for a bad file."""
    from detectron2.data import MetadataCatalog
    from tqdm import tqdm

    from datasets.builtin import get_dicts

    dicts = get_dicts(name)
    meta = MetadataCatalog.get(name)
    picks = sorted(set(np.linspace(0, len(dicts) - 1, min(n, len(dicts))).round().astype(int).tolist()))
    written = []
    for i in tqdm(picks, desc=f"drawing {name}", unit="image"):
        d = dicts[i]
        path = os.path.join(out, f"{i:03d}_{d['image_id']}.png")
        write_image(path, render(d, meta), rgb=True)
        written.append(path)
    return written
