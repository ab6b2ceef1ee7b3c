"""Pre-training stages of `make gpu-check` (benchmark/gpu_check.py): the bf16 matmul rate the MFU is measured
against, training steps of the paper's model at its per-GPU batch (eager and `torch.compile`), which
scaled-dot-product-attention kernel ran, and checkpoint -> resume -> export through `python -m pretrain`.

Each stage returns a dict of facts for `results/gpu_check.json`; a failure raises. `smoke` shrinks
everything to toy sizes that run on a CPU in seconds (the compile stage then uses dynamo's `eager` backend:
graph capture without Inductor's minutes of code generation).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from detectron2.config import LazyConfig, instantiate
from torch.utils.flop_counter import FlopCounterMode

from . import train as pretrain_train
from .data import to_model_inputs
from .model import MaskedRGBD

BASE_CONFIG = "pretrain/configs/base.py"
SMOKE_MODEL = dict(
    embed_dim=32, depth=2, num_heads=2, decoder_dim=32, decoder_depth=1, decoder_heads=2, img_size=(96, 128)
)
SMOKE_BATCH = 2
MFU_TARGET = 0.45  # fraction of the same run's bf16 matmul rate


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_rate(device: torch.device, smoke: bool) -> dict:
    """Best FLOP/s of a square bf16 matmul over 5 rounds: the machine's attainable rate in this run."""
    n = 256 if smoke else 8192
    a, b = (torch.randn(n, n, device=device, dtype=torch.bfloat16) for _ in range(2))
    reps = 2 if smoke else 50
    (a @ b).sum().item()
    best = 0.0
    for _ in range(5):
        sync(device)
        start = time.perf_counter()
        for _ in range(reps):
            c = a @ b
        sync(device)
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - start))
    del c
    return {"n": n, "dtype": "bfloat16", "tflops": best / 1e12}


def paper_model_and_batch(smoke: bool) -> tuple[MaskedRGBD, int]:
    """ViT-B `mask3d` of pretrain/configs/base.py and its per-GPU batch (toy sizes for `smoke`)."""
    cfg = LazyConfig.load(BASE_CONFIG)
    cfg.model.objective = "mask3d"
    if smoke:
        cfg.model.update(SMOKE_MODEL)
        return instantiate(cfg.model), SMOKE_BATCH
    return instantiate(cfg.model), int(cfg.train.batch_size)


def fake_batch(model: MaskedRGBD, batch: int, device: torch.device) -> dict:
    """Model inputs on `device` from a loader-style batch (uint8 RGB, uint16 mm), converted by
    `to_model_inputs` there as in training, so the check runs the device side of the uint8 path too."""
    h, w = model.img_size
    g = torch.Generator().manual_seed(0)
    depth_mm = torch.randint(500, 5001, (batch, h, w), generator=g, dtype=torch.int32).to(torch.uint16)
    rgb = torch.randint(0, 256, (batch, h, w, 3), generator=g, dtype=torch.uint8)
    return to_model_inputs({"rgb": rgb, "depth_mm": depth_mm}, device)


def step_flops(model: MaskedRGBD, data: dict, amp: bool) -> float:
    """FLOPs of one training step (forward + backward), counted by PyTorch's FlopCounterMode."""
    with FlopCounterMode(display=False) as counter:
        _step(model, data, None, amp)
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def _step(net, data, optimizer, amp: bool):
    device_type = data["image"].device.type
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=amp):
        out = net(data["image"], data["depth"], data["valid"], generator=torch.Generator().manual_seed(1))
    out["loss"].float().backward()
    if optimizer is not None:
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return out["loss"].detach()


