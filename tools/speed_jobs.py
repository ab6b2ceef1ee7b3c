"""The measurements behind `python -m tools.speed`, run inside a worker process (one per measurement in a
full run, so each one's peak memory is its own).

Every function returns a list of rows `{name, value, unit, limit, ratio, settings, ...}`; `tools.speed`
adds targets, checks them, prints the table and writes the JSON. A rate and the limit it is compared with
are always measured in the same process, interleaved round by round. Neighbours on a shared machine only
ever slow a round down, so `value` and `limit` are the best round of each and `ratio = value / limit`;
the per-round figures and medians are kept in `settings`. On CPU, `value_cpu` / `ratio_cpu` give the same
figures per second of this process's CPU time (time spent descheduled does not count): a cross-check
that stays put when the machine is busy.

FLOPs: fvcore counts one multiply-add as one "flop"; we report FLOPs = 2 x that, and a training step
(forward + backward) as 3 x the forward (the usual convention of MFU figures).
"""
from __future__ import annotations

import glob
import os
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Dense bf16 peak (no sparsity) from the vendors' datasheets, for MFU against the datasheet as well.
DATASHEET_BF16_TFLOPS = {"H100 PCIe": 756.0, "H100 NVL": 835.0, "H100": 989.4,
                         "H200": 989.4, "A100": 312.0, "L40S": 362.05, "A10G": 70.0}


# ----------------------------------------------------------------------------------------- memory
def reset_peak_rss() -> bool:
    """Linux: resets VmHWM to the current RSS (used when several measurements share one process)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _status_kb(key: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def rss_mb() -> float | None:
    kb = _status_kb("VmRSS")
    return None if kb is None else round(kb / 1024, 1)


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM, which `reset_peak_rss` can reset; else getrusage's lifetime peak)."""
    kb = _status_kb("VmHWM")
    if kb is None:
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform == "darwin" else 1)
    return round(kb / 1024, 1)


def children_peak_rss_mb() -> float:
    """Largest peak RSS among this process's finished (waited-for) children, e.g. DataLoader workers."""
    kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(kb / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def _plain(x):
    """OmegaConf containers from a LazyConfig as plain Python (JSON-able) values."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    return OmegaConf.to_container(x) if isinstance(x, (DictConfig, ListConfig)) else x


def _process_cpu_s(pid) -> float | None:
    """User + system CPU seconds of another process (Linux /proc), or None."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _median(xs):
    return float(statistics.median(xs)) if xs else None


def _rounds_summary(rates, limits):
    """(value, limit, ratio) from per-round rates: the best round of each, since neighbours on a shared
    machine only ever slow a round down; ratio = value / limit."""
    value, limit = max(rates), max(limits)
    return value, limit, value / limit


def _spread(rates, limits=None):
    """Per-round figures for the settings, so a disturbed round shows."""
    out = {"rates_per_round": [round(r, 3) for r in rates], "median_rate": round(_median(rates), 3)}
    if limits:
        out["limits_per_round"] = [round(x, 3) for x in limits]
        out["median_ratio"] = round(_median([r / x for r, x in zip(rates, limits)]), 4)
    return out


def _load():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _common(tiny):
    return {"tiny": bool(tiny), "cpu_count": os.cpu_count(), "loadavg_start": _load(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "default")}


# ----------------------------------------------------------------------------------------- compute
def _sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _matmul_setup(device, tiny):
    """Operands of a square matmul sized so the device runs at its peak: fp32 2048 on CPU, bf16 8192 on GPU."""
    import torch

    if device.type == "cuda":
        n, dtype = (1024 if tiny else 8192), torch.bfloat16
    else:
        n, dtype = (256 if tiny else 2048), torch.float32
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=dtype, generator=g)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=g)
    c = torch.empty(n, n, device=device, dtype=dtype)
    return n, dtype, (lambda: torch.mm(a, b, out=c))


def _time_calls(fn, reps, device):
    return _time_calls_cpu(fn, reps, device)[0]


