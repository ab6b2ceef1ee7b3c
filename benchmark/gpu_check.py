"""`make gpu-check`: the stages of pretrain/gpu_stages.py and benchmark/gpu_stages.py in order on a small
synthetic tree, one line each, stopping at the first failure, and the JSON report (device, versions, and per
stage status, seconds, peak memory and facts). tools/gpu_check.py is the command line. What the stages print
themselves (training logs, COCO's evaluation tables) goes to a log beside the JSON, not the console.

Runs go to a temporary folder, results store included, so no record of them reaches a real store.
"""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

SHOWN = ("tflops", "mfu", "images_per_s", "kernel", "backbone", "iterations")
SHOWN_METRICS = ("sem_seg/mIoU", "bbox/AP", "segm/AP")


def versions() -> dict:
    import detectron2
    import timm
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
        "detectron2": detectron2.__version__,
        "timm": timm.__version__,
    }


def make_data(root: Path, smoke: bool) -> None:
    """A small synthetic tree (4 scenes: 3 train, 1 val) at the benchmark's 480x640, or 96x128 for smoke."""
    from datasets.prepare.scannet import ScanNetOptions, prepare
    from datasets.synthetic.export import generate, is_complete

    raw = root / "synthetic_raw"
    settings = (4, 4, 0, 96, 128) if smoke else (4, 8, 0, 480, 640)  # scenes, frames, seed, height, width
    if not is_complete(raw, *settings):
        generate(raw, *settings, workers=min(4, os.cpu_count() or 1))
    res = prepare(
        ScanNetOptions(
            raw=str(raw), out=str(root / "synthetic"), frame_skip=1, workers=max(1, (os.cpu_count() or 1) - 1)
        )
    )
    if res["errors"]:
        raise RuntimeError(f"preparing the synthetic tree failed: {res['errors'][0]}")


def peak_memory_mb(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the process so far (Linux: KiB)


def stages(device, smoke: bool, work: Path, state: dict):
    """(name, callable) in order; later stages read what earlier ones put in `state`."""
    from benchmark import gpu_stages as bench
    from pretrain import gpu_stages as pre

    def matmul():
        state["matmul"] = pre.matmul_rate(device, smoke)
        return state["matmul"]

    return [
        ("matmul_bf16", matmul),
        ("pretrain_eager", lambda: pre.train_steps(device, smoke, False, state["matmul"]["tflops"])),
        ("pretrain_compile", lambda: pre.train_steps(device, smoke, True, state["matmul"]["tflops"])),
        ("sdpa_kernel", lambda: pre.sdpa_kernels(device, smoke)),
        (
            "checkpoint_resume_export",
            lambda: pre.resume_and_export(work / "pretrain", "synthetic_rgbd_train", device, smoke),
        ),
        ("bench_semseg", lambda: bench.finetune_and_evaluate("semseg", work / "semseg", device.type, smoke)),
        ("bench_insseg", lambda: bench.finetune_and_evaluate("insseg", work / "insseg", device.type, smoke)),
    ]


def summary(facts: dict) -> str:
    shown = [
        f"{k} {facts[k]:.3g}" if isinstance(facts[k], float) else f"{k} {facts[k]}"
        for k in SHOWN
        if facts.get(k) is not None
    ]
    metrics = facts.get("metrics") or {}
    shown += [f"{m} {metrics[m]:.2f} %" for m in SHOWN_METRICS if isinstance(metrics.get(m), float)]
    return "; ".join(shown)


def run(smoke: bool, out: Path, data: Path | None, keep: bool) -> int:
    """The whole check; the exit status (1: no GPU without `smoke`, or a stage failed)."""
    import torch

    from core.io import write_json
    from core.provenance import git_commit, utc_now

    if not smoke and not torch.cuda.is_available():
        print(
            "gpu-check: no CUDA device visible; run it on a GPU machine, or --smoke for the CPU walk-through",
            file=sys.stderr,
        )
        return 1
    device = torch.device("cpu" if smoke else "cuda")
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    os.environ["MASK3D_RESULTS"] = str(work / "runs.jsonl")  # no record of these runs reaches a real store
    report = {
        "date": utc_now(),
        "git_commit": git_commit(),
        "smoke": smoke,
        "versions": versions(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "stages": [],
        "ok": False,
    }
    total = time.perf_counter()
    failed = None
    log_path = out.with_suffix(".log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as log:
        try:
            from datasets.builtin import register_all

            root = data or work / "data"
            start = time.perf_counter()
            if data is None:
                with contextlib.redirect_stdout(log):
                    make_data(root, smoke)
            os.environ["MASK3D_DATA"] = str(root)
            register_all(root)
            print(f"gpu-check: data {root} ready in {time.perf_counter() - start:.0f} s", flush=True)
            state: dict = {}
            for name, stage in stages(device, smoke, work, state):
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                start = time.perf_counter()
                entry = {"name": name, "status": "ok"}
                print(f"===== gpu-check stage {name}", file=log, flush=True)
                try:
                    with contextlib.redirect_stdout(log):
                        entry["facts"] = stage()
                except Exception as e:  # noqa: BLE001 - any failure ends the check, named and kept in the JSON
                    entry.update(status="failed", error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc())
                    failed = entry
                entry.update(seconds=time.perf_counter() - start, peak_memory_mb=peak_memory_mb(device))
                report["stages"].append(entry)
                detail = entry["error"] if failed else summary(entry["facts"])
                print(
                    f"gpu-check: {name:26s} {entry['status']:6s} {entry['seconds']:6.1f} s "
                    f"{entry['peak_memory_mb']:8.0f} MiB  {detail}",
                    flush=True,
                )
                if failed:
                    break
        finally:
            report.update(ok=failed is None and len(report["stages"]) > 0, seconds=time.perf_counter() - total)
            write_json(out, report)
            if keep:
                print(f"gpu-check: runs kept in {work}")
            else:
                shutil.rmtree(work, ignore_errors=True)
    if failed:
        print(
            f"gpu-check: FAILED at stage {failed['name']}: {failed['error']} (details in {out} and {log_path})",
            file=sys.stderr,
        )
        return 1
    print(
        f"gpu-check: all {len(report['stages'])} stages passed in {report['seconds']:.0f} s -> {out} "
        f"(the stages' own output: {log_path})"
    )
    return 0
