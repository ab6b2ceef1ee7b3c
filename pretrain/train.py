"""The pre-training loop: `python -m pretrain --config FILE [--resume] key=value ...`.

One run = one output folder: config.yaml, log.txt, TensorBoard events, checkpoint.pth (rewritten
atomically every `train.checkpoint_period` iterations), reconstruction PNGs, and at the end
backbone.pth (the export), metrics.json and one `kind: pretrain` record in the results store.

Exact resume: the data stream and the masks are pure functions of (seed, samples consumed, iteration),
and the checkpoint holds model, optimizer, scheduler, loss history and torch RNG states, so on CPU the
losses after `--resume` equal those of an uninterrupted run.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import inspect
import json
import logging
import math
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from detectron2.config import LazyConfig, instantiate
from detectron2.utils.registry import locate
from omegaconf import OmegaConf
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from core.io import save_torch as atomic_save
from core.io import write_text as atomic_text

from .data import RGBDPretrainDataset, dataset_dicts, make_loader, parse_names
from .export import CHECKPOINT_NAME, export_state, load_checkpoint
from .model import load_encoder_weights
from .visualize import reconstruction_panel, save_png

logger = logging.getLogger("pretrain")
REFERENCE_BATCH = 256  # MAE: lr = base_lr * effective_batch / 256


class NonFiniteLoss(FloatingPointError):
    """The loss became NaN/inf; the message names the iteration and the checkpoint kept."""


class WarmupCosine:
    """Per-iteration LR factor: linear warmup, then cosine to `min_factor` (MAE's schedule, per step)."""

    def __init__(self, max_iter: int, warmup_iters: int, min_factor: float = 0.0):
        self.max_iter, self.warmup, self.min_factor = max_iter, warmup_iters, min_factor

    def __call__(self, it: int) -> float:
        if it < self.warmup:
            return (it + 1) / self.warmup
        progress = (it - self.warmup) / max(1, self.max_iter - self.warmup)
        return self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


# --- config ------------------------------------------------------------------------------------------------
def load_config(config_file: str, overrides=()):
    """LazyConfig.load + `key=value` overrides. Values are Python literals (`(96,128)`, `True`, `0.8`) or
    else plain strings (`a,b` stays a string, not a Hydra sweep); they reach LazyConfig.apply_overrides
    in Hydra's JSON-like syntax. An unknown key is an error: a typo must not silently train the default."""
    if not Path(config_file).is_file():
        raise FileNotFoundError(f"config {config_file} does not exist (see pretrain/configs/)")
    cfg = LazyConfig.load(config_file)
    quoted = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r} is not key=value")
        if not _known_key(cfg, key):
            raise KeyError(f"override {key!r}: no such key in {config_file}")
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            pass
        quoted.append(f"{key}={json.dumps(value)}")
    return LazyConfig.apply_overrides(cfg, quoted)


def _known_key(cfg, key: str) -> bool:
    """A key present in the config, or an argument of the LazyCall target that holds it."""
    if OmegaConf.select(cfg, key, default="__missing__") != "__missing__":
        return True
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else None
    target = node.get("_target_") if OmegaConf.is_dict(node) else None
    if target is None:
        return False
    target = locate(target) if isinstance(target, str) else target
    return leaf in inspect.signature(target).parameters


def model_args(cfg) -> dict:
    return {k: v for k, v in OmegaConf.to_container(cfg.model, resolve=True).items() if k != "_target_"}