def _time_calls_cpu(fn, reps, device):
    """(wall seconds, process CPU seconds over all threads) per call."""
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(reps):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / reps, (time.process_time() - c0) / reps


def _calibrate(fn, device, target_s, max_reps=1000):
    """Repetitions of `fn` that take about `target_s` (at least one)."""
    per = _time_calls(fn, 1, device)
    return max(1, min(max_reps, int(target_s / max(per, 1e-6))))


def _device_name(device):
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return platform.processor() or platform.machine()


def _datasheet_peak(name):
    for key, tflops in DATASHEET_BF16_TFLOPS.items():
        if key in name:
            return tflops * 1e12
    return None


def measure_matmul(device="cpu", tiny=False):
    """FLOP/s of a large square matmul alone (the rate every step is compared with)."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("no CUDA device")
    settings = _common(tiny)
    n, dtype, mm = _matmul_setup(dev, tiny)
    mm()
    reps = _calibrate(mm, dev, 0.05 if tiny else 0.5)
    rates = [2 * n ** 3 / _time_calls(mm, reps, dev) for _ in range(2 if tiny else 5)]  # best one counts
    name = f"matmul_{dev.type}_{'bf16' if dtype == torch.bfloat16 else 'fp32'}"
    settings.update(n=n, dtype=str(dtype).replace("torch.", ""), reps_per_round=reps, rounds=len(rates),
                    best_gflops=round(max(rates) / 1e9, 2), threads=torch.get_num_threads(),
                    device_name=_device_name(dev))
    settings.update(_spread([r / 1e9 for r in rates]))
    row = {"name": name, "value": max(rates) / 1e9, "unit": "GFLOP/s", "limit": None, "ratio": None,
           "settings": settings}
    _add_memory(row, dev)
    return [row]


def _sdpa_flop_jit(inputs, outputs):
    """Multiply-adds of aten::scaled_dot_product_attention: Q K^T and attn V, (B, H, L, S) x (D + Dv)."""
    from fvcore.nn.jit_handles import get_shape

    q, k, v = (get_shape(x) for x in inputs[:3])
    batch = 1
    for d in q[:-2]:
        batch *= d
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


def count_forward_flops(module, inputs) -> tuple[float, dict]:
    """FLOPs (2 x fvcore's multiply-adds) of one forward, and the ops fvcore skipped (elementwise ones)."""
    from fvcore.nn import FlopCountAnalysis

    fca = FlopCountAnalysis(module, inputs).set_op_handle("aten::scaled_dot_product_attention", _sdpa_flop_jit)
    fca.unsupported_ops_warnings(False)
    fca.uncalled_modules_warnings(False)
    fca.tracer_warnings("none")
    total = 2.0 * fca.total()
    return total, {"by_operator_gflops": {k: round(2 * v / 1e9, 3) for k, v in fca.by_operator().items()},
                   "skipped_ops": sorted(fca.unsupported_ops())}


VIT_SIZES = {"vit_s": ("small", "vit_small_patch16_224"), "vit_b": ("base", "vit_base_patch16_224")}
TINY_VIT = dict(embed_dim=64, depth=2, num_heads=2)
TINY_DECODER = dict(decoder_dim=64, decoder_depth=1, decoder_heads=2)


def _pretrain_model(size, hw, tiny):
    """Our model exactly as `pretrain/configs/base.py` builds it (default objective, masking, decoder),
    with the encoder preset and image size of this measurement."""
    from detectron2.config import LazyConfig, instantiate

    cfg = LazyConfig.load(str(REPO / "pretrain" / "configs" / "base.py"))
    cfg.model.preset = VIT_SIZES[size][0]
    cfg.model.img_size = tuple(hw)
    if tiny:
        for k, v in {**TINY_VIT, **TINY_DECODER}.items():
            cfg.model[k] = v
    model = instantiate(cfg.model)
    keys = ("objective", "rgb_mask_ratio", "depth_mask_ratio", "decoder_dim", "decoder_depth", "depth_loss",
            "depth_norm")
    return model, {k: _plain(getattr(model, k, cfg.model.get(k))) for k in keys} | {
        "embed_dim": model.embed_dim, "depth": model.depth, "num_heads": model.num_heads,
        "amp_bf16": bool(cfg.train.amp)}


def _timm_model(size, hw, tiny):
    import timm

    kwargs = dict(pretrained=False, img_size=tuple(hw))
    if tiny:
        kwargs.update(TINY_VIT)
    model = timm.create_model(VIT_SIZES[size][1], **kwargs)
    return model, {"timm_model": VIT_SIZES[size][1], "embed_dim": model.embed_dim, "depth": len(model.blocks),
                   "fused_attn": bool(getattr(model.blocks[0].attn, "fused_attn", False))}


def _step_plan(device, size, tiny):
    """(batch, (H, W), steps per timed round, rounds, warm-up steps)."""
    if tiny:
        return 2, (64, 64), 1, 2, 1
    if device.type == "cuda":
        return (128 if size == "vit_s" else 64), (224, 224), 10, 8, 5
    return 8, (224, 224), 1, 3, 1


def measure_step(kind="mask3d", size="vit_s", device="cpu", tiny=False):
    """Model FLOP/s of one training step (forward + backward, no optimizer) against the matmul rate.

    `mask3d`: `pretrain.model.MaskedRGBD` with the defaults of pretrain/configs/base.py (RGB and depth
    masking, depth decoder, its loss), called as pretrain/train.py calls it. `timm`: timm's supervised
    ViT on all tokens with a cross-entropy loss (the peer figure)."""
    import torch
    import torch.nn.functional as F

    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("no CUDA device")
    cuda = dev.type == "cuda"
    torch.manual_seed(0)
    batch, hw, per_round, rounds, warmup = _step_plan(dev, size, tiny)
    settings = _common(tiny)
    g = torch.Generator().manual_seed(0)
    if kind == "mask3d":
        model, info = _pretrain_model(size, hw, tiny)
        image = torch.randint(0, 256, (batch, 3, *hw), generator=g).float()
        depth = torch.rand(batch, 1, *hw, generator=g) * 4.5 + 0.5
        depth[:, :, : hw[0] // 8] = 0  # an invalid band, as real sensors have
        inputs = (image, depth, depth > 0)

        class LossOnly(torch.nn.Module):  # fvcore traces tensors in, tensor out
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, image, depth, valid):
                return self.m(image, depth, valid, generator=torch.Generator().manual_seed(0))["loss"]

        counted = LossOnly(model)
        seeds = iter(range(10 ** 9))

        def forward(m, x):  # pretrain/train.py: a fresh CPU generator per step decides the masks
            return m(*x, generator=torch.Generator().manual_seed(next(seeds)))["loss"].float()
    elif kind == "timm":
        model, info = _timm_model(size, hw, tiny)
        inputs = (torch.randn(batch, 3, *hw, generator=g),)
        labels = torch.randint(0, model.num_classes, (batch,), generator=g)
        counted = model

        def forward(m, x):
            return F.cross_entropy(m(*x).float(), labels_dev)
    else:
        raise ValueError(f"unknown step kind {kind!r}")

    # FLOPs of the forward at batch 2 on the CPU in fp32 (linear in the batch), scaled to the batch.
    model.train()
    count_in = tuple(t[:2] for t in inputs)
    fwd_flops_2, flop_info = count_forward_flops(counted, count_in)
    fwd_flops_per_image = fwd_flops_2 / count_in[0].shape[0]
    step_flops = 3 * fwd_flops_per_image * batch

    model.to(dev)
    inputs = tuple(t.to(dev) for t in inputs)
    if kind == "timm":
        labels_dev = labels.to(dev)

    def step():
        model.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
            loss = forward(model, inputs)
        loss.backward()

    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)
    else:
        reset_peak_rss()
    for _ in range(warmup):
        step_s = _time_calls(step, 1, dev)  # the last one sizes the matmul bursts
    memory = {"cuda_max_allocated_mb": round(torch.cuda.max_memory_allocated(dev) / 2 ** 20, 1)} if cuda else \
        {"peak_rss_mb": peak_rss_mb()}  # the step's own peak: the matmul operands do not exist yet

    n, dtype, mm = _matmul_setup(dev, tiny)
    mm()
    mm_reps = _calibrate(mm, dev, min(1.0, max(0.05, step_s * per_round)))

    def burst():
        wall, cpu = _time_calls_cpu(mm, mm_reps, dev)
        mm_rates.append(2 * n ** 3 / wall)
        mm_cpu_rates.append(2 * n ** 3 / cpu)

    # Matmul bursts bracket every round of steps (one more burst than rounds).
    step_rates, step_cpu_rates, mm_rates, mm_cpu_rates = [], [], [], []
    burst()
    for _ in range(rounds):
        step_wall, step_cpu = _time_calls_cpu(step, per_round, dev)
        step_rates.append(step_flops / step_wall)
        step_cpu_rates.append(step_flops / step_cpu)
        burst()
    value, limit, ratio = _rounds_summary(step_rates, mm_rates)
    ratio_cpu = max(step_cpu_rates) / max(mm_cpu_rates)
    name = f"step_{kind}_{size}_{dev.type}"
    settings.update(info, batch=batch, img_size=list(hw), dtype="bf16-autocast" if cuda else "fp32",
                    rounds=rounds, steps_per_round=per_round, warmup_steps=warmup,
                    forward_gflops_per_image=round(fwd_flops_per_image / 1e9, 3),
                    step_gflops=round(step_flops / 1e9, 2), images_per_s=round(value / step_flops * batch, 2),
                    step_ms=round(1e3 * step_flops / value, 1),
                    step_gflops_per_round=[round(r / 1e9, 2) for r in step_rates],
                    matmul_gflops_per_burst=[round(r / 1e9, 2) for r in mm_rates],
                    matmul={"n": n, "dtype": str(dtype).replace("torch.", ""), "reps_per_round": mm_reps},
                    threads=torch.get_num_threads(), device_name=_device_name(dev), flops=flop_info)
    if cuda:
        peak = _datasheet_peak(settings["device_name"])
        settings["mfu_vs_datasheet"] = round(value / peak, 4) if peak else None
    row = {"name": name, "value": value / 1e9, "unit": "GFLOP/s", "limit": limit / 1e9, "ratio": ratio,
           "settings": settings, **memory}
    if not cuda:  # the same ratio in FLOPs per second of process CPU time (see tools.speed)
        row["ratio_cpu"] = ratio_cpu
    return [row]


