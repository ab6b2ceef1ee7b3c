"""The pre-training run: `python -m pretrain --config FILE [--resume] [--num-gpus N] key=value ...`, or the
same under `torchrun ... -m pretrain`.

Built on Detectron2's engine like `benchmark/`: a `SimpleTrainer` whose hooks step the fvcore warm-up +
cosine schedule, save checkpoints and run the writers (console, `train_log.json`, TensorBoard); its metric
writer stops the run on a non-finite loss. Hand-written here is only what Detectron2 lacks: gradient
accumulation, per-iteration mask seeds and the stop on a batch without valid depth (`PretrainTrainer`);
the resumable data stream lives in `pretrain.data`, the run-folder bookkeeping in `core.runs`.

One run = one output folder: config.yaml, log.txt, train_log.json, TensorBoard events, checkpoint.pth
(rewritten atomically every `train.checkpoint_period` iterations, named by last_checkpoint),
reconstruction PNGs, and at the end backbone.pth (the export), metrics.json, one `kind: pretrain` record
in the results store and finished.json.

Exact resume: the data stream and the masks are pure functions of (seed, samples consumed, iteration), and
the checkpoint holds model, optimizer, schedule position, loss history and torch RNG states, so on CPU the
losses and weights after `--resume` equal those of an uninterrupted run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.engine import HookBase, SimpleTrainer, create_ddp_model, hooks
from detectron2.engine.defaults import CommonMetricPrinter, JSONWriter, TensorboardXWriter
from detectron2.solver import WarmupParamScheduler, get_default_optimizer_params
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger
from fvcore.common.param_scheduler import CosineParamScheduler, LinearParamScheduler
from omegaconf import OmegaConf
from torch.utils.data import default_collate

from core import cli, runs
from core import overrides as overrides_mod
from core.checkpoint import AtomicCheckpointer
from core.distributed import launch
from core.io import CheckpointError, load_torch, save_torch
from datasets.fileio import DataError
from results import store

from .data import RGBDPretrainDataset, dataset_dicts, make_loader, parse_names, to_model_inputs
from .export import CHECKPOINT_NAME, export_state, load_checkpoint
from .metrics import encoder_health, health_images
from .model import load_encoder_weights
from .packed import PackedPretrainDataset
from .pairs import PairDataset
from .visualize import save_png

logger = logging.getLogger("pretrain")
LOGGERS = ("detectron2", "fvcore", "pretrain")
REFERENCE_BATCH = 256  # MAE: lr = base_lr * effective_batch / 256
HASH_IGNORES = {"train.output_dir": "", "train.seed": 0, "train.tag": ""}  # repeats of a recipe share its hash
FOLDER_KEYS = ("train.output_dir", "train.tag")  # not settings: a finished run asked again may differ in these


class TrainingStopped(RuntimeError):
    """A bad iteration (non-finite loss, a batch without valid depth) stopped training; the message names the
    iteration and the checkpoint kept."""


class NoValidDepth(RuntimeError):
    """A batch whose depth is invalid everywhere: a depth objective has no target in it."""


# --- config ------------------------------------------------------------------------------------------------
def load_config(config_file: str, overrides=()):
    """LazyConfig.load + `key=value` overrides (`core.overrides`: unknown keys and wrong types are errors)."""
    if not Path(config_file).is_file():
        raise FileNotFoundError(f"config {config_file} does not exist (see pretrain/configs/)")
    cfg = overrides_mod.apply(LazyConfig.load(config_file), overrides, config_file)
    counts = ["train.batch_size", "train.accum_steps", "train.checkpoint_period", "train.log_period"]
    overrides_mod.require_counts(
        cfg, counts + (["train.max_iter"] if cfg.model.objective != "none" else []), config_file
    )
    return cfg


def model_args(cfg) -> dict:
    return {k: v for k, v in OmegaConf.to_container(cfg.model, resolve=True).items() if k != "_target_"}


# --- training ----------------------------------------------------------------------------------------------
def mask_generator(seed: int, iteration: int, micro: int, rank: int) -> torch.Generator:
    """The masks of one micro-batch come from their own generator, so they depend on nothing but the run's seed
    and position (what exact resume needs)."""
    state = np.random.SeedSequence([seed, iteration, micro, rank]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


class PretrainTrainer(SimpleTrainer):
    """SimpleTrainer that steps once per `accum_steps` micro-batches, masks each with `mask_generator`, runs
    under bf16 autocast when `amp`, and keeps the loss history the checkpoint and the record carry."""

    def __init__(
        self, model, optimizer, *, device, accum_steps: int, seed: int, amp: bool, needs_depth: bool, logged=()
    ):
        super().__init__(model, None, optimizer)
        self.device, self.accum_steps, self.seed, self.amp = device, accum_steps, seed, amp
        self.needs_depth, self.logged = needs_depth, logged  # logged: numbers of the output put in the storage
        self.loss_history: list[list] = []  # [iteration, loss averaged over micro-batches and ranks]

    def run_step(self):
        assert self.model.training, "[PretrainTrainer] model was changed to eval mode!"
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum, data_time = torch.zeros((), device=self.device), 0.0
        for micro in range(self.accum_steps):
            start = time.perf_counter()
            batch = to_model_inputs(next(self._data_loader_iter), self.device)
            data_time += time.perf_counter() - start
            if self.needs_depth and not batch["valid"].any():
                raise NoValidDepth(f"micro-batch {micro + 1} of {self.accum_steps}")
            last = micro == self.accum_steps - 1
            with (
                contextlib.nullcontext() if last or comm.get_world_size() == 1 else self.model.no_sync(),
                torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp),
            ):
                out = self.model(**batch, generator=mask_generator(self.seed, self.iter, micro, comm.get_rank()))
                loss = out["loss"].float()
                (loss / self.accum_steps).backward()
            loss_sum += loss.detach() / self.accum_steps
            for key in self.logged:
                self.storage.put_scalar(key, out[key], smoothing_hint=False)
        self.after_backward()
        self._write_metrics({"loss": loss_sum}, data_time)  # raises FloatingPointError on a non-finite loss
        if comm.is_main_process():
            self.loss_history.append([self.iter + 1, self.storage.history("total_loss").latest()])
        self.optimizer.step()


class PeriodicSave(HookBase):
    """Rewrites checkpoint.pth every `period` iterations and after the last one; `last` is what it holds."""

    def __init__(self, save, period: int, last: int):
        self.save, self.period, self.last = save, period, last

    def after_step(self):
        done = self.trainer.iter + 1
        if done % self.period == 0 or done == self.trainer.max_iter:
            self.save(done)
            self.last = done


def build_optimizer(model, t, lr: float) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases, norms and what the objective names (MAE: its learned tokens)."""
    params = get_default_optimizer_params(
        model,
        base_lr=lr,
        weight_decay=t.weight_decay,
        weight_decay_norm=0.0,
        weight_decay_bias=0.0,
        overrides={name: {"weight_decay": 0.0} for name in sorted(model.no_weight_decay())},
    )
    return torch.optim.AdamW(params, lr=lr, betas=tuple(t.betas))