# --- distributed ---------------------------------------------------------------------------------------------
def setup_distributed(device_name: str):
    """(rank, world_size, device); joins the torchrun process group when WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available() and device_name != "cpu"
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


def _mask_generator(seed: int, iteration: int, micro: int, rank: int) -> torch.Generator:
    state = np.random.SeedSequence([seed, iteration, micro, rank]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


# --- files -----------------------------------------------------------------------------------------------------
def _save_config(cfg, out_dir: Path) -> str:
    """LazyConfig.save into a scratch file, then an atomic copy to config.yaml; returns the text."""
    scratch = out_dir / ".config.yaml.tmp"
    LazyConfig.save(cfg, str(scratch))
    text = scratch.read_text()
    scratch.unlink()
    atomic_text(out_dir / "config.yaml", text)
    return text


def _setup_logging(out_dir: Path, rank: int) -> None:
    """Console (stderr) and, on rank 0, out_dir/log.txt (appended to when resuming)."""
    _close_logging()
    logger.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    logger.propagate = False
    fmt = logging.Formatter("[%(asctime)s] %(message)s", "%m/%d %H:%M:%S")
    handlers = [logging.StreamHandler(sys.stderr)]
    if rank == 0:
        handlers.append(logging.FileHandler(out_dir / "log.txt"))
    for h in handlers:
        h.setFormatter(fmt)
        logger.addHandler(h)


def _close_logging() -> None:
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                              cwd=Path(__file__).resolve().parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _param_groups(model, weight_decay):
    """No weight decay on biases, norms and learned tokens (MAE)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 or name.endswith(("mask_token", "modality_embed")) else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _optimizer(model, t, effective_batch: int, max_iter: int):
    """AdamW at base_lr scaled by the effective batch, with the per-iteration warmup + cosine schedule."""
    lr = t.base_lr * effective_batch / REFERENCE_BATCH
    optimizer = torch.optim.AdamW(_param_groups(model, t.weight_decay), lr=lr, betas=tuple(t.betas))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, WarmupCosine(max_iter, t.warmup_iters, t.min_lr / lr if lr else 0.0))
    return optimizer, scheduler, lr


def _restore(ckpt, model, optimizer, scheduler, device):
    """Model, optimizer, scheduler and RNG state from a checkpoint; returns (iteration, loss history)."""
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    if device.type == "cuda" and ckpt["rng"].get("cuda") is not None:
        torch.cuda.set_rng_state(ckpt["rng"]["cuda"], device)
    return int(ckpt["iteration"]), [list(x) for x in ckpt["loss_history"]]


# --- the run ---------------------------------------------------------------------------------------------------
USER_ERRORS = (FileNotFoundError, FileExistsError, KeyError, ValueError, NonFiniteLoss)


def train(cfg, resume: bool = False, config_file: str | None = None) -> dict:
    """Runs (or resumes) the pre-training described by `cfg`; returns the final metrics. A bad input or a
    non-finite loss is logged (console and log.txt) and re-raised with `logged = True`."""
    out_dir = Path(cfg.train.output_dir or
                   f"output/pretrain/{Path(config_file or 'run').stem}-{cfg.model.objective}")
    rank, world, device = setup_distributed(cfg.train.device)
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
    _setup_logging(out_dir, rank)
    threads = torch.get_num_threads()
    if device.type == "cpu" and cfg.train.cpu_threads > 0:
        torch.set_num_threads(cfg.train.cpu_threads)
    try:
        return _train(cfg, resume, config_file, out_dir, rank, world, device)
    except USER_ERRORS as e:
        logger.error("error: %s", e)
        e.logged = True
        raise
    finally:
        torch.set_num_threads(threads)
        _close_logging()
        if world > 1:
            dist.destroy_process_group()


