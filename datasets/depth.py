"""Monocular depth estimation splits, registered on top of the RGB-D dicts the other registrars return.

The frames of `nyuv2_depth_{train,test}` (the labeled set's official 795 / 654 split), `{p}_depth_{train,val}`
(ScanNet and the synthetic tree) are those of an existing split that carries `depth_file_name`; only the
metadata differs: `evaluator_type="depth"`, the valid range in metres, and for NYUv2 the Eigen et al.
(NIPS 2014) evaluation crop, rows 45:471 and columns 41:601 of a 480x640 frame. Building on registered
names (not on each registrar's internals) keeps this module valid whatever shape the registrars take.
"""

from __future__ import annotations

from detectron2.data import DatasetCatalog, MetadataCatalog

from datasets.catalog import register, unregister

EIGEN_CROP = (45, 471, 41, 601)  # top, bottom, left, right on a 480x640 NYUv2 frame
EIGEN_FRAME = (480, 640)
MIN_DEPTH, MAX_DEPTH = 1e-3, 10.0  # metres; readings outside are invalid in loss and metrics

# depth name -> (source name whose dicts it reuses, extra metadata)
SOURCES = {
    "nyuv2_depth_train": ("nyuv2_sem_seg_train", {"eval_crop": EIGEN_CROP, "eval_crop_frame": EIGEN_FRAME}),
    "nyuv2_depth_test": ("nyuv2_sem_seg_test", {"eval_crop": EIGEN_CROP, "eval_crop_frame": EIGEN_FRAME}),
    **{f"{p}_depth_{s}": (f"{p}_rgbd_{s}", {}) for p in ("scannet", "synthetic") for s in ("train", "val")},
}
_KEYS = ("file_name", "height", "width", "image_id", "depth_file_name", "intrinsics")


def load_depth_frames(source: str, name: str) -> list[dict]:
    """The source split's dicts reduced to image and depth; a frame without depth is an error naming it."""
    dicts = []
    for d in DatasetCatalog.get(source):
        if not d.get("depth_file_name"):
            raise ValueError(
                f"{name}: frame {d.get('file_name')} of {source} has no depth_file_name; prepare "
                f"the dataset again with its depth maps"
            )
        dicts.append({k: d[k] for k in _KEYS if k in d})
    return dicts


def register_depth(registered: list[str], absent: dict[str, str]) -> list[str]:
    """Register the depth split of every registered source; a depth split whose source is absent gets the
    source's message in `absent` (which names the preparation command). Returns the names registered."""
    names = []
    for name, (source, extra) in SOURCES.items():
        unregister(name)
        absent.pop(name, None)
        if source in registered:
            names.append(
                register(
                    name,
                    lambda s=source, n=name: load_depth_frames(s, n),
                    evaluator_type="depth",
                    depth_unit="mm",
                    min_depth=MIN_DEPTH,
                    max_depth=MAX_DEPTH,
                    source=source,
                    root=MetadataCatalog.get(source).get("root"),
                    **extra,
                )
            )
        elif source in absent:
            absent[name] = absent[source].replace(f"'{source}'", f"'{name}'")
    return names
