"""RGB-D pre-training data from registered Detectron2 datasets (any dict list with `depth_file_name`).

RGB and depth get the same random resized crop and flip; depth is resized with nearest neighbour so an
invalid 0 is never blended into a valid reading; colour jitter touches RGB only. Every random choice
for a sample comes from a seed the sampler hands out with its index, `(seed, epoch, position)`, so the
stream of batches is a pure function of the config and the number of samples consumed: resuming, or
changing the number of workers, replays it exactly.
"""
from __future__ import annotations

import math
import time

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from datasets.fileio import read_depth_png, read_rgb


def parse_names(names) -> list[str]:
    """Dataset names from a list and/or comma-separated strings (`DATA=a,b` on the command line)."""
    names = [names] if isinstance(names, str) else list(names)
    return [n.strip() for part in names for n in str(part).split(",") if n.strip()]


def dataset_dicts(names) -> list[dict]:
    """Concatenated dicts of the registered datasets `names` (see `parse_names`); each must carry
    `depth_file_name`."""
    from detectron2.data import DatasetCatalog

    names = parse_names(names)
    if not names:
        raise ValueError("data.names is empty; name at least one RGB-D dataset, e.g. synthetic_rgbd_train")
    if any(n not in DatasetCatalog.list() for n in names):
        from datasets.builtin import register_all  # its catalog names the preparation command of a missing set

        register_all()
    dicts = []
    for name in names:
        try:
            part = DatasetCatalog.get(name)
        except KeyError as e:
            raise ValueError(f"dataset {name!r} is not available: {e.args[0] if e.args else e}") from None
        if not part:
            raise ValueError(f"dataset {name!r} is empty; check its preparation output")
        lacking = [d.get("file_name") for d in part if not d.get("depth_file_name")]
        if lacking:
            raise ValueError(f"dataset {name!r} has no depth_file_name ({len(lacking)} of {len(part)} images, "
                             f"e.g. {lacking[0]}); RGB-D pre-training needs depth: use an *_rgbd_* dataset "
                             f"such as synthetic_rgbd_train")
        dicts.extend(part)
    return dicts


def read_rgbd(d: dict) -> tuple[np.ndarray, np.ndarray]:
    """(HxWx3 uint8 RGB, HxW float32 metres with 0 = invalid); errors name the file."""
    rgb = read_rgb(d["file_name"])
    depth_mm = read_depth_png(d["depth_file_name"])
    if depth_mm.shape != rgb.shape[:2]:
        raise ValueError(f"{d['depth_file_name']}: depth is {depth_mm.shape[1]}x{depth_mm.shape[0]} but "
                         f"{d['file_name']} is {rgb.shape[1]}x{rgb.shape[0]}; prepare depth at the image size")
    return rgb, depth_mm.astype(np.float32) / 1000.0


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


def jitter_colors(rgb: np.ndarray, rng, strength: float) -> np.ndarray:
    """Brightness, contrast and saturation factors drawn from [1 - s, 1 + s]."""
    b, c, s = rng.uniform(1 - strength, 1 + strength, size=3)
    x = rgb.astype(np.float32) * b
    grey = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    x = (x - grey.mean()) * c + grey.mean()
    grey = (x @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]
    x = grey + (x - grey) * s
    return np.clip(x, 0, 255).astype(np.uint8)


class RGBDPretrainDataset(Dataset):
    """Items are `(index, seed)` pairs from `ShardedInfiniteSampler` (augmented) or plain indices (a
    deterministic centre view, for pictures). Returns uint8 `image` (3, H, W), float32 `depth` (1, H, W)
    in metres and bool `valid` (1, H, W)."""

    def __init__(self, dicts, img_size, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3), hflip=0.5, color_jitter=0.4):
        self.dicts, self.img_size = dicts, tuple(int(s) for s in img_size)
        self.scale, self.ratio, self.hflip, self.jitter = tuple(scale), tuple(ratio), hflip, color_jitter

    def __len__(self):
        return len(self.dicts)

    def __getitem__(self, item):
        index, seed = item if isinstance(item, tuple) else (item, None)
        rgb, depth = read_rgbd(self.dicts[index])
        h, w = self.img_size
        if seed is None:
            y, x, ch, cw = center_box(*depth.shape, w / h)
        else:
            rng = np.random.default_rng(seed)
            y, x, ch, cw = random_crop_box(rng, *depth.shape, w / h, self.scale, self.ratio)
        rgb, depth = rgb[y:y + ch, x:x + cw], depth[y:y + ch, x:x + cw]
        rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA if ch > h else cv2.INTER_LINEAR)
        depth = cv2.resize(depth, (w, h), interpolation=cv2.INTER_NEAREST)
        if seed is not None:
            if rng.random() < self.hflip:
                rgb, depth = rgb[:, ::-1], depth[:, ::-1]
            if self.jitter > 0:
                rgb = jitter_colors(rgb, rng, self.jitter)
        depth = torch.from_numpy(np.ascontiguousarray(depth))[None]
        return {"image": torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).contiguous(),
                "depth": depth, "valid": depth > 0}


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
            order = np.resize(order, self.per_rank * self.world)[self.rank::self.world]
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
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, drop_last=True,
                      pin_memory=pin_memory and torch.cuda.is_available(), worker_init_fn=_worker_init,
                      persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None)


def benchmark_loader(names, img_size=(240, 320), batch_size=32, workers=2, batches=20, **augment) -> dict:
    """Throughput of decoding alone (one process) against the full loader, for `make speed`:
    `decode_images_per_s`, `augment_images_per_s` (decode + augment, one process), `loader_images_per_s`
    and `loader_images_per_s_per_worker`."""
    dicts = dataset_dicts(names)
    dataset = RGBDPretrainDataset(dicts, img_size, **augment)
    n = min(len(dicts), batch_size * 2)
    t0 = time.perf_counter()
    for d in dicts[:n]:
        read_rgbd(d)
    t1 = time.perf_counter()
    for i in range(n):
        dataset[(i, [0, 0, 0, i])]
    t2 = time.perf_counter()
    loader = iter(make_loader(dataset, batch_size, workers=workers, pin_memory=True))
    next(loader)  # worker start-up is not throughput
    t3 = time.perf_counter()
    for _ in range(batches):
        next(loader)
    t4 = time.perf_counter()
    loader_rate = batches * batch_size / (t4 - t3)
    return {"decode_images_per_s": n / (t1 - t0), "augment_images_per_s": n / (t2 - t1),
            "loader_images_per_s": loader_rate, "loader_images_per_s_per_worker": loader_rate / max(workers, 1),
            "workers": workers, "batch_size": batch_size, "img_size": list(img_size)}