def lr_schedule(t, lr: float, max_iter: int):
    """MAE's per-step schedule as an LR multiplier: linear warm-up from 1/warmup_iters over `warmup_iters`
    iterations, then cosine to `min_lr`."""
    cosine = CosineParamScheduler(1.0, t.min_lr / lr if lr else 0.0)
    if t.warmup_iters <= 0:
        return cosine
    start = 1 / t.warmup_iters
    if t.warmup_iters >= max_iter:  # the whole run is warm-up
        return LinearParamScheduler(start, start + (1 - start) * max_iter / t.warmup_iters)
    return WarmupParamScheduler(cosine, start, t.warmup_iters / max_iter, rescale_interval=True)


def resolve_device(name: str) -> torch.device:
    if torch.cuda.is_available() and name != "cpu":
        return torch.device("cuda", comm.get_local_rank())
    return torch.device("cpu")


# --- the run ---------------------------------------------------------------------------------------------------
USER_ERRORS = (FileNotFoundError, KeyError, ValueError, runs.RunError, CheckpointError, DataError, TrainingStopped)


def run_name(config_file: str | None, objective: str) -> str:
    """`<config name>-<objective>`: the folder under output/pretrain/ a run goes to without train.output_dir."""
    return f"{Path(config_file or 'run').stem}-{objective}"


def train(cfg, resume: bool = False, config_file: str | None = None) -> dict:
    """Runs (or resumes) the pre-training described by `cfg`; returns the final metrics (empty on ranks > 0).
    A bad input or a stopped training is logged to log.txt and raised."""
    out = runs.output_dir(cfg.train.output_dir, "pretrain", run_name(config_file, cfg.model.objective))
    with runs.held(out, comm.get_rank() == 0):  # one process per run folder, for the run's life
        return _train_in(cfg, resume, config_file, out)


