"""`make speed`: RGB-D frames/s from ScanNet-format files (JPEG + uint16 PNG) to augmented training tensors
through pretrain/data.py, against `cv2.imread` of the same files timed in the same rounds: in this process
on one core, then through the real DataLoader with one worker process."""

from __future__ import annotations

import gc
import glob
import os
import time

import cv2
import torch
from torch.utils.data import default_collate

from core.measure import (
    best,
    children_peak_rss_mb,
    common_settings,
    memory,
    process_cpu_s,
    reset_peak_memory,
    spread,
    time_calls,
)
from datasets.speed import ensure_raw
from pretrain.speed_step import BASE_CONFIG, plain

CPU = torch.device("cpu")


def _raw_pairs(raw):
    colors = sorted(glob.glob(os.path.join(raw, "scans", "*", "color", "*.jpg")))
    if not colors:
        raise RuntimeError(f"no colour frames under {raw}")
    return [
        (c, os.path.join(os.path.dirname(os.path.dirname(c)), "depth", os.path.basename(c)[:-4] + ".png"))
        for c in colors
    ]


def measure_loader(workdir, tiny=False):
    """Rows `loader_rgbd` (in process, one core) and `loader_rgbd_worker` (a one-worker DataLoader)."""
    threads = cv2.getNumThreads(), torch.get_num_threads()
    # One core, as in a loader worker: pretrain.data.make_loader calls cv2.setNumThreads(0) before it
    # starts workers (no pool; cv2 runs in the calling thread), and its _worker_init sets torch to 1.
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    try:
        return _measure_loader(workdir, tiny)
    finally:  # a shared worker process runs other measurements next
        cv2.setNumThreads(threads[0])
        torch.set_num_threads(threads[1])


def _measure_loader(workdir, tiny):
    from detectron2.config import LazyConfig

    from pretrain.data import RGBDPretrainDataset, make_loader

    pairs = _raw_pairs(ensure_raw(workdir, tiny))
    cfg = LazyConfig.load(str(BASE_CONFIG))
    img_size = (48, 64) if tiny else tuple(cfg.model.img_size)
    aug = {k: plain(cfg.data[k]) for k in ("scale", "ratio", "hflip", "color_jitter")}
    h, w = cv2.imread(pairs[0][0]).shape[:2]
    dicts = [
        {"file_name": c, "depth_file_name": d, "height": h, "width": w, "image_id": str(i)}
        for i, (c, d) in enumerate(pairs)
    ]
    dataset = RGBDPretrainDataset(dicts, img_size, **aug)
    batch = 2 if tiny else 8
    n = len(pairs) * (1 if tiny else 3) // batch * batch  # frames per pass

    def decode():
        for i in range(n):
            c, d = pairs[i % len(pairs)]
            if cv2.imread(c, cv2.IMREAD_COLOR) is None or cv2.imread(d, cv2.IMREAD_UNCHANGED) is None:
                raise RuntimeError(f"cannot decode {c} / {d}")

    counter = iter(range(10**9))

    def augment():
        for _ in range(n // batch):
            items = []
            for _ in range(batch):
                k = next(counter)
                items.append(dataset[(k % len(dataset), [0, 0, 0, k])])  # what ShardedInfiniteSampler yields
            default_collate(items)

    reset_peak_memory(CPU)
    limits, rates = [], []
    for _ in range(2 if tiny else 5):  # a pass is long enough to time alone (after one to warm up)
        limits.append(time_calls(decode, 0.0))
        rates.append(time_calls(augment, 0.0))
    value, limit, ratio = best([n / t.wall_s for t in rates], [n / t.wall_s for t in limits])
    value_cpu, _, ratio_cpu = best([n / t.cpu_s for t in rates], [n / t.cpu_s for t in limits])
    base = dict(
        common_settings(tiny),
        files=len(pairs),
        frame_hw=[h, w],
        img_size=list(img_size),
        batch=batch,
        frames_per_pass=n,
        augment=aug,
        rounds=len(rates),
        threads=1,
    )
    rows = [
        {
            "name": "loader_rgbd",
            "value": value,
            "unit": "frames/s/core",
            "limit": limit,
            "ratio": ratio,
            "value_cpu": value_cpu,
            "ratio_cpu": ratio_cpu,
            "settings": dict(
                base,
                path="RGBDPretrainDataset[(index, seed)] + default_collate, in process",
                **spread([n / t.wall_s for t in rates], [n / t.wall_s for t in limits]),
            ),
            **memory(CPU),
        }
    ]
    rows.append(
        _measure_worker(make_loader(dataset, batch, workers=1, seed=0, pin_memory=False), batch, n, decode, tiny, base)
    )
    return rows


def _measure_worker(loader, batch, n, decode, tiny, base):
    """The real DataLoader with one worker: adds process start (excluded) and shared-memory transfer. Timed
    by hand, since the worker works ahead: its queue is drained untimed before each timed stretch (so every
    timed batch is made while we wait), and it is left to refill and go idle before the decode-only
    reference runs. Its CPU time comes from /proc, per frame it made."""
    queued = (loader.prefetch_factor or 2) * loader.num_workers
    it = iter(loader)
    next(it)
    worker_pid = getattr(getattr(it, "_workers", [None])[0], "pid", None)
    batches = max(2, n // batch)
    rates, limits, cpu_rates, cpu_limits = [], [], [], []
    for _ in range(2 if tiny else 3):
        for _ in range(queued):
            next(it)
        t0, wc0 = time.perf_counter(), process_cpu_s(worker_pid)
        for _ in range(batches):
            next(it)
        t1, wc1 = time.perf_counter(), process_cpu_s(worker_pid)
        time.sleep(1.5 * queued * (t1 - t0) / batches)
        reference = time_calls(decode, 0.0)
        rates.append(batches * batch / (t1 - t0))
        limits.append(n / reference.wall_s)
        if wc0 is not None and wc1 is not None and wc1 > wc0:
            cpu_rates.append(batches * batch / (wc1 - wc0))
            cpu_limits.append(n / reference.cpu_s)
    del it, loader
    gc.collect()
    value, limit, ratio = best(rates, limits)
    value_cpu, _, ratio_cpu = best(cpu_rates, cpu_limits) if cpu_rates else (None, None, None)
    return {
        "name": "loader_rgbd_worker",
        "value": value,
        "unit": "frames/s/worker",
        "limit": limit,
        "ratio": ratio,
        "value_cpu": value_cpu,
        "ratio_cpu": ratio_cpu,
        "settings": dict(
            base,
            path="pretrain.data.make_loader(workers=1)",
            batches_per_round=batches,
            rounds=len(rates),
            **spread(rates, limits),
        ),
        **memory(CPU),
        "peak_rss_children_mb": children_peak_rss_mb(),
    }
