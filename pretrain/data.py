"""RGB-D pre-training data from registered Detectron2 datasets (any dict list with `depth_file_name`).

RGB and depth get the same random resized crop and flip; depth is resized with nearest neighbour so an
invalid 0 is never blended into a valid reading; colour jitter touches RGB only. Every random choice
for a sample comes from a seed the sampler hands out with its index, `(seed, epoch, position)`, so the
stream of batches is a pure function of the config and the number of samples consumed: resuming, or
changing the number of workers, replays it exactly. Items stay uint8 RGB and uint16 millimetres up to the
device, where `to_model_inputs` makes the model's float inputs.
"""

from __future__ import annotations

import logging
import math

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from datasets.fileio import decode_image, read_depth_png, read_label_png


def parse_names(names) -> list[str]:
    """Dataset names from a list and/or comma-separated strings (`DATA=a,b` on the command line)."""
    names = [names] if isinstance(names, str) else list(names)
    return [n.strip() for part in names for n in str(part).split(",") if n.strip()]


def dataset_dicts(names, posed: bool = False, sem_seg_classes: int | None = None) -> list[dict]:
    """Concatenated dicts of the registered datasets `names` (see `parse_names`); each must carry
    `depth_file_name`. `posed` (multi-view objectives) keeps the frames with a camera pose, dropping those whose
    raw pose was invalid, and names the files to add where poses are missing (`datasets.poses`).
    `sem_seg_classes` (objectives that read semantic labels): each must also carry `sem_seg_file_name` and have
    that many `stuff_classes`."""
    from detectron2.data import DatasetCatalog

    names = parse_names(names)
    if not names:
        raise ValueError("data.names is empty; name at least one RGB-D dataset, e.g. synthetic_rgbd_train")
    if any(n not in DatasetCatalog.list() for n in names):
        from datasets.builtin import register_all

        register_all()
    from datasets.builtin import get_dicts  # names the preparation command of a missing set

    dicts = []
    for name in names:
        try:
            part = get_dicts(name)
        except KeyError as e:
            raise ValueError(f"dataset {name!r} is not available: {e.args[0] if e.args else e}") from None
        if not part:
            raise ValueError(f"dataset {name!r} is empty; check its preparation output")
        lacking = [d.get("file_name") for d in part if not d.get("depth_file_name")]
        if lacking:
            raise ValueError(
                f"dataset {name!r} has no depth_file_name ({len(lacking)} of {len(part)} images, "
                f"e.g. {lacking[0]}); RGB-D pre-training needs depth: use an *_rgbd_* dataset "
                f"such as synthetic_rgbd_train"
            )
        if sem_seg_classes is not None:
            check_sem_seg(name, part, sem_seg_classes)
        if posed:
            from datasets.poses import require_poses

            part, dropped = require_poses(part, name)
            if dropped:
                logging.getLogger(__name__).warning(f"{name}: {dropped} frame(s) with an invalid camera pose left out")
        dicts.extend(part)
    return dicts


def check_sem_seg(name: str, dicts: list[dict], num_classes: int) -> None:
    """A dataset an objective reads semantic labels from: every dict has `sem_seg_file_name` and the metadata's
    `stuff_classes` are the objective's `num_classes`."""
    from detectron2.data import MetadataCatalog

    lacking = [d.get("file_name") for d in dicts if not d.get("sem_seg_file_name")]
    if lacking:
        raise ValueError(
            f"dataset {name!r} has no sem_seg_file_name ({len(lacking)} of {len(dicts)} images, e.g. {lacking[0]}); "
            f"an objective that reads semantic labels needs a *_sem_seg_* dataset such as synthetic_sem_seg_train"
        )
    classes = len(MetadataCatalog.get(name).get("stuff_classes", []))
    if classes != num_classes:
        raise ValueError(
            f"dataset {name!r} has {classes} semantic classes but model.num_classes is {num_classes}; "
            f"set model.num_classes={classes}"
        )