def _add_memory(row, dev):
    import torch

    if dev.type == "cuda":
        row["cuda_max_allocated_mb"] = round(torch.cuda.max_memory_allocated(dev) / 2 ** 20, 1)
    else:
        row["peak_rss_mb"] = peak_rss_mb()


# ----------------------------------------------------------------------------------------- data
RAW_HW = {False: (480, 640), True: (96, 128)}
RAW_SIZE = {False: (2, 12), True: (2, 2)}  # (scenes, frames per scene)


def _raw_dir(workdir):
    return os.path.join(workdir, "synthetic_raw")


def ensure_raw(workdir, tiny) -> str:
    """The ScanNet-format raw tree the data measurements read (generated, untimed, if absent)."""
    raw = _raw_dir(workdir)
    if not os.path.isfile(os.path.join(raw, "synthetic.json")):
        from tools import make_synthetic

        scenes, frames = RAW_SIZE[tiny]
        make_synthetic.generate(raw, scenes, frames, seed=0, height=RAW_HW[tiny][0], width=RAW_HW[tiny][1],
                                workers=1, overwrite=True, progress=False)
    return raw


def measure_synthetic(workdir, tiny=False):
    """Frames/s of `tools.make_synthetic.generate` in one process (render + encode + write)."""
    import cv2

    from tools import make_synthetic

    cv2.setNumThreads(1)
    settings = _common(tiny)
    scenes, frames = RAW_SIZE[tiny]
    h, w = RAW_HW[tiny]
    out = _raw_dir(workdir)
    if os.path.exists(out):
        out = os.path.join(workdir, f"synthetic_raw_{os.getpid()}")
    reset_peak_rss()
    t0, c0 = time.perf_counter(), time.process_time()
    stats = make_synthetic.generate(out, scenes, frames, seed=0, height=h, width=w, workers=1, overwrite=True,
                                    progress=not tiny)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    if out != _raw_dir(workdir):
        shutil.rmtree(out, ignore_errors=True)
    settings.update(scenes=scenes, frames_per_scene=frames, height=h, width=w, workers=1,
                    frames=stats["frames"], seconds=round(seconds, 3))
    return [{"name": "synthetic_generate", "value": stats["frames"] / seconds, "unit": "frames/s",
             "limit": None, "ratio": None, "value_cpu": stats["frames"] / cpu, "settings": settings,
             "peak_rss_mb": peak_rss_mb()}]