def _train_in(cfg, resume: bool, config_file, out: Path) -> dict:
    rank = comm.get_rank()
    state = runs.claim(out, resume, clean=rank == 0)
    if state == runs.FINISHED:
        runs.refuse_changed(cfg, out, ignore=FOLDER_KEYS)
    with runs.logging_scope(*LOGGERS):
        for name in LOGGERS:
            setup_logger(str(out), distributed_rank=rank, name=name)
        if state == runs.FINISHED:
            logger.info(f"{out} is a finished run; nothing to do (choose another train.output_dir to train again)")
            return json.loads((out / "metrics.json").read_text())
        threads = torch.get_num_threads()
        if resolve_device(cfg.train.device).type == "cpu" and cfg.train.cpu_threads > 0:
            torch.set_num_threads(cfg.train.cpu_threads)
        try:
            with cli.one_line_in_logs(USER_ERRORS):
                return _train(cfg, state == runs.UNFINISHED, config_file, out)
        except Exception as e:
            message = cli.user_message(e, USER_ERRORS)
            if message is not None:
                cli.log_to_file(out, message)
            raise
        finally:
            torch.set_num_threads(threads)


def _train(cfg, resuming: bool, config_file, out: Path) -> dict:
    t, rank, world = cfg.train, comm.get_rank(), comm.get_world_size()
    device = resolve_device(t.device)
    names = parse_names(cfg.data.names)
    # Everything that can be wrong with the inputs fails here, before any training.
    torch.manual_seed(t.seed)
    model = instantiate(cfg.model)
    dataset = build_dataset(cfg.data, names, model)
    if t.accum_steps < 1 or t.batch_size < 1:
        raise ValueError("train.batch_size and train.accum_steps must be >= 1")
    if not resuming and t.init_checkpoint:
        load_encoder_weights(model, t.init_checkpoint)
    model.to(device)
    max_iter = t.max_iter if model.trains else 0  # else: export the initialisation as is
    effective_batch = t.batch_size * t.accum_steps * world
    lr = t.base_lr * effective_batch / REFERENCE_BATCH
    optimizer = build_optimizer(model, t, lr)
    amp = bool(t.amp) and device.type == "cuda"
    if amp and not torch.cuda.is_bf16_supported():
        logger.warning("this GPU has no bfloat16: training in float32 (train.amp ignored)")
        amp = False
    net = create_ddp_model(model, **({} if device.type == "cuda" else {"device_ids": None}))
    trainer = PretrainTrainer(
        torch.compile(net) if t.compile else net,
        optimizer,
        device=device,
        accum_steps=t.accum_steps,
        seed=t.seed,
        amp=amp,
        needs_depth="depth" in model.batch_keys,
        logged=model.logged,
    )
    checkpointer = AtomicCheckpointer(model, str(out), trainer=trainer)

    def save(done: int):
        checkpointer.save(
            Path(CHECKPOINT_NAME).stem,
            iteration=done,
            loss_history=trainer.loss_history,
            model_args=model_args(cfg),
            arch=model.arch(),
            data_names=names,
            rng={
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            },
        )

    views = [dataset[int(i)] for i in np.linspace(0, len(dataset) - 1, min(4, len(dataset)))]
    vis_batch = to_model_inputs(default_collate(views), device)

    def save_picture(name: str, iteration: int):
        title = f"{out.name}: {model.objective}, iteration {iteration} of {t.max_iter}"
        picture = model.picture(vis_batch, torch.Generator().manual_seed(t.seed), title) if rank == 0 else None
        if picture is not None:
            save_png(picture, out / name)

    def save_periodic_picture(tr):
        done = tr.iter + 1
        if done % t.vis_period == 0 and done != tr.max_iter:
            save_picture(f"reconstruction_{done:06d}.png", done)

    health_batch = health_images(dataset) if rank == 0 else None

    def log_health(tr):  # into the storage before the writers' hook, at the iterations it writes
        done = tr.iter + 1
        if done % t.log_period == 0 or done == tr.max_iter:
            tr.storage.put_scalars(**encoder_health(model, health_batch), smoothing_hint=False)

    saver = PeriodicSave(save, t.checkpoint_period, 0)
    writers = (
        [CommonMetricPrinter(max_iter), JSONWriter(str(out / "train_log.json")), TensorboardXWriter(str(out))]
        if rank == 0
        else []
    )
    trainer.register_hooks(
        [
            hooks.IterationTimer(),
            hooks.LRScheduler(scheduler=lr_schedule(t, lr, max_iter)),
            saver,
            hooks.CallbackHook(after_step=save_periodic_picture) if t.vis_period else None,
            hooks.CallbackHook(after_step=log_health) if rank == 0 else None,
            hooks.PeriodicWriter(writers, period=t.log_period) if rank == 0 else None,
        ]
    )
    start_iter = 0
    if resuming:  # after the hooks exist, so their state (the LR scheduler's) is restored with the trainer's
        start_iter = saver.last = _resume(checkpointer, trainer, cfg, device)
    trainer.reset_data_loader(
        lambda: make_loader(
            dataset,
            t.batch_size,
            workers=cfg.data.workers,
            seed=t.seed,
            rank=rank,
            world_size=world,
            start=start_iter * t.batch_size * t.accum_steps,
            pin_memory=cfg.data.pin_memory,
        )
    )
    if rank == 0:
        cfg.train.output_dir = str(out)  # the folder actually used, also when derived from the config name
        runs.save_config(cfg, out)
    logger.info(
        f"pre-training {model.arch()['backbone']} {model.objective} on {','.join(names)}: "
        f"{len(dataset)} images, effective batch {effective_batch} ({t.batch_size} x {t.accum_steps} accum x "
        f"{world} ranks), lr {lr:.2e}, {max_iter} iterations, device {device}"
    )
    if not resuming:
        save(0)  # a good checkpoint exists from the start, so a failure never leaves none
    start = time.perf_counter()
    if max_iter <= start_iter:  # nothing to train: the writers' hook never runs to close them
        for writer in writers:
            writer.close()
    else:
        try:
            trainer.train(start_iter, max_iter)
        except (FloatingPointError, NoValidDepth) as e:
            what = (
                f"non-finite loss at iteration {trainer.iter + 1}"
                if isinstance(e, FloatingPointError)
                else f"no valid depth pixels in {e} of iteration {trainer.iter + 1}; objective {model.objective} "
                f"learns depth only where it is valid"
            )
            raise TrainingStopped(
                f"{what}: training stopped and the last good checkpoint {out / CHECKPOINT_NAME} "
                f"(iteration {saver.last}) is kept. Check the data, lower train.base_lr, or "
                f"--resume to retry"
            ) from None
    elapsed = time.perf_counter() - start
    if rank != 0:
        return {}
    objective_metrics = {**model.metrics(dataset, device, t.seed, amp=amp), **encoder_health(model, health_batch)}
    return _finish(
        cfg,
        model,
        out,
        trainer.loss_history,
        elapsed,
        (max_iter - start_iter) * effective_batch,
        config_file,
        device,
        save_picture,
        objective_metrics,
    )