def read_bgr_depth_mm(d: dict) -> tuple[np.ndarray, np.ndarray]:
    """(HxWx3 uint8 BGR as decoded, HxW uint16 millimetres with 0 = invalid); errors name the file. The
    loader crops and resizes first and converts (BGR to RGB, millimetres to metres) only the small result."""
    bgr = decode_image(d["file_name"], cv2.IMREAD_COLOR)
    depth_mm = read_depth_png(d["depth_file_name"])
    if depth_mm.shape != bgr.shape[:2]:
        raise ValueError(
            f"{d['depth_file_name']}: depth is {depth_mm.shape[1]}x{depth_mm.shape[0]} but "
            f"{d['file_name']} is {bgr.shape[1]}x{bgr.shape[0]}; prepare depth at the image size"
        )
    return bgr, depth_mm


def random_crop_box(rng, height, width, out_aspect, scale, ratio):
    """(y, x, h, w) covering `scale` of the area with aspect `out_aspect * ratio` (torchvision's
    RandomResizedCrop, with the ratio taken relative to the output's aspect so non-square outputs are
    not squeezed on average)."""
    area = height * width
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = out_aspect * math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        w, h = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    return center_box(height, width, out_aspect)


def center_box(height, width, out_aspect):
    """The largest centred box with the output's aspect."""
    if width / height > out_aspect:
        w = int(round(height * out_aspect))
        return 0, (width - w) // 2, height, w
    h = int(round(width / out_aspect))
    return (height - h) // 2, 0, h, width


_GREY = np.array([0.299, 0.587, 0.114])  # luma weights; they sum to 1


def jitter_colors(rgb: np.ndarray, rng, strength: float) -> np.ndarray:
    """Brightness b, contrast c and saturation s factors drawn from [1 - s, 1 + s], applied in that order:
    x = b * rgb; x = c * (x - mean grey) + mean grey; x = s * x + (1 - s) * grey(x), rounded and clipped
    to uint8. All three are linear, so they fold into one 3x4 map per pixel (with mu the image's mean grey)
    x = c*b*(s*I + (1-s)*1 w^T) rgb + (1-c)*b*mu, applied by a single `cv2.transform`."""
    b, c, s = rng.uniform(1 - strength, 1 + strength, size=3)
    mu = float(np.dot(cv2.mean(rgb)[:3], _GREY))
    m = c * b * (s * np.eye(3) + (1 - s) * np.outer(np.ones(3), _GREY))
    return cv2.transform(rgb, np.hstack([m, np.full((3, 1), (1 - c) * b * mu)]))


class RGBDPretrainDataset(Dataset):
    """Items are `(index, seed)` pairs from `ShardedInfiniteSampler` (augmented) or plain indices (a
    deterministic centre view, for pictures). Returns the raw bytes `to_model_inputs` converts on the device:
    uint8 `rgb` (H, W, 3) and uint16 `depth_mm` (H, W), 0 = invalid; with `sem_seg`, also uint8 `sem_seg` (H, W),
    the train ids of the dict's `sem_seg_file_name` (255 = ignore) under the same crop (nearest neighbour) and
    flip. The random stream is the same either way."""

    read_order = "BGR"  # the channel order `read` returns: decoded images are BGR

    def __init__(
        self, dicts, img_size, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3), hflip=0.5, color_jitter=0.4, sem_seg=False
    ):
        self.dicts, self.img_size = dicts, tuple(int(s) for s in img_size)
        self.scale, self.ratio, self.hflip, self.jitter = tuple(scale), tuple(ratio), hflip, color_jitter
        self.sem_seg = sem_seg

    def __len__(self):
        return len(self.dicts)

    def read(self, index) -> tuple[np.ndarray, np.ndarray]:
        """(uint8 colour in `read_order`, uint16 mm) of frame `index` before augmentation; a packed dataset reads
        its shards."""
        return read_bgr_depth_mm(self.dicts[index])

    def __getitem__(self, item):
        index, seed = item if isinstance(item, tuple) else (item, None)
        colour, depth_mm = self.read(index)
        h, w = self.img_size
        if seed is None:
            y, x, ch, cw = center_box(*depth_mm.shape, w / h)
        else:
            rng = np.random.default_rng(seed)
            y, x, ch, cw = random_crop_box(rng, *depth_mm.shape, w / h, self.scale, self.ratio)
        labels = self.read_sem_seg(index, depth_mm.shape)[y : y + ch, x : x + cw] if self.sem_seg else None
        colour, depth_mm = colour[y : y + ch, x : x + cw], depth_mm[y : y + ch, x : x + cw]
        # Area averaging only pays for itself (against aliasing) when shrinking by 2x or more.
        rgb = cv2.resize(colour, (w, h), interpolation=cv2.INTER_AREA if ch >= 2 * h else cv2.INTER_LINEAR)
        if self.read_order == "BGR":
            rgb = cv2.cvtColor(rgb, cv2.COLOR_BGR2RGB)
        depth_mm = cv2.resize(depth_mm, (w, h), interpolation=cv2.INTER_NEAREST)  # 0 = invalid stays unblended
        if labels is not None:
            labels = cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST)
        if seed is not None:
            if rng.random() < self.hflip:
                rgb, depth_mm = cv2.flip(rgb, 1), cv2.flip(depth_mm, 1)
                labels = None if labels is None else cv2.flip(labels, 1)
            if self.jitter > 0:
                rgb = jitter_colors(rgb, rng, self.jitter)
        item = {"rgb": torch.from_numpy(rgb), "depth_mm": torch.from_numpy(depth_mm)}
        if labels is not None:
            item["sem_seg"] = torch.from_numpy(labels)
        return item

    def read_sem_seg(self, index, shape) -> np.ndarray:
        """The uint8 train ids of frame `index` (HxW, 255 = ignore), which must match the depth's size `shape`."""
        path = self.dicts[index]["sem_seg_file_name"]
        labels = read_label_png(path, dtypes=(np.uint8,))
        if labels.shape != shape:
            raise ValueError(
                f"{path}: labels are {labels.shape[1]}x{labels.shape[0]} but the frame is {shape[1]}x{shape[0]}; "
                f"prepare the labels at the image size"
            )
        return labels