def _train(cfg, resume, config_file, out_dir, rank, world, device) -> dict:
    t = cfg.train
    metrics_path, ckpt_path = out_dir / "metrics.json", out_dir / CHECKPOINT_NAME
    if metrics_path.exists():
        logger.info("%s is a finished run; nothing to do (choose another train.output_dir to train again)",
                    out_dir)
        return json.loads(metrics_path.read_text())
    if ckpt_path.exists() and not resume:
        raise FileExistsError(f"{out_dir} already holds a run ({ckpt_path}); pass --resume to continue it or "
                              f"choose another train.output_dir")

    # Everything that can be wrong with the inputs fails here, before any training.
    torch.manual_seed(t.seed)
    model = instantiate(cfg.model)
    dicts = dataset_dicts(cfg.data.names)
    dataset = RGBDPretrainDataset(dicts, model.img_size, scale=cfg.data.scale, ratio=cfg.data.ratio,
                                  hflip=cfg.data.hflip, color_jitter=cfg.data.color_jitter)
    if t.accum_steps < 1 or t.batch_size < 1:
        raise ValueError("train.batch_size and train.accum_steps must be >= 1")
    start_iter, loss_history = 0, []
    if resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        ours = {**model_args(cfg), "data.names": parse_names(cfg.data.names)}
        theirs = {**ckpt["model_args"], "data.names": ckpt["data_names"]}
        diff = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
        if diff:
            raise ValueError(f"{ckpt_path} was trained with different settings ({', '.join(diff)}); choose "
                             f"another train.output_dir for a new configuration")
    else:
        ckpt = None
        if t.init_checkpoint:
            load_encoder_weights(model, t.init_checkpoint)
    config_text = _save_config(cfg, out_dir) if rank == 0 else ""
    model.to(device)
    max_iter = 0 if model.objective == "none" else t.max_iter  # `none`: export the initialisation as is

    effective_batch = t.batch_size * t.accum_steps * world
    optimizer, scheduler, lr = _optimizer(model, t, effective_batch, max_iter)
    if ckpt is not None:
        start_iter, loss_history = _restore(ckpt, model, optimizer, scheduler, device)
        logger.info("resumed from %s at iteration %d", ckpt_path, start_iter)

    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.index is not None
                                                        else None)
    if t.compile:
        net = torch.compile(net)
    loader = iter(make_loader(dataset, t.batch_size, workers=cfg.data.workers, seed=t.seed, rank=rank,
                              world_size=world, start=start_iter * t.batch_size * t.accum_steps,
                              pin_memory=cfg.data.pin_memory))
    views = [dataset[int(i)] for i in np.linspace(0, len(dataset) - 1, min(4, len(dataset)))]
    vis_batch = {k: torch.stack([v[k] for v in views]).to(device) for k in ("image", "depth", "valid")}
    amp = bool(t.amp) and device.type == "cuda"
    if amp and not torch.cuda.is_bf16_supported():
        logger.warning("this GPU has no bfloat16: training in float32 (train.amp ignored)")
        amp = False
    writer = None
    if rank == 0:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out_dir))  # closed when the loop ends, however it ends
    logger.info("pre-training %s %s (%s) on %s: %d images, effective batch %d (%d x %d accum x %d ranks), "
                "lr %.2e, %d iterations, device %s", model.arch()["backbone"], model.objective,
                model.preset, ",".join(parse_names(cfg.data.names)), len(dataset), effective_batch, t.batch_size, t.accum_steps,
                world, lr, max_iter, device)

    last_saved = [start_iter]

    def save_checkpoint(iteration):
        last_saved[0] = iteration
        if rank != 0:
            return
        atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "iteration": iteration, "loss_history": loss_history,
                     "model_args": model_args(cfg), "arch": model.arch(), "data_names": parse_names(cfg.data.names),
                     "rng": {"torch": torch.get_rng_state(),
                             "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}},
                    ckpt_path)

    def save_picture(name):
        if rank == 0 and model.objective != "none":
            save_png(reconstruction_panel(model, vis_batch, torch.Generator().manual_seed(t.seed)), out_dir / name)

    if ckpt is None:
        save_checkpoint(0)  # a good checkpoint exists from the start, so a failure never leaves none
    t_start, images_done = time.perf_counter(), 0
    bar = tqdm(total=max_iter, initial=start_iter, desc="pretrain", disable=rank != 0, dynamic_ncols=True)
    with logging_redirect_tqdm([logger]), bar, (writer or contextlib.nullcontext()):
        for it in range(start_iter, max_iter):
            t_iter = time.perf_counter()
            total = torch.zeros(2, device=device)  # [loss sum, non-finite count]
            for micro in range(t.accum_steps):
                batch = {k: v.to(device, non_blocking=True) for k, v in next(loader).items()}
                sync = micro == t.accum_steps - 1 or world == 1
                with (contextlib.nullcontext() if sync else net.no_sync()), \
                        torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    out = net(batch["image"], batch["depth"], batch["valid"],
                              generator=_mask_generator(t.seed, it, micro, rank))
                    loss = out["loss"].float()
                    (loss / t.accum_steps).backward()
                total[0] += loss.detach() / t.accum_steps
                total[1] += (~torch.isfinite(loss.detach())).float()
            if world > 1:
                dist.all_reduce(total)
                total[0] /= world
            if total[1] > 0:
                raise NonFiniteLoss(f"non-finite loss ({total[0].item()}) at iteration {it + 1}; training stopped "
                                    f"and the last good checkpoint {ckpt_path} (iteration {last_saved[0]}) is "
                                    f"kept. Lower train.base_lr, check the data, or --resume to retry")
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            loss_value = total[0].item()
            loss_history.append([it + 1, loss_value])
            images_done += effective_batch
            rate = effective_batch / (time.perf_counter() - t_iter)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.4f}", img_s=f"{rate:.1f}", refresh=False)
            if writer is not None:
                writer.add_scalar("loss", loss_value, it + 1)
                writer.add_scalar("lr", optimizer.param_groups[0]["lr"], it + 1)
                writer.add_scalar("images_per_s", rate, it + 1)
            done = it + 1
            if done % t.log_period == 0 or done == max_iter:
                logger.info("iter %d/%d  loss %.4f  lr %.2e  %.1f img/s", done, max_iter, loss_value,
                            optimizer.param_groups[0]["lr"], rate)
            if done % t.checkpoint_period == 0 or done == max_iter:
                save_checkpoint(done)
            if t.vis_period and done % t.vis_period == 0 and done != max_iter:
                save_picture(f"reconstruction_{done:06d}.png")
    elapsed = time.perf_counter() - t_start
    if rank != 0:
        return {}
    return _finish(cfg, model, out_dir, loss_history, elapsed, images_done, config_text, config_file, device,
                   save_picture)