def build_dataset(data, names: list[str], model):
    """What the objective reads: overlapping posed frame pairs with patch matches when it needs `match`, else single
    augmented RGB-D frames (from packed shards when `data.packed` is set), with their semantic labels when it needs
    `sem_seg` (its `num_classes` checked against the datasets')."""
    if "match" in model.batch_keys:
        return PairDataset(
            dataset_dicts(names, posed=True),
            model.img_size,
            model.patch_size,
            min_overlap=data.min_overlap,
            color_jitter=data.color_jitter,
        )
    augment = dict(scale=data.scale, ratio=data.ratio, hflip=data.hflip, color_jitter=data.color_jitter)
    sem_seg = "sem_seg" in model.batch_keys
    if data.get("packed"):
        if sem_seg:
            raise ValueError(
                f"objective {model.objective!r} reads semantic labels, which a pack has none of; unset data.packed"
            )
        return PackedPretrainDataset(data.packed, model.img_size, **augment)
    dicts = dataset_dicts(names, sem_seg_classes=model.num_classes if sem_seg else None)
    return RGBDPretrainDataset(dicts, model.img_size, sem_seg=sem_seg, **augment)


def _resume(checkpointer, trainer, cfg, device) -> int:
    """Model, optimizer, loss history and RNG state from the run's last checkpoint; returns the iterations done.
    A checkpoint of other settings is refused before anything is loaded (an optimizer of another model would
    fail with a message that does not say why)."""
    path = checkpointer.get_checkpoint_file()
    saved = load_torch(path)
    ours = {**model_args(cfg), "data.names": parse_names(cfg.data.names)}
    theirs = {**saved["model_args"], "data.names": saved["data_names"]}
    del saved
    diff = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
    if diff:
        raise ValueError(
            f"{path} was trained with different settings ({', '.join(diff)}); choose another "
            f"train.output_dir for a new configuration"
        )
    extra = checkpointer.load(path)
    trainer.loss_history = [list(x) for x in extra["loss_history"]]
    torch.set_rng_state(extra["rng"]["torch"])
    if device.type == "cuda" and extra["rng"].get("cuda") is not None:
        torch.cuda.set_rng_state(extra["rng"]["cuda"], device)
    logger.info(f"resumed from {path} at iteration {extra['iteration']}")
    return int(extra["iteration"])


