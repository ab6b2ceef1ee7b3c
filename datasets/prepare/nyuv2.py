"""Prepare NYUv2 (the 1449 labelled frames) for the registrar in `datasets/nyuv2.py`.

Inputs are the official files: `nyu_depth_v2_labeled.mat` (MATLAB v7.3 = HDF5; h5py sees MATLAB's dims
reversed, so `images` is (N, 3, W, H) and `depths` (metres), `labels` (894 classes, 0 = unlabeled) and
`instances` are (N, W, H)), `splits.mat` (1-based `trainNdxs` / `testNdxs`, 795 / 654) and Gupta et al.'s
`classMapping40.mat` (`mapClass`: 1x894, raw class -> NYU40 id; `className`: the 40 names).

Output (`out`): `image/NNNN.png` (RGB), `depth/NNNN.png` (uint16 mm), `label40/NNNN.png` (0..39, 255 =
unlabeled), `label13/NNNN.png` (0..12), `record/NNNN.json`, `index_{train,test}.json`,
`instances_{train,test}.json` and `meta.json`;
NNNN is the 1-based index into the .mat file, the numbering `splits.mat` uses. Instances are the
(class, instance) pairs of the toolbox's get_instance_masks, for the 37 NYU40 classes other than wall, floor
and ceiling."""

import os
import time
from dataclasses import dataclass

import numpy as np

from datasets import labels as L
from datasets.fileio import DataError, mask_annotation, read_json, write_depth_mm, write_image, write_index, write_json
from datasets.prepare.jobs import run_parallel
from datasets.prepare.tree import check_rerun, claim, made_by, remove_temps, unusable

FORMAT_VERSION = 1
# Kinect RGB intrinsics of the NYU Depth v2 toolbox (camera_params.m), for the 640x480 frames.
NYU_K = ((518.8579, 0.0, 325.5824), (0.0, 519.4696, 253.7362), (0.0, 0.0, 1.0))


@dataclass(frozen=True)
class NyuOptions:
    mat: str  # nyu_depth_v2_labeled.mat
    splits: str  # splits.mat (trainNdxs / testNdxs)
    mapping: str  # classMapping40.mat (mapClass)
    out: str  # prepared folder, normally DATA_ROOT/nyuv2
    workers: int = 1
    min_instance_fraction: float = 0.0005  # drop instances smaller than this fraction of the image


def _load_mat(path, names):
    """Variables of a .mat file, through scipy (v5) or h5py (v7.3)."""
    from scipy.io import loadmat

    if not os.path.isfile(path):
        raise DataError(f"{path}: file is missing")
    try:
        data = loadmat(path)
        get = data.get
    except NotImplementedError:  # v7.3
        import h5py

        with h5py.File(path, "r") as f:
            data = {n: np.asarray(f[n]) for n in names if n in f}
        get = data.get
    except Exception as e:  # noqa: BLE001 - anything else means an unreadable file
        raise DataError(f"{path}: not a readable MATLAB file ({e}); re-download it") from None
    out = {}
    for n in names:
        if get(n) is None:
            raise DataError(f"{path}: variable '{n}' is missing; is this the right file?")
        out[n] = np.asarray(get(n))
    return out


def read_splits(path, num_images):
    s = _load_mat(path, ("trainNdxs", "testNdxs"))
    splits = {k: sorted(int(v) for v in s[n].ravel()) for k, n in (("train", "trainNdxs"), ("test", "testNdxs"))}
    for k, idx in splits.items():
        if not idx or idx[0] < 1 or idx[-1] > num_images:
            raise DataError(f"{path}: {k} indices must be 1-based within 1..{num_images}")
    if set(splits["train"]) & set(splits["test"]):
        raise DataError(f"{path}: train and test indices overlap")
    return splits


def read_mapping(path):
    """uint8 table over raw label values (uint16): raw 894-class id -> NYU40 id, and the number of raw classes."""
    m = _load_mat(path, ("mapClass",))["mapClass"].ravel()
    if m.size < 1 or m.min() < 0 or m.max() > 40:
        raise DataError(f"{path}: mapClass must map raw classes to NYU40 ids 0..40")
    lut = np.zeros(65536, np.uint8)
    lut[1 : m.size + 1] = m.astype(np.uint8)
    return lut, int(m.size)


def open_mat(path):
    """The HDF5 handle and dataset shapes, checked against the official layout."""
    import h5py

    if not os.path.isfile(path):
        raise DataError(f"{path}: file is missing; download nyu_depth_v2_labeled.mat from the NYU Depth v2 site")
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise DataError(f"{path}: not a MATLAB v7.3 (HDF5) file; use the official nyu_depth_v2_labeled.mat") from None
    missing = [k for k in ("images", "depths", "labels", "instances") if k not in f]
    if missing:
        raise DataError(f"{path}: datasets {missing} are missing; is this nyu_depth_v2_labeled.mat?")
    n, c, w, h = f["images"].shape if f["images"].ndim == 4 else (0, 0, 0, 0)
    if c != 3:
        raise DataError(
            f"{path}: 'images' has shape {f['images'].shape}, expected (N, 3, W, H) as h5py reads "
            f"MATLAB's H x W x 3 x N"
        )
    for k in ("depths", "labels", "instances"):
        if f[k].shape != (n, w, h):
            raise DataError(f"{path}: '{k}' has shape {f[k].shape}, expected {(n, w, h)} like 'images'")
    return f, n, (h, w)


