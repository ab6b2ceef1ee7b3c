"""`make speed`: how fast a pack feeds pre-training, on one core, against what one GPU consumes (the `packed_*`
rows of `tools.speed`).

Rates are frames/s over the same random frames (warmed into the page cache first, so disks do not decide),
measured with OpenCV and torch on one thread; each comes as wall-clock and per CPU-second of this process
(`*_cpu`, which neighbours on a shared machine do not disturb)."""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager, redirect_stdout

import cv2
import numpy as np
import torch
from torch.utils.data import default_collate

from core.measure import common_settings, memory, reset_peak_memory, spread
from datasets.packed import PackedFrames, PackedRGBD, shard_paths
from datasets.speed import ensure_raw

from .data import ShardedInfiniteSampler
from .packed import PackedPretrainDataset

# ViT-B mask3d pre-training at 240x320 (pretrain/configs/base.py): fvcore's multiply-adds of one frame's forward.
VIT_B_MASK3D_GMAC = 16.2
H100_BF16_TFLOPS = 989.0
ESTIMATE_MFU = 0.45  # the MFU target of a training step (benchmark/speed.py)
CPU = torch.device("cpu")


def gpu_frame_rate(
    gmac_forward: float = VIT_B_MASK3D_GMAC, peak_tflops: float = H100_BF16_TFLOPS, mfu: float = ESTIMATE_MFU
) -> float:
    """Frames/s one accelerator consumes: a step costs 3 forwards (the backward is two), a MAC is 2 FLOPs.
    ViT-B at 0.45 MFU of an H100: 445 TFLOP/s / 97 GFLOP = ~4,600 frames/s."""
    return peak_tflops * 1e12 * mfu / (6.0 * gmac_forward * 1e9)


def cores_needed(gpu_rate: float, per_core_rate: float) -> int:
    return math.ceil(gpu_rate / per_core_rate)


GPU_CHECK = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results", "gpu_check.json")
GPU_CHECK_STAGES = ("pretrain_eager", "pretrain_compile")  # ViT-B mask3d training steps at its per-GPU batch


def gpu_consumption(gpu_check: str = GPU_CHECK) -> dict:
    """Frames/s one GPU consumes in pre-training and where the figure comes from: the fastest passed training
    stage of a `make gpu-check` report (`gpu_rate_from: "gpu_check"`, measured), else `gpu_frame_rate()`
    (`"flop estimate"`: when the report is absent, a smoke run, or has no passed training stage)."""
    if os.path.exists(gpu_check):
        try:
            with open(gpu_check, encoding="utf-8") as f:
                report = json.load(f)
            stages = {} if report.get("smoke") else {s["name"]: s for s in report["stages"] if s["status"] == "ok"}
            measured = {n: float(stages[n]["facts"]["images_per_s"]) for n in GPU_CHECK_STAGES if n in stages}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(
                f"{gpu_check}: not a readable gpu-check report ({type(e).__name__}: {e}); run `make gpu-check` "
                f"again or remove the file"
            ) from None
        if measured:
            stage = max(measured, key=measured.get)
            return {
                "gpu_frames_per_s": measured[stage],
                "gpu_rate_from": "gpu_check",
                "gpu_check": {
                    "stage": stage,
                    "img_size": stages[stage]["facts"].get("img_size"),
                    "device": report.get("device"),
                    "date": report.get("date"),
                },
            }
    return {"gpu_frames_per_s": gpu_frame_rate(), "gpu_rate_from": "flop estimate"}


@contextmanager
def one_core():
    cv_threads, torch_threads = cv2.getNumThreads(), torch.get_num_threads()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(cv_threads)
        torch.set_num_threads(torch_threads)


def _rate(fn, items, frames: int = None) -> dict:
    """Frames/s of one pass of `fn` over `items` (each one frame unless `frames` says how many in all)."""
    frames = len(items) if frames is None else frames
    wall, cpu = time.perf_counter(), time.process_time()
    for it in items:
        fn(it)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"frames_per_s": frames / wall, "frames_per_s_cpu": frames / max(cpu, 1e-9)}


