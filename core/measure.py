"""Rates measured against a limit in the same process, and the memory a measurement used.

A rate and its limit are timed round by round, interleaved, with `torch.utils.benchmark.Timer`. Neighbours
on a shared machine only ever slow a round down, so a figure is the best round and `ratio = value / limit`;
the per-round figures stay in the settings, so a disturbed round shows. Beside the wall clock every figure
also exists per second of this process's CPU time (time spent descheduled does not count): a cross-check
that stays put when the machine is busy.
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.benchmark import Timer
from torch.utils.benchmark.utils.timer import timer as synchronized_clock


@dataclass(frozen=True)
class Timing:
    calls: int
    wall_s: float  # per call
    cpu_s: float  # per call, this process's CPU time over all its threads


class _CpuNotingClock:
    """The clock `Timer` reads (wall time, after synchronising the accelerator), noting this process's CPU
    time at every reading. `timeit` reads the clock once before and once after each block, so the last two
    readings per measured block give the CPU time of exactly those blocks."""

    def __init__(self):
        self.cpu: list[float] = []

    def __call__(self) -> float:
        now = synchronized_clock()
        self.cpu.append(time.process_time())
        return now


def time_calls(fn: Callable[[], object], min_run_time: float) -> Timing:
    """`fn()` timed by `Timer.blocked_autorange` at the current torch thread count (its warm-up, which sizes
    the blocks, is not counted)."""
    clock = _CpuNotingClock()
    m = Timer("fn()", globals={"fn": fn}, timer=clock, num_threads=torch.get_num_threads()).blocked_autorange(
        min_run_time=min_run_time
    )
    blocks = len(m.raw_times)
    marks = clock.cpu[-2 * blocks :]
    cpu = sum(end - start for start, end in zip(marks[::2], marks[1::2], strict=False))
    calls = blocks * m.number_per_run
    return Timing(calls, sum(m.raw_times) / calls, cpu / calls)


def timed(fn: Callable[[], object]) -> tuple[object, float, float]:
    """(result, wall seconds, CPU seconds) of one call of a long, side-effecting job (a Timer would repeat it)."""
    t0, c0 = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - t0, time.process_time() - c0


def best(rates: list[float], limits: list[float]) -> tuple[float, float, float]:
    """(value, limit, ratio): the best round of each, and their ratio."""
    value, limit = max(rates), max(limits)
    return value, limit, value / limit


def spread(rates: list[float], limits: list[float] | None = None) -> dict:
    """Per-round figures and medians for the settings."""
    out = {"rates_per_round": [round(r, 3) for r in rates], "median_rate": round(statistics.median(rates), 3)}
    if limits:
        out["limits_per_round"] = [round(x, 3) for x in limits]
        out["median_ratio"] = round(statistics.median([r / x for r, x in zip(rates, limits, strict=False)]), 4)
    return out


def common_settings(tiny: bool) -> dict:
    """What every measurement records about the machine and the threading it ran with."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "tiny": bool(tiny),
        "cpu_count": os.cpu_count(),
        "loadavg_start": load,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "default"),
    }


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return platform.processor() or platform.machine()


def require(device: str) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("no CUDA device")
    return dev


# ----------------------------------------------------------------------------------------- the matmul limit
def matmul(device: torch.device, tiny: bool) -> tuple[Callable[[], object], int, torch.dtype]:
    """A square matmul sized so the device runs at its peak (fp32 2048 on CPU, bf16 8192 on GPU): the call,
    its size `n` (2 n^3 FLOPs) and its dtype."""
    if device.type == "cuda":
        n, dtype = (1024 if tiny else 8192), torch.bfloat16
    else:
        n, dtype = (256 if tiny else 2048), torch.float32
    g = torch.Generator(device=device).manual_seed(0)
    a, b = (torch.randn(n, n, device=device, dtype=dtype, generator=g) for _ in range(2))
    c = torch.empty(n, n, device=device, dtype=dtype)
    return (lambda: torch.mm(a, b, out=c)), n, dtype


def measure_matmul(device: str = "cpu", tiny: bool = False) -> list[dict]:
    """FLOP/s of the matmul alone (the rate every training step is compared with)."""
    dev = require(device)
    reset_peak_memory(dev)
    mm, n, dtype = matmul(dev, tiny)
    timings = [time_calls(mm, 0.05 if tiny else 0.5) for _ in range(2 if tiny else 5)]
    rates = [2 * n**3 / t.wall_s / 1e9 for t in timings]
    settings = common_settings(tiny) | spread(rates)
    settings.update(
        n=n,
        dtype=str(dtype).removeprefix("torch."),
        calls_per_round=[t.calls for t in timings],
        threads=torch.get_num_threads(),
        device_name=device_name(dev),
    )
    return [
        {
            "name": f"matmul_{dev.type}_{'bf16' if dev.type == 'cuda' else 'fp32'}",
            "value": max(rates),
            "unit": "GFLOP/s",
            "limit": None,
            "ratio": None,
            "settings": settings,
            **memory(dev),
        }
    ]


# ----------------------------------------------------------------------------------------- memory
def reset_peak_memory(device: torch.device) -> None:
    """Starts a measurement's own peak: CUDA's allocator statistics, or on Linux VmHWM (reset to the current
    RSS, for measurements sharing one process)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def memory(device: torch.device) -> dict:
    """The peak since `reset_peak_memory`: `cuda_max_allocated_mb` on a GPU, else `peak_rss_mb`."""
    if device.type == "cuda":
        return {"cuda_max_allocated_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1)}
    kb = _status_kb("VmHWM")
    if kb is None:
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform == "darwin" else 1)
    return {"peak_rss_mb": round(kb / 1024, 1)}


def children_peak_rss_mb() -> float:
    """Largest peak RSS among this process's finished (waited-for) children, e.g. DataLoader workers."""
    kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(kb / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def process_cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of another process (Linux /proc), or None."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _status_kb(key: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return float(line.split()[1])
    except OSError:
        pass
    return None