def out_paths(out, index):
    stem = f"{index:04d}"
    return {
        k: os.path.join(out, k, stem + (".json" if k == "record" else ".png"))
        for k in ("image", "depth", "label40", "label13", "record")
    }


@dataclass
class ImageJob:
    """Converts one image (1-based index) into the prepared tree; picklable, each process opens the .mat once."""

    mat_path: str
    mapping_path: str
    out: str
    raw_to_40: np.ndarray  # raw 894-class id -> NYU40 id
    num_raw: int
    thing_index: np.ndarray  # NYU40 id -> contiguous thing id, -1 for stuff
    min_instance_fraction: float
    _mat = None

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_mat"}  # an HDF5 handle does not pickle

    def __call__(self, index) -> dict:
        if self._mat is None:
            self._mat = open_mat(self.mat_path)[0]
        f, i = self._mat, index - 1
        paths = out_paths(self.out, index)
        rgb = np.ascontiguousarray(f["images"][i].transpose(2, 1, 0))
        depth = f["depths"][i].T
        raw = f["labels"][i].T.astype(np.uint16)
        inst = f["instances"][i].T
        if raw.max(initial=0) > self.num_raw:
            raise DataError(
                f"{self.mat_path}: image {index} has label id {int(raw.max())}, beyond the "
                f"{self.num_raw} classes of {self.mapping_path}"
            )
        nyu40 = self.raw_to_40[raw]
        write_image(paths["image"], rgb, rgb=True)
        write_depth_mm(paths["depth"], depth)
        write_image(paths["label40"], L.nyu40_to_train_lut(range(1, 41))[nyu40])
        write_image(paths["label13"], L.nyu40_to_13_lut()[nyu40])
        h, w = raw.shape
        k = np.asarray(NYU_K) * np.array([[w / 640], [h / 480], [1.0]])
        record = {
            "image_id": f"nyuv2_{index:04d}",
            "index": index,
            "height": h,
            "width": w,
            "intrinsics": k.tolist(),
            "annotations": self._instances(raw, inst.astype(np.int64)),
        }
        write_json(paths["record"], record)
        return record

    def _instances(self, raw, inst):
        """One instance per (raw class, instance number) pair with a labelled class, as the NYU toolbox does."""
        min_area = self.min_instance_fraction * raw.size
        key = np.asfortranarray(raw.astype(np.int64) * 256 + inst)
        counts = np.bincount(key.ravel())
        anns = []
        for k in np.nonzero(counts)[0]:
            cls = int(self.raw_to_40[k // 256])
            if k // 256 and self.thing_index[cls] >= 0 and counts[k] >= min_area:
                anns.append(mask_annotation(key == k, self.thing_index[cls]))
        return anns


def prepare(opts: NyuOptions) -> dict:
    """Convert every missing image of both splits and write the indexes and `meta.json`; returns a summary
    dict (converted, skipped, errors, counts per split, seconds)."""
    f, n, hw = open_mat(opts.mat)
    f.close()
    splits = read_splits(opts.splits, n)
    raw_to_40, num_raw = read_mapping(opts.mapping)
    options = {"format": FORMAT_VERSION, "min_instance_fraction": opts.min_instance_fraction}
    made = made_by(__name__, FORMAT_VERSION, label_map=opts.mapping)
    check_rerun(opts.out, options, made)
    remove_temps(opts.out)
    claim(opts.out, {"options": options, "made_by": made, "complete": False, "splits": splits, "size": list(hw)})
    thing_index = np.full(41, -1, np.int64)
    thing_index[list(L.NYUV2_THING_NYU40_IDS)] = np.arange(len(L.NYUV2_THING_NYU40_IDS))
    job = ImageJob(opts.mat, opts.mapping, opts.out, raw_to_40, num_raw, thing_index, opts.min_instance_fraction)
    wanted = splits["train"] + splits["test"]
    todo = [i for i in wanted if not all(os.path.isfile(p) for p in out_paths(opts.out, i).values())]
    t0 = time.perf_counter()
    _, errors = run_parallel(job, todo, opts.workers, desc="nyuv2 images")
    seconds = time.perf_counter() - t0
    counts, depths = {}, {}
    for split, idx in splits.items():
        done = [out_paths(opts.out, i) for i in idx if os.path.isfile(out_paths(opts.out, i)["record"])]
        write_index(opts.out, split, [read_json(p["record"]) for p in done])
        counts[split] = len(done)
        depths[split] = [p["depth"] for p in done]
    problem = None if errors else unusable(opts.out, depths)
    meta = {
        "options": options,
        "made_by": made,
        "complete": not errors and problem is None,
        "splits": splits,
        "size": list(hw),
        "num_images": counts,
    }
    write_json(os.path.join(opts.out, "meta.json"), meta)
    if problem:
        raise DataError(problem)
    return {
        "converted": len(todo) - len(errors),
        "skipped": len(wanted) - len(todo),
        "errors": errors,
        "counts": counts,
        "seconds": seconds,
    }
