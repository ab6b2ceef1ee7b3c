"""`make speed`: frames/s of making data, the synthetic generator and the ScanNet preparation, each one
whole call timed once (they write files; a repeating timer would time the reruns), in wall and CPU time."""

from __future__ import annotations

import io
import os
import shutil
from contextlib import redirect_stdout
from functools import partial

import torch

from core.measure import common_settings, memory, reset_peak_memory, spread, timed

RAW_HW = {False: (480, 640), True: (96, 128)}
RAW_SIZE = {False: (2, 12), True: (2, 2)}  # (scenes, frames per scene)
CPU = torch.device("cpu")


def raw_dir(workdir: str) -> str:
    return os.path.join(workdir, "synthetic_raw")


def ensure_raw(workdir: str, tiny: bool) -> str:
    """The ScanNet-format raw tree the data measurements read (generated, untimed, if absent)."""
    raw = raw_dir(workdir)
    if not os.path.isfile(os.path.join(raw, "synthetic.json")):
        _generate(raw, tiny, progress=False)
    return raw


def _generate(out, tiny, progress):
    from datasets.synthetic.export import generate

    scenes, frames = RAW_SIZE[tiny]
    return generate(
        out,
        scenes,
        frames,
        seed=0,
        height=RAW_HW[tiny][0],
        width=RAW_HW[tiny][1],
        workers=1,
        overwrite=True,
        progress=progress,
    )


def measure_synthetic(workdir, tiny=False):
    """Frames/s of `datasets.synthetic.export.generate` in one process (render + encode + write); the first one makes
    the raw tree the other data measurements read."""
    import cv2

    cv2.setNumThreads(1)
    out = raw_dir(workdir)
    keep = not os.path.exists(out)
    out = out if keep else f"{out}_{os.getpid()}"
    reset_peak_memory(CPU)
    stats, seconds, cpu = timed(lambda: _generate(out, tiny, progress=not tiny))
    if not keep:
        shutil.rmtree(out, ignore_errors=True)
    (scenes, frames), (h, w) = RAW_SIZE[tiny], RAW_HW[tiny]
    settings = common_settings(tiny) | dict(
        scenes=scenes,
        frames_per_scene=frames,
        height=h,
        width=w,
        workers=1,
        frames=stats["frames"],
        seconds=round(seconds, 3),
    )
    return [
        {
            "name": "synthetic_generate",
            "value": stats["frames"] / seconds,
            "unit": "frames/s",
            "limit": None,
            "ratio": None,
            "value_cpu": stats["frames"] / cpu,
            "settings": settings,
            **memory(CPU),
        }
    ]


def measure_prepare(workdir, tiny=False):
    """Frames/s per core of `datasets.prepare.scannet.prepare` (1 worker, every frame) on the synthetic raw tree:
    decode, label mapping, instance RLE, writes, index; the whole call is timed."""
    from datasets.prepare.scannet import ScanNetOptions, prepare

    raw = ensure_raw(workdir, tiny)
    reset_peak_memory(CPU)
    rates, cpu_rates, frames = [], [], 0
    for r in range(1 if tiny else 3):
        out = os.path.join(workdir, f"prepared_{os.getpid()}_{r}")
        opts = ScanNetOptions(raw=raw, out=out, frame_skip=1, workers=1, prefix="synthetic")
        with redirect_stdout(io.StringIO()):
            res, seconds, cpu = timed(partial(prepare, opts))
        shutil.rmtree(out, ignore_errors=True)
        if res["errors"]:
            raise RuntimeError(f"prepare reported errors: {res['errors'][:3]}")
        frames = res["converted"]
        rates.append(frames / seconds)
        cpu_rates.append(frames / cpu)
    settings = (
        common_settings(tiny)
        | spread(rates)
        | dict(
            frames=frames,
            rounds=len(rates),
            height=RAW_HW[tiny][0],
            width=RAW_HW[tiny][1],
            workers=1,
            resolution="as raw (depth size)",
        )
    )
    return [
        {
            "name": "prepare_scannet",
            "value": max(rates),
            "unit": "frames/s/core",
            "limit": None,
            "ratio": None,
            "value_cpu": max(cpu_rates),
            "settings": settings,
            **memory(CPU),
        }
    ]
