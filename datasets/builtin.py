"""Register every prepared dataset found under the data root with Detectron2 (like detectron2's own builtin).

Importing this module registers what `data_root()` holds and never fails. Names whose data is absent are
not registered (so `DatasetCatalog.list()` tells what is usable); `get_dicts` for one of them raises a KeyError
that names the preparation command instead of Detectron2's bare "not registered", and an unknown name gets the
closest known one instead of Detectron2's list of every registered name."""

import logging
import os

from detectron2.data import DatasetCatalog

from core.cli import did_you_mean
from datasets.catalog import unregister

logger = logging.getLogger(__name__)

_SCANNET_NAMES = (
    "{p}_rgbd_train",
    "{p}_rgbd_val",
    "{p}_sem_seg_train",
    "{p}_sem_seg_val",
    "{p}_sem_seg_train_20pct",
    "{p}_sem_seg_train_40pct",
    "{p}_sem_seg_train_60pct",
    "{p}_sem_seg_train_80pct",
    "{p}_sem_seg_train_fit",
    "{p}_sem_seg_train_holdout",
    "{p}_instance_train",
    "{p}_instance_val",
)
# The extra synthetic trees of `make data-synthetic-extra`: folder under the root -> (generator seed, scenes, frames
# per scene), at 240x320 like `make data-synthetic` (seed 0, 24 x 40). Other seeds give other scenes, never val's.
# The pool is unlabelled pre-training data: 96 scenes (77 train) are > 4x the 19 labelled training scenes; scenes
# bring the variety (a scene's frames are independent views of one room), so 16 frames each suffice. The
# control's labelled scenes are for supervised pre-training (the positive control), sized like the fine-tuning set.
EXTRA_SYNTHETIC = {"synthetic_pool": (1, 96, 16), "synthetic_control": (2, 24, 40)}


def synthetic_commands(folder: str, root: str) -> list[list[str]]:
    """The generation and preparation commands (argument lists after `python -m`) of an extra synthetic tree."""
    seed, scenes, frames = EXTRA_SYNTHETIC[folder]
    raw, out = f"{root}/{folder}_raw", f"{root}/{folder}"
    return [
        ["tools.make_synthetic", "--out", raw, "--scenes", str(scenes), "--frames-per-scene", str(frames)]
        + ["--seed", str(seed), "--height", "240", "--width", "320", "--skip-existing"],
        ["tools.prepare_scannet", "--raw", raw, "--out", out, "--frame-skip", "1"],
    ]


# dataset folder under the root -> (names it provides, command that prepares it)
KNOWN = {
    "scannet": (
        [n.format(p="scannet") for n in _SCANNET_NAMES],
        "python -m tools.prepare_scannet --raw SCANNET_RAW --out {root}/scannet",
    ),
    "synthetic": (
        [n.format(p="synthetic") for n in _SCANNET_NAMES],
        "make data-synthetic  (or: python -m tools.make_synthetic --out {root}/synthetic_raw && "
        "python -m tools.prepare_scannet --raw {root}/synthetic_raw --out {root}/synthetic --frame-skip 1)",
    ),
    **{
        folder: (
            [n.format(p=folder) for n in _SCANNET_NAMES],
            "make data-synthetic-extra  (or: "
            + " && ".join("python -m " + " ".join(c) for c in synthetic_commands(folder, "{root}"))
            + ")",
        )
        for folder in EXTRA_SYNTHETIC
    },
    "nyuv2": (
        [
            "nyuv2_rgbd_train",
            "nyuv2_sem_seg_train",
            "nyuv2_sem_seg_test",
            "nyuv2_sem_seg13_train",
            "nyuv2_sem_seg13_test",
            "nyuv2_instance_train",
            "nyuv2_instance_test",
        ],
        "python -m tools.prepare_nyuv2 --mat nyu_depth_v2_labeled.mat --splits splits.mat "
        "--mapping classMapping40.mat --out {root}/nyuv2",
    ),
    "cityscapes": (
        [
            "cityscapes_rgbd_train",
            "cityscapes_fine_sem_seg_train",
            "cityscapes_fine_sem_seg_val",
            "cityscapes_fine_instance_seg_train",
            "cityscapes_fine_instance_seg_val",
        ],
        "python -m tools.prepare_cityscapes --raw CITYSCAPES_RAW --out {root}/cityscapes",
    ),
}
_absent = {}  # name -> message, for names known but not prepared under the current root


def data_root() -> str:
    """$MASK3D_DATA, else $DETECTRON2_DATASETS, else ./data."""
    return os.environ.get("MASK3D_DATA") or os.environ.get("DETECTRON2_DATASETS") or "data"


def get_dicts(name: str) -> list:
    """`DatasetCatalog.get(name)`; a known dataset that is not prepared under the data root raises a KeyError
    naming the command that prepares it, an unknown one the closest known name."""
    if name not in DatasetCatalog:
        if name in _absent:
            raise KeyError(_absent[name])
        raise KeyError(f"Dataset {name!r} is not registered{did_you_mean(name, [*DatasetCatalog.list(), *_absent])}")
    return DatasetCatalog.get(name)


def register_all(root=None):
    """Register every dataset prepared under `root` (default `data_root()`); returns the registered names.
    Idempotent: calling again (with any root) re-points every name at the new root."""
    from datasets.cityscapes import register_cityscapes
    from datasets.depth import register_depth
    from datasets.nyuv2 import register_nyuv2
    from datasets.scannet import register_scannet

    root = os.path.abspath(os.path.expanduser(str(root if root is not None else data_root())))
    registrars = {
        "scannet": register_scannet,
        "synthetic": register_scannet,
        **dict.fromkeys(EXTRA_SYNTHETIC, register_scannet),
        "nyuv2": register_nyuv2,
        "cityscapes": register_cityscapes,
    }
    for names, _ in KNOWN.values():
        for name in names:
            unregister(name)  # also drops detectron2's own cityscapes_fine_* that point at ./datasets
    registered = []
    for folder, registrar in registrars.items():
        try:
            registered += registrar(os.path.join(root, folder))
        except Exception as e:  # noqa: BLE001 - a broken tree must not stop the others from registering
            logger.warning("not registering %s under %s: %s", folder, root, e)
    for names, command in KNOWN.values():
        for name in names:
            if name in registered:
                _absent.pop(name, None)
            else:
                _absent[name] = (
                    f"Dataset '{name}' is not prepared under the data root {root}; prepare it with: "
                    f"{command.format(root=root)}  (the root is $MASK3D_DATA, else "
                    f"$DETECTRON2_DATASETS, else ./data)"
                )
    registered += register_depth(registered, _absent)
    return registered


try:
    register_all()
except Exception as e:  # noqa: BLE001 - importing must never fail
    logger.warning("datasets.builtin: could not register datasets under %s: %s", data_root(), e)