def to_model_inputs(batch: dict, device) -> dict:
    """A loader batch as the model's inputs on `device`: uint8 `rgb` (..., H, W, 3) becomes `image` (..., 3, H, W),
    uint16 `depth_mm` (..., H, W) becomes `depth` in metres (..., 1, H, W) and its mask `valid`; other keys are
    moved as they are. Workers hand over the bytes as read (collation is a plain copy, a quarter of the bytes of
    float RGB and half of float depth cross to the device) and the conversion runs where the model runs; every
    consumer of loader batches (training step, pictures, metrics, gpu-check) goes through here."""
    out = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    rgb, depth_mm = out.pop("rgb"), out.pop("depth_mm")
    # float32 metres, then the mask (uint16 has no comparison kernels); on CUDA the division is a multiplication by
    # the reciprocal, within one ulp of the metres the CPU made before.
    depth = depth_mm.unsqueeze(-3).float() / 1000.0
    # Contiguous (..., 3, H, W): the layout the model's patch embedding has always seen, so losses keep their bits.
    return {"image": rgb.movedim(-1, -3).contiguous(), "depth": depth, "valid": depth > 0, **out}


class ShardedInfiniteSampler(Sampler):
    """An endless stream of `(index, sample_seed)`: a fresh permutation per epoch from `(seed, epoch)`,
    padded to a multiple of `world_size` and dealt round-robin to ranks, starting after `start` items of
    this rank's share (resume)."""

    def __init__(self, size: int, seed: int, rank: int = 0, world_size: int = 1, start: int = 0):
        self.size, self.seed, self.rank, self.world, self.start = size, seed, rank, world_size, start
        self.per_rank = math.ceil(size / world_size)

    def __iter__(self):
        epoch, offset = divmod(self.start, self.per_rank)
        while True:
            order = np.random.default_rng([self.seed, epoch]).permutation(self.size)
            order = np.resize(order, self.per_rank * self.world)[self.rank :: self.world]
            for pos in range(offset, self.per_rank):
                yield int(order[pos]), [self.seed, epoch, self.rank, pos]
            epoch, offset = epoch + 1, 0


def _worker_init(_):
    torch.set_num_threads(1)  # workers are the parallelism


def make_loader(dataset, batch_size, workers=2, seed=0, rank=0, world_size=1, start=0, pin_memory=True):
    if workers > 0:
        # OpenCV's thread pool does not survive fork: a worker forked while the pool exists can hang in
        # its first cv2 call. Without a pool cv2 runs in the calling thread, one image per worker.
        cv2.setNumThreads(0)
    sampler = ShardedInfiniteSampler(len(dataset), seed, rank, world_size, start)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        drop_last=True,
        pin_memory=pin_memory and torch.cuda.is_available(),
        worker_init_fn=_worker_init,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
    )