def train_steps(device: torch.device, smoke: bool, compile: bool, matmul_tflops: float) -> dict:
    """Timed bf16 training steps of the paper's model; MFU = model FLOP/s over the same run's matmul rate."""
    torch.manual_seed(0)
    model, batch = paper_model_and_batch(smoke)
    model.to(device).train()
    data = fake_batch(model, batch, device)
    amp = device.type == "cuda"
    flops = step_flops(model, data, amp)
    net = torch.compile(model, backend="eager" if smoke else "inductor") if compile else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    warmup, timed = (1, 2) if smoke else (5 if not compile else 8, 20)
    start = time.perf_counter()
    for _ in range(warmup):
        loss = _step(net, data, optimizer, amp)
    sync(device)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(timed):
        loss = _step(net, data, optimizer, amp)
    sync(device)
    step_s = (time.perf_counter() - start) / timed
    if not torch.isfinite(loss):
        raise FloatingPointError(f"non-finite loss {float(loss)} in the timed steps")
    tflops = flops / step_s / 1e12
    mfu = tflops / matmul_tflops if matmul_tflops else None
    return {
        "backbone": model.backbone_name(),
        "img_size": list(model.img_size),
        "batch": batch,
        "dtype": "bfloat16" if amp else "float32",
        "compile": compile,
        "warmup_s": first,
        "step_s": step_s,
        "images_per_s": batch / step_s,
        "step_tflop": flops / 1e12,
        "tflops": tflops,
        "mfu": mfu,
        "mfu_target": MFU_TARGET,
        "mfu_target_met": None if smoke or mfu is None else mfu >= MFU_TARGET,
    }


def sdpa_kernels(device: torch.device, smoke: bool) -> dict:
    """The attention kernels one bf16 forward ran, from the profiler (flash, memory-efficient, cuDNN or math)."""
    model, batch = paper_model_and_batch(smoke)
    model.to(device).eval()
    data = fake_batch(model, min(batch, 8), device)
    activities = [torch.profiler.ProfilerActivity.CPU] + (
        [torch.profiler.ProfilerActivity.CUDA] if device.type == "cuda" else []
    )
    with (
        torch.no_grad(),
        torch.profiler.profile(activities=activities) as prof,
        torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"),
    ):
        model(data["image"], data["depth"], data["valid"], generator=torch.Generator().manual_seed(1))
    names = sorted(
        {
            e.key
            for e in prof.key_averages()
            if "scaled_dot_product" in e.key.lower()
            or any(k in e.key.lower() for k in ("flash", "fmha", "efficient_attention", "cudnn_attn"))
        }
    )
    if not names:
        raise RuntimeError("no scaled-dot-product-attention op in the profile: the model no longer uses SDPA")
    kind = next((k for k in ("flash", "efficient", "cudnn") if any(k in n.lower() for n in names)), "math")
    return {"kernel": kind, "ops": names}


def resume_and_export(out: Path, data_names: str, device: torch.device, smoke: bool) -> dict:
    """`python -m pretrain` on `device`: 2 iterations, the run made unfinished again, `--resume` to 4, export."""
    model = {f"model.{k}": v for k, v in SMOKE_MODEL.items()} if smoke else {"model.img_size": (240, 320)}
    settings = {
        **model,
        "data.names": data_names,
        "data.workers": 0 if smoke else 2,
        "train.batch_size": 2 if smoke else 8,
        "train.warmup_iters": 1,
        "train.checkpoint_period": 2,
        "train.vis_period": 0,
        "train.log_period": 1,
        "train.device": device.type,
        "train.output_dir": str(out),
    }

    def run(iters: int, resume: bool) -> None:
        argv = [
            "--config",
            BASE_CONFIG,
            *(["--resume"] if resume else []),
            *[f"{k}={v}" for k, v in {**settings, "train.max_iter": iters}.items()],
        ]
        if pretrain_train.main(argv) != 0:
            raise RuntimeError(f"python -m pretrain {' '.join(argv)} failed (see {out / 'log.txt'})")

    run(2, resume=False)
    for name in ("finished.json", "metrics.json", "backbone.pth"):  # as if stopped after the checkpoint of 2
        (out / name).unlink()
    run(4, resume=True)
    log = (out / "log.txt").read_text()
    if "resumed from" not in log or "at iteration 2" not in log:
        raise RuntimeError(f"the second run did not resume from iteration 2 (see {out / 'log.txt'})")
    exported = torch.load(out / "backbone.pth", map_location="cpu", weights_only=True)
    if exported["meta"]["iteration"] != 4:
        raise RuntimeError(f"the export holds iteration {exported['meta']['iteration']}, not 4")
    metrics = json.loads((out / "metrics.json").read_text())
    return {
        "iterations": metrics["iterations"],
        "export_tensors": len(exported["model"]),
        "depth_abs_rel": metrics.get("depth_abs_rel"),
        "output": str(out),
    }