def _finish(cfg, model, out_dir, loss_history, elapsed, images_done, config_text, config_file, device,
            save_picture) -> dict:
    """Final picture, export, metrics.json (written last: it marks the run finished) and the record."""
    save_picture("reconstruction.png")
    exported = export_state(load_checkpoint(out_dir / CHECKPOINT_NAME), str(out_dir / CHECKPOINT_NAME))
    atomic_save(exported, out_dir / "backbone.pth")
    losses = [v for _, v in loss_history]
    window = max(1, min(100, len(losses) // 10))
    metrics = {"loss": float(np.mean(losses[-window:])) if losses else None,
               "loss_start": float(np.mean(losses[:window])) if losses else None,
               "iterations": len(losses), "time_s": elapsed,
               "images_per_s": images_done / elapsed if elapsed > 0 else 0.0,
               "objective": model.objective, "backbone": model.arch()["backbone"]}
    step = max(1, math.ceil(len(loss_history) / 200))
    history = loss_history[::step]
    if history and history[-1] != loss_history[-1]:
        history = history[:199] + [loss_history[-1]]
    names = parse_names(cfg.data.names)
    record = {"kind": "pretrain", "dataset": "+".join(sorted({n.split("_")[0] for n in names})),
              "task": "pretrain", "backbone": metrics["backbone"], "objective": model.objective,
              "init": Path(cfg.train.init_checkpoint).stem if cfg.train.init_checkpoint else "random",
              "data_fraction": 100, "seed": int(cfg.train.seed), "iterations": len(losses),
              "metrics": {"loss": metrics["loss"]} if losses else {}, "loss_history": history,
              "config_file": config_file, "config_hash": hashlib.sha256(config_text.encode()).hexdigest()[:16],
              "git_commit": _git_commit(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "output_dir": str(out_dir), "tag": cfg.train.tag}
    from results.store import append_record

    append_record(record)  # before metrics.json: a crash in between repeats the record rather than losing it
    atomic_text(out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    logger.info("done: %s %s, %d iterations in %.0f s, loss %s -> %s, export %s", metrics["backbone"],
                model.objective, len(losses), elapsed, _fmt(metrics["loss_start"]), _fmt(metrics["loss"]),
                out_dir / "backbone.pth")
    return metrics


def _fmt(x):
    return "n/a" if x is None else f"{x:.4f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pretrain", description="Masked RGB-D pre-training.")
    parser.add_argument("--config", default="pretrain/configs/default_cpu.py", help="LazyConfig Python file")
    parser.add_argument("--resume", action="store_true", help="continue the run in train.output_dir if any")
    parser.add_argument("overrides", nargs="*", help="key=value, e.g. model.rgb_mask_ratio=0.8")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
        train(cfg, resume=args.resume, config_file=args.config)
    except USER_ERRORS as e:
        if not getattr(e, "logged", False):
            print(f"error: {e.args[0] if isinstance(e, KeyError) and e.args else e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
