"""Draw samples of a registered dataset: the image with its annotations painted in the metadata's class colours
(exactly the legend's; instances outlined and named on a dark box that stays inside the image), beside the
colour-mapped depth, under column titles, with a colour bar in metres and a class legend. Text grows with the
frames. `tools.visualize_dataset` is its command line."""

import os

import cv2
import numpy as np
from pycocotools import mask as mask_util

from datasets.drawing import colour_bar, depth_colors, depth_limits, hstack, label, legend, text_scale, titled
from datasets.fileio import read_depth_png, read_label_png, read_rgb, write_image

MIN_HEIGHT = 240
ALPHA = 0.5  # weight of a class colour over the image
LABEL_SCALE = 0.75  # names on the image, relative to the column titles


def colour_of(i: int, colors) -> tuple:
    """The metadata's colour of class `i`, else a fixed one from Detectron2's palette (the legend shows the same)."""
    if colors and i < len(colors):
        return tuple(int(c) for c in colors[i])
    from detectron2.utils.colormap import colormap

    palette = colormap(rgb=True, maximum=255)
    return tuple(int(c) for c in palette[i % len(palette)])


def classes_present(d, meta) -> list:
    """(name, RGB colour) of each class in the dict's instances and semantic map, for the legend; the colours
    are the ones `render` paints."""
    entries = []
    if d.get("annotations"):
        names, colors = meta.get("thing_classes", []), meta.get("thing_colors")
        ids = sorted({int(a["category_id"]) for a in d["annotations"]})
        entries += [(_name(i, names), colour_of(i, colors)) for i in ids]
    if d.get("sem_seg_file_name"):
        names, colors = meta.get("stuff_classes", []), meta.get("stuff_colors")
        ids = np.unique(read_label_png(d["sem_seg_file_name"]))
        entries += [
            (_name(int(i), names), colour_of(int(i), colors)) for i in ids if i != meta.get("ignore_label", 255)
        ]
    return entries


def _name(i: int, names) -> str:
    return names[i] if i < len(names) else f"id {i} (no class)"


def _instance_mask(segmentation, height: int, width: int) -> np.ndarray:
    """A COCO segmentation (RLE, uncompressed RLE or polygons) as an HxW boolean mask."""
    if isinstance(segmentation, dict):
        if isinstance(segmentation["counts"], list):
            segmentation = mask_util.frPyObjects(segmentation, height, width)
        return mask_util.decode(segmentation).astype(bool)
    return mask_util.decode(mask_util.merge(mask_util.frPyObjects(segmentation, height, width))).astype(bool)


def _paint(img: np.ndarray, region: np.ndarray, color) -> None:
    img[region] = ((1 - ALPHA) * img[region] + ALPHA * np.array(color)).astype(np.uint8)


def annotated(d, meta, img: np.ndarray, zoom: float, scale: float) -> np.ndarray:
    """`img` (the frame enlarged `zoom` times) with the semantic map and the instances painted in their class
    colours; instances get a white outline and their class name, largest first so small ones stay on top."""
    h, w = img.shape[:2]
    out = img.copy()
    if d.get("sem_seg_file_name"):
        sem = cv2.resize(read_label_png(d["sem_seg_file_name"]), (w, h), interpolation=cv2.INTER_NEAREST)
        for i in np.unique(sem):
            if i != meta.get("ignore_label", 255):
                _paint(out, sem == i, colour_of(int(i), meta.get("stuff_colors")))
    names, colors = meta.get("thing_classes", []), meta.get("thing_colors")
    shapes = []
    for a in d.get("annotations") or []:
        mask = _instance_mask(a["segmentation"], d["height"], d["width"])
        shapes.append((cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0, a))
    shapes.sort(key=lambda s: -int(s[0].sum()))
    width = max(1, int(round(zoom / 2)))
    for mask, a in shapes:
        _paint(out, mask, colour_of(int(a["category_id"]), colors))
        edge = mask & ~cv2.erode(mask.astype(np.uint8), np.ones((2 * width + 1,) * 2, np.uint8)).astype(bool)
        out[edge] = 255
    taken: list = []
    for mask, a in shapes:  # each name where its instance is thickest, off the names already placed
        if mask.any():
            inside = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
            y, x = np.unravel_index(int(inside.argmax()), inside.shape)
            label(out, _name(int(a["category_id"]), names), int(x), int(y), LABEL_SCALE * scale, taken)
    return out


def render(d, meta) -> np.ndarray:
    """RGB panel with column titles: the annotated image, the depth map at the image's size with its colour
    bar in metres, and a legend naming every class shown in the colours painted. Frames under `MIN_HEIGHT` px
    are drawn enlarged so names and outlines stay legible."""
    img = read_rgb(d["file_name"])
    entries = classes_present(d, meta)
    zoom = max(1.0, MIN_HEIGHT / img.shape[0])
    size = (int(round(img.shape[1] * zoom)), int(round(img.shape[0] * zoom)))
    scale = text_scale(size[0])
    panel = annotated(d, meta, cv2.resize(img, size, interpolation=cv2.INTER_LINEAR), zoom, scale)
    columns = [titled(panel, "image + annotations" if entries else "image", scale)]
    if "depth_file_name" in d:
        mm = read_depth_png(d["depth_file_name"])
        metres, valid = mm / 1000.0, mm > 0
        lo, hi = depth_limits(metres, valid)
        depth = cv2.resize(depth_colors(metres, lo, hi, valid), size, interpolation=cv2.INTER_NEAREST)
        columns += [titled(depth, "depth", scale), colour_bar(lo, hi, panel.shape[0], scale=scale)]
    if entries:
        columns.append(legend(entries, scale=scale))
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