def measure_prepare(workdir, tiny=False):
    """Frames/s per core of `tools.prepare_scannet.prepare` (1 worker, every frame) on the synthetic raw
    tree: decode, label mapping, instance RLE, writes, index; the whole call is timed."""
    import io
    from contextlib import redirect_stdout

    from tools import prepare_scannet

    settings = _common(tiny)
    raw = ensure_raw(workdir, tiny)
    reset_peak_rss()
    rates, cpu_rates, frames = [], [], 0
    for r in range(1 if tiny else 3):
        out = os.path.join(workdir, f"prepared_{os.getpid()}_{r}")
        args = prepare_scannet.parse_args(["--raw", raw, "--out", out, "--frame-skip", "1", "--workers", "1",
                                           "--prefix", "synthetic"])
        t0, c0 = time.perf_counter(), time.process_time()
        with redirect_stdout(io.StringIO()):
            res = prepare_scannet.prepare(args)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        if res["errors"]:
            raise RuntimeError(f"prepare_scannet reported errors: {res['errors'][:3]}")
        frames = res["converted"]
        rates.append(frames / seconds)
        cpu_rates.append(frames / cpu)
        shutil.rmtree(out, ignore_errors=True)
    settings.update(frames=frames, rounds=len(rates), height=RAW_HW[tiny][0], width=RAW_HW[tiny][1], workers=1,
                    resolution="as raw (depth size)")
    settings.update(_spread(rates))
    return [{"name": "prepare_scannet", "value": max(rates), "unit": "frames/s/core", "limit": None,
             "ratio": None, "value_cpu": max(cpu_rates), "settings": settings, "peak_rss_mb": peak_rss_mb()}]


