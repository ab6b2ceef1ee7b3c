"""Linear probes on a frozen encoder: semantic segmentation (mIoU) and monocular depth (AbsRel, delta<1.25).

    python -m benchmark.probe --init SPEC --dataset synthetic [--task semseg,depth] [--seed 0] [--like EXPORT]

Why: fine-tuning results depend on a recipe; a linear head on frozen tokens does not, so it compares encoders
on what they already hold. The init comes through `benchmark.inits` like every benchmark run; a Mask3D export
runs at its pre-training resolution and grid, where the benchmark's `GridViT` computes the encoder's features
exactly. `random` takes the shape (and frame size) of `--like EXPORT`, else `PROBE_VIT` at 96x128.

Recipe (fixed, our choice): the token features of every train and val frame are extracted once and kept in
memory, standardised per channel with the train statistics (MAE's linear probe puts a BatchNorm without
affine before the head for the same reason), then a 1x1 convolution is trained with AdamW, cosine schedule,
`RECIPE` epochs of shuffled mini-batches, zero-initialised. Its per-token output is bilinearly upsampled to
the frame: semantic logits with cross-entropy ignoring 255; depth as log metres with L1 on valid pixels. L1 on
log depth, not SILog, because a probe has to predict metric scale for AbsRel and delta1 to mean anything
(SILog leaves the scale partly free) and an L1 log error is a relative error robust to outliers. Evaluation
upsamples to each frame's label resolution: Detectron2's `SemSegEvaluator` and our `DepthEvaluator`, so the
numbers are defined exactly as the fine-tuning benchmark's.

Each task is one run folder `output/probe/<dataset>/<task>/<init>/seed<N>` ending with `metrics.json`, a
`kind: probe` record (`protocol: linear`) in the results store and the finished marker (`core.runs`). Its metrics
also carry the frozen encoder's health on the train frames (`pretrain.metrics.token_health`: output rms and the
share of the component shared by all tokens), so every init, `random` included, is measured on the same frames; the
evaluators' own logging (Detectron2's whole result dict) goes to its `log.txt`, and the console gets a line
per task and a summary.
Deterministic on CPU: the seed fixes the head's batches; features do not depend on it.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from detectron2.data import MetadataCatalog
from detectron2.evaluation import SemSegEvaluator
from omegaconf import OmegaConf
from torch import nn

import datasets.builtin
from benchmark import inits
from benchmark.architecture import ViTShape
from benchmark.backbones import STANDARD_VITS, GridViT
from benchmark.depth import read_depth_metres
from benchmark.depth_eval import DepthEvaluator
from benchmark.evaluation import format_metric, read_label_png, record_metrics
from benchmark.train_net import init_id
from core import cli, runs
from core.io import load_torch
from datasets.fileio import decode_image
from datasets.fileio import read_label_png as read_label_file
from pretrain.metrics import token_health
from results import store

TASKS = ("semseg", "depth")
# dataset -> (train split, evaluation split); the frames are the semantic split's, which carry depth too.
SPLITS = {"scannet": ("train", "val"), "synthetic": ("train", "val"), "nyuv2": ("train", "test")}
PROBE_VIT = dict(embed_dim=192, depth=6, num_heads=3, mlp_ratio=4.0, patch_size=8)  # the pilot's encoder
PROBE_SIZE = (96, 128)
RECIPE = dict(epochs=10, batch_size=16, lr=1e-2, weight_decay=1e-4)  # our choice: within 0.5 mIoU of 30 epochs
PIXEL_MEAN = (123.675, 116.28, 103.53)  # what the pre-training and the ViTDet configs normalise RGB with
PIXEL_STD = (58.395, 57.12, 57.375)


class ProbeError(ValueError):
    """A probe that cannot run as asked; the message says why and what to do."""


# --- the encoder ---------------------------------------------------------------------------------------
@dataclass
class Encoder:
    """A frozen feature function with the frame size it runs at and the names its record carries."""

    features: Callable[[torch.Tensor], torch.Tensor]  # (B, 3, H, W) uint8-range RGB -> (B, C, gh, gw)
    size: tuple[int, int]
    backbone: str
    init: str
    objective: str | None = None


class _Wrapper(nn.Module):
    """Lets `inits.load` find the ViT as it does inside a Detectron2 model."""

    def __init__(self, net: GridViT):
        super().__init__()
        self.net = net


def _export_shape(path: Path) -> tuple[dict, tuple[int, int]]:
    meta = load_torch(path, "Mask3D export").get("meta", {})
    missing = [k for k in (*inits.MASK3D_META, "img_size") if k not in meta]
    if missing:
        raise ProbeError(f"--like {path}: its meta lacks {missing}; pass a `python -m pretrain.export` file")
    return {k: meta[k] for k in inits.MASK3D_META}, tuple(meta["img_size"])


def build_encoder(spec: inits.InitSpec, like: Path | None = None) -> Encoder:
    """The frozen ViT of an init, at the resolution its features are exact for (a Mask3D export's `img_size`)."""
    converted = inits.convert(spec)
    shape, size, objective = inits.architecture(converted), PROBE_SIZE, None
    if converted is None:
        arch, size = _export_shape(like) if like else (dict(PROBE_VIT), PROBE_SIZE)
        arch.update(qkv_bias=True, pretrain_grid=(size[0] // arch["patch_size"], size[1] // arch["patch_size"]))
    elif isinstance(shape, ViTShape):
        arch = shape.vit_kwargs()  # the checkpoint's own shape (`benchmark.architecture`)
        if "img_size" in converted.meta:  # our exports: the resolution their features are exact for
            size, objective = tuple(converted.meta["img_size"]), converted.meta.get("objective")
    else:
        raise ProbeError(f"{spec.path} holds a {converted.target} backbone; the probes take ViT inits")
    torch.manual_seed(0)  # `random` is one fixed draw of Detectron2's initialisation
    net = GridViT(
        img_size=max(size),
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        window_size=0,
        use_rel_pos=False,
        **arch,
    )
    wrapper = _Wrapper(net)
    inits.load(wrapper, converted)
    net.eval().requires_grad_(False)
    mean, std = torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1), torch.tensor(PIXEL_STD).view(1, 3, 1, 1)

    def features(image):
        with torch.no_grad():
            return net((image.float() - mean) / std)[net._out_features[0]]

    name = STANDARD_VITS.get((arch["embed_dim"], arch["depth"]), f"vit_e{arch['embed_dim']}d{arch['depth']}")
    return Encoder(features, tuple(size), name, spec.label, objective)


# --- frames --------------------------------------------------------------------------------------------
@dataclass
class Frames:
    """A split's dicts with their features (N, C, gh, gw) and targets at the probe's frame size."""

    dicts: list[dict]
    features: torch.Tensor
    labels: torch.Tensor  # (N, H, W) int64, 255 = ignore
    depth: torch.Tensor  # (N, H, W) float32 metres, 0 = invalid


def _resize(img: np.ndarray, size, nearest: bool) -> np.ndarray:
    if img.shape[:2] == tuple(size):
        return img
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_AREA if img.shape[0] >= 2 * size[0] else cv2.INTER_LINEAR
    return cv2.resize(img, (size[1], size[0]), interpolation=interp)


def load_frames(dicts: list[dict], encoder: Encoder, batch_size: int = 32) -> Frames:
    """Read, resize and encode every frame once."""
    h, w = encoder.size
    feats, labels, depths = [], [], []
    for start in range(0, len(dicts), batch_size):
        images = []
        for d in dicts[start : start + batch_size]:
            if not d.get("sem_seg_file_name") or not d.get("depth_file_name"):
                raise ProbeError(f"frame {d['file_name']} lacks a label or depth file; the probes need both")
            bgr = decode_image(d["file_name"], cv2.IMREAD_COLOR)
            images.append(torch.from_numpy(np.ascontiguousarray(_resize(bgr, (h, w), False)[..., ::-1])))
            labels.append(
                torch.from_numpy(
                    _resize(read_label_file(d["sem_seg_file_name"], (np.uint8,)), (h, w), True).astype(np.int64)
                )
            )
            depths.append(torch.from_numpy(_resize(read_depth_metres(d["depth_file_name"]), (h, w), True)))
        feats.append(encoder.features(torch.stack(images).permute(0, 3, 1, 2)))
    return Frames(dicts, torch.cat(feats), torch.stack(labels), torch.stack(depths))


# --- the linear head -----------------------------------------------------------------------------------
class LinearProbe(nn.Module):
    """Per-channel standardisation with fixed train statistics, then a zero-initialised 1x1 convolution whose
    output is bilinearly upsampled to the requested size."""

    def __init__(self, train_features: torch.Tensor, out_channels: int, bias: float = 0.0):
        super().__init__()
        self.register_buffer("mean", train_features.mean((0, 2, 3), keepdim=True))
        self.register_buffer("std", train_features.std((0, 2, 3), keepdim=True).clamp(min=1e-6))
        self.head = nn.Conv2d(train_features.shape[1], out_channels, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.constant_(self.head.bias, bias)

    def forward(self, features: torch.Tensor, size) -> torch.Tensor:
        out = self.head((features - self.mean) / self.std)
        return F.interpolate(out, size=tuple(size), mode="bilinear", align_corners=False)


def semseg_loss(logits, labels):
    return F.cross_entropy(logits, labels, ignore_index=255, reduction="sum") / (labels != 255).sum().clamp(min=1)


def depth_loss(log_pred, depth, min_depth, max_depth):
    """L1 between log depths over pixels with a valid reading."""
    valid = (depth >= min_depth) & (depth <= max_depth)
    err = (log_pred[:, 0] - depth.clamp(min=min_depth).log()).abs()
    return (err * valid).sum() / valid.sum().clamp(min=1)


def fit(probe: LinearProbe, frames: Frames, loss_fn, seed: int, recipe=RECIPE) -> int:
    """AdamW with a cosine schedule over shuffled mini-batches; returns the number of steps."""
    opt = torch.optim.AdamW(probe.head.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"])
    n, bs = len(frames.dicts), recipe["batch_size"]
    steps = recipe["epochs"] * math.ceil(n / bs)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(seed)
    size = frames.labels.shape[1:]
    for _ in range(recipe["epochs"]):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, bs):
            idx = order[start : start + bs]
            loss = loss_fn(probe(frames.features[idx], size), idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return steps


# --- the two protocols ---------------------------------------------------------------------------------
def _eval_name(dataset: str, task: str, split: str) -> str:
    return f"{dataset}_{'sem_seg' if task == 'semseg' else 'depth'}_{split}"


def run_semseg(train: Frames, val: Frames, dataset: str, seed: int) -> tuple[dict, int]:
    split = SPLITS[dataset][1]
    classes = MetadataCatalog.get(f"{dataset}_sem_seg_train").stuff_classes
    probe = LinearProbe(train.features, len(classes))
    steps = fit(probe, train, lambda logits, idx: semseg_loss(logits, train.labels[idx]), seed)
    evaluator = SemSegEvaluator(
        _eval_name(dataset, "semseg", split), distributed=False, sem_seg_loading_fn=read_label_png
    )
    evaluator.reset()
    with torch.no_grad():
        for i, d in enumerate(val.dicts):
            logits = probe(val.features[i : i + 1], (d["height"], d["width"]))[0]
            evaluator.process([d], [{"sem_seg": logits}])
    return evaluator.evaluate(), steps


def run_depth(train: Frames, val: Frames, dataset: str, seed: int) -> tuple[dict, int]:
    name = _eval_name(dataset, "depth", SPLITS[dataset][1])
    meta = MetadataCatalog.get(name)
    lo, hi = meta.get("min_depth", 1e-3), meta.get("max_depth", 10.0)
    valid = (train.depth >= lo) & (train.depth <= hi)
    if not valid.any():
        raise ProbeError(f"{dataset}: no training frame has a depth reading in [{lo}, {hi}] m")
    probe = LinearProbe(train.features, 1, bias=float(train.depth[valid].log().mean()))
    steps = fit(probe, train, lambda log_pred, idx: depth_loss(log_pred, train.depth[idx], lo, hi), seed)
    evaluator = DepthEvaluator(name)
    evaluator.reset()
    with torch.no_grad():
        for i, d in enumerate(val.dicts):
            log_pred = probe(val.features[i : i + 1], (d["height"], d["width"]))[0, 0]
            evaluator.process([d], [{"depth": log_pred.exp()}])
    return evaluator.evaluate(), steps


RUNNERS = {"semseg": run_semseg, "depth": run_depth}


# --- runs ----------------------------------------------------------------------------------------------
def split_dicts(dataset: str) -> tuple[list[dict], list[dict]]:
    if dataset not in SPLITS:
        raise ProbeError(f"dataset {dataset!r} has no probe splits; choose one of {sorted(SPLITS)}")
    out = []
    for split in SPLITS[dataset]:
        try:
            out.append(datasets.builtin.get_dicts(f"{dataset}_sem_seg_{split}"))
        except KeyError as e:
            raise ProbeError(e.args[0]) from None
    return out[0], out[1]


def recipe_config(dataset: str, task: str, encoder: Encoder):
    """What the config hash covers: the protocol, its recipe, the data and the frame size (not the init)."""
    return OmegaConf.create(
        {
            "protocol": "linear",
            "task": task,
            "dataset": dataset,
            "recipe": RECIPE,
            "size": list(encoder.size),
            "splits": list(SPLITS[dataset]),
        }
    )


def run_folder(output_root: str, dataset: str, task: str, spec: inits.InitSpec, seed: int) -> Path:
    """`output/probe/<dataset>/<task>/<init>/seed<N>` (the README's Run folders), or under `output_root`."""
    root = Path(output_root) if output_root else runs.OUTPUT_ROOT / "probe"
    return root / dataset / task / init_id(spec) / f"seed{seed}"


def probe(
    init: str,
    dataset: str,
    tasks=TASKS,
    seed: int = 0,
    like: str | None = None,
    output_root: str = "",
    tag: str = "",
    encoder: Encoder | None = None,
) -> list[dict]:
    """Run the probes `tasks` of one init; returns their records (stored ones for finished run folders).
    `encoder` replaces the init's (tests)."""
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ProbeError(f"unknown probe task(s) {unknown}; choose from {list(TASKS)}")
    spec = inits.parse(init)
    inits.require_file(spec)
    folders = {t: run_folder(output_root, dataset, t, spec, seed) for t in tasks}
    records, todo = {}, []
    for task, out in folders.items():
        if runs.claim(out, resume=False) == runs.FINISHED:
            records[task] = json.loads((out / "metrics.json").read_text())["record"]
            print(f"probe: {out} is finished; use another --output-dir to probe again")
        else:
            todo.append(task)
    if not todo:
        return [records[t] for t in tasks]
    train_dicts, val_dicts = split_dicts(dataset)
    encoder = encoder or build_encoder(spec, Path(like) if like else None)
    torch.manual_seed(seed)
    start = time.perf_counter()
    train, val = load_frames(train_dicts, encoder), load_frames(val_dicts, encoder)
    extract_s = time.perf_counter() - start
    health = token_health(train.features.flatten(2).transpose(1, 2))
    print(f"probe: features of {len(train_dicts)} train + {len(val_dicts)} val frames in {extract_s:.1f} s", flush=True)
    for task in todo:
        out = folders[task]
        out.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        with evaluator_log(out):
            results, steps = RUNNERS[task](train, val, dataset, seed)
        fit_s = time.perf_counter() - start
        record = runs.record(
            "probe",
            dataset=dataset,
            split=SPLITS[dataset][1],
            task=task,
            protocol="linear",
            backbone=encoder.backbone,
            init=encoder.init,
            objective=encoder.objective,
            seed=seed,
            data_fraction=100,
            iterations=steps,
            metrics={**record_metrics(results), **health},
            wall_s=round(extract_s / len(todo) + fit_s, 1),  # the features are shared by this run's tasks
            config_file=None,
            config_hash=runs.config_hash(recipe_config(dataset, task, encoder), {}),
            device="cpu",
            output=out,
            tag=tag,
        )
        runs.finish(out, {"record": record, "extract_s": extract_s, "fit_s": fit_s}, record, store.append_record)
        shown = SHOWN[task]
        objective = f" ({encoder.objective})" if encoder.objective else ""
        print(
            f"probe {task} on {dataset} {record['split']}, {encoder.backbone} init {encoder.init}{objective}: "
            + ", ".join(format_metric(m, record["metrics"][m]) for m in shown)
            + f" (features {extract_s:.1f} s, head {fit_s:.1f} s) -> {out / 'metrics.json'}"
        )
        records[task] = record
    return [records[t] for t in tasks]


@contextmanager
def evaluator_log(out: Path) -> Iterator[None]:
    """Detectron2's evaluators log their whole result dict (per-class IoUs as numpy scalars): into the run's
    log.txt, not onto the console."""
    handler = logging.FileHandler(out / "log.txt", encoding="utf-8")
    handler.setFormatter(logging.Formatter("[%(asctime)s %(name)s]: %(message)s"))
    log = logging.getLogger("detectron2")
    saved = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        yield
    finally:
        log.removeHandler(handler)
        handler.close()
        log.level, log.propagate = saved


SHOWN = {"semseg": ("sem_seg/mIoU", "sem_seg/pACC"), "depth": ("depth/AbsRel", "depth/delta1")}


def summary(records: list[dict], seconds: float) -> str:
    """The command's last line: each task's headline numbers as plain text."""
    first = records[0]
    objective = f" ({first['objective']})" if first.get("objective") else ""
    shown = [(m, r["metrics"][m]) for r in records for m in SHOWN[r["task"]] if m in r["metrics"]]
    scores = ", ".join(format_metric(m, value) for m, value in shown)
    return (
        f"probe: {first['backbone']} init {first['init']}{objective} on {first['dataset']} {first['split']} in "
        f"{seconds:.0f} s: {scores}"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.probe", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--init",
        required=True,
        metavar="SPEC",
        help="random, mask3d:PATH, mae:PATH, ... (benchmark.inits) or a results/baselines.yaml name",
    )
    parser.add_argument("--dataset", required=True, choices=sorted(SPLITS))
    parser.add_argument("--task", default=",".join(TASKS), help="comma-separated: semseg, depth (default both)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--like",
        default=None,
        metavar="EXPORT",
        help="random init: take the ViT shape and frame size of this pretrain export",
    )
    parser.add_argument("--output-dir", default="", help="root of the run folders (default output/probe)")
    parser.add_argument("--tag", default="", help="free text stored with the records")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    tasks = [t.strip() for t in args.task.split(",") if t.strip()]
    start = time.perf_counter()

    def run():
        records = probe(args.init, args.dataset, tasks, args.seed, args.like, args.output_dir, args.tag)
        print(summary(records, time.perf_counter() - start))

    return cli.run(
        run, (ProbeError, inits.InitError, runs.RunError, OSError), cli.RERUN_ADVICE, interrupted=cli.RERUN_HINT
    )


if __name__ == "__main__":
    sys.exit(main())