def _finish(
    cfg, model, out, loss_history, elapsed, images_done, config_file, device, save_picture, objective_metrics: dict
) -> dict:
    """Final picture and export, then metrics.json (with the objective's metrics, e.g. the hidden patches' depth
    errors in metres, and the encoder's health), the record and the finished marker (core.runs.finish)."""
    save_picture("reconstruction.png", len(loss_history))
    ckpt = out / CHECKPOINT_NAME
    save_torch(export_state(load_checkpoint(ckpt), str(ckpt)), out / "backbone.pth")
    losses = [v for _, v in loss_history]
    window = max(1, min(100, len(losses) // 10))
    metrics = {
        "loss": float(np.mean(losses[-window:])) if losses else None,
        "loss_start": float(np.mean(losses[:window])) if losses else None,
        "iterations": len(losses),
        "time_s": elapsed,
        "images_per_s": images_done / elapsed if elapsed > 0 else 0.0,
        "objective": model.objective,
        "backbone": model.arch()["backbone"],
        **objective_metrics,
    }
    step = max(1, math.ceil(len(loss_history) / 200))
    history = loss_history[::step]
    if history and history[-1] != loss_history[-1]:
        history = history[:199] + [loss_history[-1]]
    names = parse_names(cfg.data.names)
    record = runs.record(
        "pretrain",
        dataset="+".join(sorted({n.split("_")[0] for n in names})),
        task="pretrain",
        backbone=metrics["backbone"],
        objective=model.objective,
        init=Path(cfg.train.init_checkpoint).stem if cfg.train.init_checkpoint else "random",
        data_fraction=100,
        seed=int(cfg.train.seed),
        iterations=len(losses),
        metrics={
            **({"loss": metrics["loss"]} if losses else {}),
            **{k: v for k, v in objective_metrics.items() if isinstance(v, float)},
        },
        loss_history=history,
        wall_s=round(metrics["time_s"], 1),
        config_file=config_file,
        config_hash=runs.config_hash(cfg, HASH_IGNORES),
        device=device,
        output=out,
        tag=cfg.train.tag,
    )
    runs.finish(out, metrics, record, store.append_record)
    shown = "".join(f", {k} {v:.4g}" for k, v in objective_metrics.items() if isinstance(v, float))
    logger.info(
        f"done: {metrics['backbone']} {model.objective}, {len(losses)} iterations in {elapsed:.0f} s, loss "
        f"{_fmt(metrics['loss_start'])} -> {_fmt(metrics['loss'])} (means of the first and last {window} iterations)"
        f"{shown}, export {out / 'backbone.pth'}"
    )
    return metrics


def _fmt(x):
    return "n/a" if x is None else f"{x:.4f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pretrain", description="Masked RGB-D pre-training.")
    parser.add_argument("--config", default="pretrain/configs/default_cpu.py", help="LazyConfig Python file")
    parser.add_argument("--resume", action="store_true", help="continue the run in train.output_dir if any")
    parser.add_argument("--num-gpus", type=int, default=1, help="processes on this machine (or use torchrun)")
    parser.add_argument("overrides", nargs="*", help="key=value, e.g. model.rgb_mask_ratio=0.8")
    args = parser.parse_intermixed_args(argv)  # `--resume` may follow the overrides
    return cli.run(
        lambda: launch(train, args.num_gpus, args=(load_config(args.config, args.overrides), args.resume, args.config)),
        USER_ERRORS,
    )


if __name__ == "__main__":
    sys.exit(main())