def _raw_pairs(raw):
    colors = sorted(glob.glob(os.path.join(raw, "scans", "*", "color", "*.jpg")))
    pairs = [(c, os.path.join(os.path.dirname(os.path.dirname(c)), "depth",
                              os.path.basename(c)[:-4] + ".png")) for c in colors]
    if not pairs:
        raise RuntimeError(f"no colour frames under {raw}")
    return pairs


def measure_loader(workdir, tiny=False):
    """RGB-D frames/s from ScanNet-format files (JPEG + uint16 PNG) to augmented training tensors through
    pretrain/data.py (its dataset with the augmentation of pretrain/configs/base.py, then collation), one
    core, against cv2.imread of the same files measured in the same rounds; then the same through the real
    DataLoader with one worker process."""
    import cv2
    import torch

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
    import cv2
    import torch
    from torch.utils.data import default_collate

    from detectron2.config import LazyConfig
    from pretrain.data import RGBDPretrainDataset, make_loader

    settings = _common(tiny)
    raw = ensure_raw(workdir, tiny)
    pairs = _raw_pairs(raw)
    cfg = LazyConfig.load(str(REPO / "pretrain" / "configs" / "base.py"))
    img_size = (48, 64) if tiny else tuple(cfg.model.img_size)
    aug = {k: _plain(cfg.data[k]) for k in ("scale", "ratio", "hflip", "color_jitter")}
    h, w = cv2.imread(pairs[0][0]).shape[:2]
    dicts = [{"file_name": c, "depth_file_name": d, "height": h, "width": w, "image_id": str(i)}
             for i, (c, d) in enumerate(pairs)]
    dataset = RGBDPretrainDataset(dicts, img_size, **aug)
    batch = 2 if tiny else 8
    passes = 1 if tiny else 3
    n = len(pairs) * passes // batch * batch

    def decode():
        for i in range(n):
            c, d = pairs[i % len(pairs)]
            if cv2.imread(c, cv2.IMREAD_COLOR) is None or cv2.imread(d, cv2.IMREAD_UNCHANGED) is None:
                raise RuntimeError(f"cannot decode {c} / {d}")

    counter = iter(range(10 ** 9))

    def augment():
        for _ in range(n // batch):
            items = []
            for _ in range(batch):
                k = next(counter)
                items.append(dataset[(k % len(dataset), [0, 0, 0, k])])  # what ShardedInfiniteSampler yields
            default_collate(items)

    reset_peak_rss()
    decode()
    augment()  # warm-up: page cache, lazy imports
    rates, limits, cpu_rates, cpu_limits = [], [], [], []
    for _ in range(2 if tiny else 5):
        t0, c0 = time.perf_counter(), time.process_time()
        decode()
        t1, c1 = time.perf_counter(), time.process_time()
        augment()
        t2, c2 = time.perf_counter(), time.process_time()
        limits.append(n / (t1 - t0))
        rates.append(n / (t2 - t1))
        cpu_limits.append(n / (c1 - c0))
        cpu_rates.append(n / (c2 - c1))
    value, limit, ratio = _rounds_summary(rates, limits)
    value_cpu, _, ratio_cpu = _rounds_summary(cpu_rates, cpu_limits)
    base = dict(settings, files=len(pairs), frame_hw=[h, w], img_size=list(img_size), batch=batch,
                frames_per_round=n, augment=aug, rounds=len(rates), threads=1)
    rows = [{"name": "loader_rgbd", "value": value, "unit": "frames/s/core", "limit": limit, "ratio": ratio,
             "value_cpu": value_cpu, "ratio_cpu": ratio_cpu,
             "settings": dict(base, path="RGBDPretrainDataset[(index, seed)] + default_collate, in process",
                              **_spread(rates, limits)),
             "peak_rss_mb": peak_rss_mb()}]

    # The real DataLoader, one worker: adds process start (excluded) and shared-memory transfer. The worker
    # prefetches: its queue is drained untimed before each timed stretch (so every timed batch is made while
    # we wait), and it is left to refill and go idle before the decode-only reference runs.
    loader = make_loader(dataset, batch, workers=1, seed=0, pin_memory=False)
    queued = (loader.prefetch_factor or 2) * loader.num_workers
    it = iter(loader)
    next(it)
    worker_pid = getattr(getattr(it, "_workers", [None])[0], "pid", None)
    batches = max(2, n // batch)
    w_rates, w_limits, w_cpu_rates, w_cpu_limits = [], [], [], []
    for _ in range(2 if tiny else 3):
        for _ in range(queued):
            next(it)
        t0, wc0 = time.perf_counter(), _process_cpu_s(worker_pid)
        for _ in range(batches):
            next(it)
        t1, wc1 = time.perf_counter(), _process_cpu_s(worker_pid)
        time.sleep(1.5 * queued * (t1 - t0) / batches)
        t2, c2 = time.perf_counter(), time.process_time()
        decode()
        t3, c3 = time.perf_counter(), time.process_time()
        w_rates.append(batches * batch / (t1 - t0))
        w_limits.append(n / (t3 - t2))
        if wc0 is not None and wc1 is not None and wc1 > wc0:
            w_cpu_rates.append(batches * batch / (wc1 - wc0))
            w_cpu_limits.append(n / (c3 - c2))
    del it, loader
    import gc

    gc.collect()
    value, limit, ratio = _rounds_summary(w_rates, w_limits)
    # The worker's CPU time (from /proc) per frame it made, against the decode's CPU time in this process.
    value_cpu, _, ratio_cpu = _rounds_summary(w_cpu_rates, w_cpu_limits) if w_cpu_rates else (None, None, None)
    rows.append({"name": "loader_rgbd_worker", "value": value, "unit": "frames/s/worker", "limit": limit,
                 "ratio": ratio, "value_cpu": value_cpu, "ratio_cpu": ratio_cpu, "settings": dict(base, path="pretrain.data.make_loader(workers=1)",
                                                  batches_per_round=batches, rounds=len(w_rates),
                                                  **_spread(w_rates, w_limits)),
                 "peak_rss_mb": peak_rss_mb(), "peak_rss_children_mb": children_peak_rss_mb()})
    return rows


# ----------------------------------------------------------------------------------------- benchmark
def measure_inference(config="semseg_vit_b", device="cpu", tiny=False):
    """Images/s of a benchmark model (the `--tiny` variant of benchmark/configs/scannet/CONFIG.py, random
    weights) at batch 1 in eval mode, on inputs mapped by the config's test-time resize from 480x640
    frames, with postprocessing to 480x640 as the evaluator sees it."""
    import numpy as np
    import torch

    import detectron2.data.transforms as T
    from detectron2.config import LazyConfig, instantiate

    from benchmark.tiny import make_tiny

    settings = _common(tiny)
    cfg = LazyConfig.load(str(REPO / "benchmark" / "configs" / "scannet" / f"{config}.py"))
    make_tiny(cfg)
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("no CUDA device")
    cfg.train.device = dev.type
    cfg.train.amp.enabled = dev.type == "cuda"  # what make_tiny does on a GPU
    torch.manual_seed(0)
    model = instantiate(cfg.model).to(dev).eval()
    augs = T.AugmentationList(instantiate(cfg.dataloader.test.mapper.augmentations))
    rng = np.random.default_rng(0)
    images = []
    for _ in range(4):
        aug_in = T.AugInput(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8))
        augs(aug_in)
        images.append(torch.as_tensor(np.ascontiguousarray(aug_in.image.transpose(2, 0, 1))))
    cuda = dev.type == "cuda"
    k = iter(range(10 ** 9))

    def infer():
        img = images[next(k) % len(images)]
        with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda and cfg.train.amp.enabled):
            model([{"image": img.to(dev), "height": 480, "width": 640}])

    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)
    else:
        reset_peak_rss()
    for _ in range(1 if tiny else 3):
        infer()
    reps = 1 if tiny else _calibrate(infer, dev, 1.0, max_reps=200)
    rates = [1.0 / _time_calls(infer, reps, dev) for _ in range(1 if tiny else 3)]
    settings.update(config=f"benchmark/configs/scannet/{config}.py", variant="benchmark.tiny.make_tiny",
                    autocast="bf16" if cuda and cfg.train.amp.enabled else None,
                    input_hw=list(images[0].shape[1:]), output_hw=[480, 640], batch=1, reps_per_round=reps,
                    rounds=len(rates), threads=torch.get_num_threads(), device_name=_device_name(dev))
    settings.update(_spread(rates))
    row = {"name": f"inference_{config}_tiny_{dev.type}", "value": max(rates), "unit": "images/s",
           "limit": None, "ratio": None, "settings": settings}
    _add_memory(row, dev)
    return [row]