def _sample(frames: PackedFrames, n: int, seed: int) -> list:
    order = np.random.default_rng(seed).permutation(len(frames))[:n].tolist()
    for i in order:  # into the page cache
        np.array(frames[i][0]), np.array(frames[i][1])
    return order


def plain_read(folder: str, n: int = 1000, seed: int = 0) -> Callable[[], dict]:
    """A pass of the limit: `np.fromfile` of exactly the bytes of each frame (its RGB row and depth row)."""
    frames = PackedFrames(folder)
    order = _sample(frames, n, seed)
    (h, w), per = frames.size, frames.shard_frames
    offsets = {s: (frames.shard(s)[0].offset, frames.shard(s)[1].offset) for s in {i // per for i in order}}

    def read(i):
        shard, row = divmod(i, per)
        rgb_path, depth_path = shard_paths(folder, shard)
        np.fromfile(rgb_path, np.uint8, h * w * 3, offset=offsets[shard][0] + row * h * w * 3)
        np.fromfile(depth_path, np.uint16, h * w, offset=offsets[shard][1] + row * h * w * 2)

    return lambda: _rate(read, order)


def packed_read(folder: str, n: int = 1000, seed: int = 0) -> Callable[[], dict]:
    """A pass of `PackedRGBD` items (no augmentation): copied out of the maps, depth in metres and a mask."""
    data = PackedRGBD(folder)
    order = _sample(data.frames, n, seed)
    return lambda: _rate(data.__getitem__, order)


def augmented(folder: str, img_size=(240, 320), n: int = 1000, batch: int = 32, seed: int = 0) -> Callable[[], dict]:
    """A pass of the full pre-training loader's work per frame on packed frames: random resized crop, flip and
    colour jitter to `img_size` (`pretrain.packed.PackedPretrainDataset`), collated into batches."""
    data = PackedPretrainDataset(folder, img_size)
    _sample(data.frames, n, seed)
    stream = iter(ShardedInfiniteSampler(len(data), seed))
    items = [next(stream) for _ in range(n)]
    batches = [items[i : i + batch] for i in range(0, n, batch)]
    return lambda: _rate(lambda b: default_collate([data[it] for it in b]), batches, n)


def best_of_rounds(passes: dict[str, Callable[[], dict]], rounds: int) -> dict[str, dict]:
    """Each pass run `rounds` times on one core, round by round (interleaved, so a neighbour's burst slows a round
    of every measurement, not all rounds of one). Each figure is its best round (`core.measure`'s convention);
    `rounds` keeps the per-round wall-clock figures."""
    runs = {name: [] for name in passes}
    with one_core():
        for _ in range(rounds):
            for name, run in passes.items():
                runs[name].append(run())
    return {
        name: {
            "frames_per_s": max(r["frames_per_s"] for r in got),
            "frames_per_s_cpu": max(r["frames_per_s_cpu"] for r in got),
            "rounds": [r["frames_per_s"] for r in got],
        }
        for name, got in runs.items()
    }


ROUNDS = 3


def report(folder: str, img_size=(240, 320), n: int = 1000, gpu_check: str = GPU_CHECK, rounds: int = ROUNDS) -> dict:
    """All three rates (best of `rounds`), the packed reader's fraction of the plain read (target >= 0.5), the
    augmented rate per core (target >= 1500 frames/s at 240x320) and the cores one GPU needs at that rate
    (`gpu_consumption`)."""
    got = best_of_rounds(
        {
            "plain_read": plain_read(folder, n),
            "packed_read": packed_read(folder, n),
            "augmented": augmented(folder, img_size, n),
        },
        rounds,
    )
    gpu = gpu_consumption(gpu_check)
    return {
        **got,
        "packed_vs_plain_cpu": got["packed_read"]["frames_per_s_cpu"] / got["plain_read"]["frames_per_s_cpu"],
        **gpu,
        "cores_per_gpu": cores_needed(gpu["gpu_frames_per_s"], got["augmented"]["frames_per_s_cpu"]),
    }


PACKED_SIZE = {False: (300, 400), True: (72, 96)}  # stored frame size (datasets.packed.DEFAULT_SIZE at full)
PACKED_IMG = {False: (240, 320), True: (48, 64)}  # the pre-training input size the loader augments to
PACKED_FRAMES = {False: 256, True: 8}  # pack rows, the raw frames repeated to fill them


def measure_packed(workdir, tiny=False, gpu_check: str = GPU_CHECK):
    """The packed pre-training loader (`report`) on a pack of the synthetic frames, one core: the packed reader
    against a plain read of the same bytes, the augmented loader's frames/s, and the cores one GPU needs at that
    rate (the GPU's frames/s from the `gpu_check` report when there is one). The raw frames are repeated to fill
    the pack: rows are read, not decoded."""
    from datasets.packed import pack
    from datasets.prepare.scannet import ScanNetOptions, prepare
    from datasets.scannet import load_frames

    prepared = os.path.join(workdir, "packed_source")
    with redirect_stdout(io.StringIO()):
        res = prepare(
            ScanNetOptions(raw=ensure_raw(workdir, tiny), out=prepared, frame_skip=1, workers=1, prefix="synthetic")
        )
    if res["errors"]:
        raise RuntimeError(f"prepare reported errors: {res['errors'][:3]}")
    frames = load_frames(prepared, "train", "rgbd") + load_frames(prepared, "val", "rgbd")
    rows = PACKED_FRAMES[tiny]
    folder = os.path.join(workdir, "packed")
    packed = pack([frames[i % len(frames)] for i in range(rows)], folder, PACKED_SIZE[tiny])
    if packed["errors"]:
        raise RuntimeError(f"pack reported errors: {packed['errors'][:3]}")
    reset_peak_memory(CPU)
    n = rows if tiny else 1000
    got = report(folder, PACKED_IMG[tiny], n=n, gpu_check=gpu_check)
    shutil.rmtree(folder, ignore_errors=True)
    settings = common_settings(tiny) | dict(
        pack_frames=rows,
        source_frames=len(frames),
        stored_size=list(PACKED_SIZE[tiny]),
        img_size=list(PACKED_IMG[tiny]),
        frames_timed=n,
        threads=1,
        rounds=ROUNDS,
        figure="best round, rounds interleaved",
    )
    plain, read, loader = got["plain_read"], got["packed_read"], got["augmented"]
    mem = memory(CPU)
    return [
        {
            "name": "packed_read",
            "value": read["frames_per_s"],
            "unit": "frames/s/core",
            "limit": plain["frames_per_s"],
            "ratio": read["frames_per_s"] / plain["frames_per_s"],
            "value_cpu": read["frames_per_s_cpu"],
            "ratio_cpu": got["packed_vs_plain_cpu"],
            "settings": settings | {"limit": "np.fromfile of the same bytes"} | spread(read["rounds"], plain["rounds"]),
            **mem,
        },
        {
            "name": "packed_loader",
            "value": loader["frames_per_s"],
            "unit": "frames/s/core",
            "limit": None,
            "ratio": None,
            "value_cpu": loader["frames_per_s_cpu"],
            "settings": settings
            | {"work": "random resized crop, flip, colour jitter, collate (batch 32)"}
            | spread(loader["rounds"]),
            **mem,
        },
        {
            "name": "packed_cores_per_gpu",
            "value": float(got["cores_per_gpu"]),
            "unit": "cores",
            "limit": None,
            "ratio": None,
            "gpu_rate_from": got["gpu_rate_from"],
            "settings": settings | _gpu_settings(got) | {"per_core_from": "packed_loader value_cpu"},
            **mem,
        },
    ]


def _gpu_settings(got: dict) -> dict:
    """What the GPU's frames/s of `packed_cores_per_gpu` came from: the gpu-check stage, or the estimate's terms."""
    if got["gpu_rate_from"] == "gpu_check":
        return {"gpu_frames_per_s": got["gpu_frames_per_s"], "gpu_check": got["gpu_check"]}
    return {
        "gpu_frames_per_s": got["gpu_frames_per_s"],
        "gpu_gmac_per_frame": VIT_B_MASK3D_GMAC,
        "gpu_peak_tflops": H100_BF16_TFLOPS,
        "gpu_mfu": ESTIMATE_MFU,
    }
