"""Draw samples of a registered dataset: Detectron2's Visualizer (metadata colours) beside the colour-mapped depth,
with column titles, a colour bar in metres and a class legend. `tools.visualize_dataset` is its command line."""

import os

import cv2
import numpy as np

from datasets.drawing import colour_bar, depth_colors, depth_limits, hstack, legend, titled
from datasets.fileio import read_depth_png, read_label_png, read_rgb, write_image

MIN_HEIGHT = 240


def classes_present(d, meta) -> list:
    """(name, RGB colour or None) of each class in the dict's instances and semantic map, for the legend;
    colours are the metadata's, the ones the Visualizer paints in SEGMENTATION mode (instances slightly jittered)."""
    entries = []
    if d.get("annotations"):
        names, colors = meta.get("thing_classes", []), meta.get("thing_colors")
        ids = sorted({int(a["category_id"]) for a in d["annotations"]})
        entries += [_entry(i, names, colors) for i in ids]
    if d.get("sem_seg_file_name"):
        names, colors = meta.get("stuff_classes", []), meta.get("stuff_colors")
        ids = np.unique(read_label_png(d["sem_seg_file_name"]))
        entries += [_entry(int(i), names, colors) for i in ids if i != meta.get("ignore_label", 255)]
    return entries


def _entry(i, names, colors):
    if i >= len(names):
        return f"id {i} (no class)", None
    return names[i], (tuple(int(c) for c in colors[i]) if colors else None)


def render(d, meta) -> np.ndarray:
    """RGB panel with column titles: the annotated image, the depth map at the image's size with its colour
    bar in metres, and a legend naming every class shown. Frames under `MIN_HEIGHT` px are drawn enlarged so
    the Visualizer's labels stay legible."""
    from detectron2.utils.visualizer import ColorMode, Visualizer

    img = read_rgb(d["file_name"])
    entries = classes_present(d, meta)
    scale = max(1.0, MIN_HEIGHT / img.shape[0])
    vis = Visualizer(img, metadata=meta, scale=scale, instance_mode=ColorMode.SEGMENTATION)
    panel = vis.draw_dataset_dict(d).get_image()
    columns = [titled(panel, "image + annotations" if entries else "image")]
    if "depth_file_name" in d:
        mm = read_depth_png(d["depth_file_name"])
        metres, valid = mm / 1000.0, mm > 0
        lo, hi = depth_limits(metres, valid)
        depth = cv2.resize(
            depth_colors(metres, lo, hi, valid), (panel.shape[1], panel.shape[0]), interpolation=cv2.INTER_NEAREST
        )
        columns += [titled(depth, "depth"), colour_bar(lo, hi, panel.shape[0])]
    if entries:
        columns.append(legend(entries))
    return hstack(columns)


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
