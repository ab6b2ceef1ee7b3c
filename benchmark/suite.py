"""`make bench-scannet | bench-nyu | bench-cityscapes`: fine-tune and evaluate one initialisation on a
dataset's semantic segmentation, instance segmentation/detection and (where the dataset has depth) monocular
depth estimation with the tiny configs, then print the metrics beside the paper's reference rows.

    python -m benchmark.suite {scannet,nyuv2,cityscapes} [--init SPEC] [--backbone vit_b|r50] [--iters N]

The default init is the newest `output/pretrain/*/backbone.pth` (`make pretrain`). ScanNet falls back to
the synthetic tree when ScanNet is not prepared; NYUv2 and Cityscapes have no stand-in and say which
command prepares them. Each run is a `benchmark.train_net` process with its own folder, so re-running
skips finished runs and resumes interrupted ones. Runs are single-threaded unless OMP_NUM_THREADS is set:
tiny models gain little from a second thread, and on a CPU shared with other work two spinning OpenMP
threads made them 5x slower in our measurements.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from detectron2.data import DatasetCatalog

from benchmark import inits
from benchmark.architecture import ArchitectureError, ResNetShape
from benchmark.backbones import backbone_name
from benchmark.evaluation import format_metric
from benchmark.train_net import (
    build_parser,
    init_id,
    load_config,
    require_registered,
    variant_name,
)
from core import cli, runs
from core.runs import RunError

REPO = Path(__file__).resolve().parent.parent
PAPER_CSV = REPO / "results" / "paper.csv"
PRETRAIN_EXPORTS = "output/pretrain/*/backbone.pth"
# dataset -> task -> (train, test) dataset names; `{p}` is the ScanNet-layout prefix (scannet or synthetic)
SPLITS = {
    "scannet": {
        "semseg": ("{p}_sem_seg_train", "{p}_sem_seg_val"),
        "insseg": ("{p}_instance_train", "{p}_instance_val"),
        "depth": ("{p}_depth_train", "{p}_depth_val"),
    },
    "nyuv2": {
        "semseg": ("nyuv2_sem_seg13_train", "nyuv2_sem_seg13_test"),
        "insseg": ("nyuv2_instance_train", "nyuv2_instance_test"),
        "depth": ("nyuv2_depth_train", "nyuv2_depth_test"),
    },
    "cityscapes": {
        "semseg": ("cityscapes_fine_sem_seg_train", "cityscapes_fine_sem_seg_val"),
        "insseg": ("cityscapes_fine_instance_seg_train", "cityscapes_fine_instance_seg_val"),
    },
}
# Tiny-recipe iterations per task (change them here); all runs of `make bench-scannet` take about 5 CPU minutes.
# Mask R-CNN needs the most: from random init on the synthetic tree (one thread) bbox AP was 0.15 % after 300
# iterations, 0.37 % after 600, 2.6 % after 1200 and 3.0 % after 1500, while halving the anchors, a 0.5x or 3x
# LR, larger RPN/RoI samples or no layer decay moved AP at 600-1200 iterations by less than the seed noise.
ITERS = {"semseg": 300, "insseg": 1500, "depth": 300}
# Lines of a run's console output worth showing live; everything is in the run's log.txt.
PROGRESS = ("eta:", "benchmark:", "copypaste:", "Overall training speed", "error")
SHOWN = {
    "semseg": ("sem_seg/mIoU", "sem_seg/fwIoU", "sem_seg/pACC"),
    "insseg": ("bbox/AP", "bbox/AP50", "segm/AP", "segm/AP50"),
    "depth": ("depth/AbsRel", "depth/RMSE", "depth/delta1"),
}


class SuiteError(RuntimeError):
    pass


def newest_export(root: Path = REPO) -> Path:
    exports = sorted(root.glob(PRETRAIN_EXPORTS), key=lambda p: p.stat().st_mtime)
    if not exports:
        raise SuiteError(
            f"no pre-trained backbone found ({PRETRAIN_EXPORTS}): run `make pretrain` first, or choose "
            "another initialisation, e.g. INIT=random, INIT=mae:PATH or a results/baselines.yaml name"
        )
    return exports[-1]


def resolve_names(dataset: str) -> tuple[str, dict]:
    """(dataset the runs use, task -> (train, test) names); ScanNet falls back to the synthetic tree."""
    import datasets.builtin as builtin  # registers what the data root holds

    for prefix in ("scannet", "synthetic") if dataset == "scannet" else (dataset,):
        names = {task: tuple(n.format(p=prefix) for n in pair) for task, pair in SPLITS[dataset].items()}
        if all(n in DatasetCatalog for pair in names.values() for n in pair):
            if prefix != dataset:
                print(
                    f"bench: ScanNet is not prepared under {os.path.abspath(builtin.data_root())}; using the "
                    f"synthetic tree instead (made by `make data-synthetic`)"
                )
            return prefix, names
    require_registered(n for pair in names.values() for n in pair)  # raises, naming the preparation command
    raise AssertionError("unreachable: some name above is unregistered")


def pick_backbone(spec: inits.InitSpec, requested: str | None, shape=None) -> str:
    """The config family: the one asked for, else the one the checkpoint's backbone fits (`shape`, from
    `inits.architecture`), else the baseline's declared backbone."""
    if requested:
        return requested
    if shape is not None:
        return "r50" if isinstance(shape, ResNetShape) else "vit_b"
    if spec.kind == "pri3d" or (spec.baseline_backbone or "").startswith("r"):
        return "r50"
    return "vit_b"


def run_one(dataset: str, task: str, family: str, names, init: str, converted, iters: int, output: Path) -> dict:
    """One `benchmark.train_net` process; its folder is named after the backbone actually trained (the
    checkpoint's own shape, or the tiny recipe's CPU-sized ViT for `random`), not after the config family.
    `converted` is the init already read once here, so the suite's process reads the file only once."""
    config = f"benchmark/configs/{dataset}/{task}_{family}.py"
    argv = [
        "--config-file",
        config,
        "--tiny",
        "--resume",
        "--init",
        init,
        f"dataloader.train.dataset.names={names[0]}",
        f"dataloader.test.dataset.names={names[1]}",
        f"train.max_iter={iters}",
        f"train.checkpointer.period={max(iters // 2, 1)}",
    ]
    cfg, spec, _ = load_config(build_parser().parse_args(argv), converted)
    backbone = backbone_name(cfg)
    out = output / names[1].split("_")[0] / variant_name(cfg, config, tiny=True) / init_id(spec) / "seed0"
    cmd = [sys.executable, "-m", "benchmark.train_net", *argv, f"train.output_dir={out}"]
    print(
        f"bench: {task}: {backbone} backbone, {config} shrunk by benchmark.tiny, {iters} iterations -> {out}",
        flush=True,
    )
    tail = []
    env = {"OMP_NUM_THREADS": "1", **os.environ}
    with subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            tail = (tail + [line])[-30:]
            if any(key in line for key in PROGRESS):
                print("  " + line.rstrip(), flush=True)
    if proc.returncode != 0 or runs.folder_state(out) != runs.FINISHED:
        errors = [line.strip() for line in tail if line.startswith("error: ")]
        if errors:  # a user error: train_net's one line says it all
            raise SuiteError(f"the {task} run stopped: {errors[-1].removeprefix('error: ')}")
        sys.stdout.write("".join(tail))
        raise SuiteError(f"the {task} run failed (last lines above); its log is {out / 'log.txt'}")
    return json.loads((out / "metrics.json").read_text())["record"]


def paper_rows(dataset: str, task: str, path: Path = PAPER_CSV) -> list[dict]:
    if not path.is_file():
        return []
    tasks = {"insseg", "det"} if task == "insseg" else {task}
    with open(path, newline="", encoding="utf-8") as f:
        return [
            r
            for r in csv.DictReader(f)
            if r["dataset"] == dataset
            and r["task"] in tasks
            and r["value"]
            and float(r.get("data_fraction") or 100) == 100
        ]


def report(dataset: str, used: str, records: list[dict], paper_csv: Path = PAPER_CSV) -> str:
    """Our metrics, one line each, with the paper's rows for the same dataset, task and metric."""
    lines = [f"{'task':7s} {'metric':13s} {'ours':>9s}  paper ({dataset}, full-size models; † = not verified)"]
    for record in records:
        refs = paper_rows(dataset, record["task"], paper_csv)
        for metric in SHOWN[record["task"]]:
            if metric not in record["metrics"]:
                continue
            cells = []
            for r in refs:
                if r["metric"] != metric:
                    continue
                mark = "" if r.get("verified") == "yes" else "†"
                value = f"+{r['value']} over {r['relative_to']}" if r.get("relative_to") else r["value"]
                cells.append(f"{r['method']} {r['backbone']} {value}{mark}")
            ours = format_metric(metric, record["metrics"][metric]).removeprefix(metric + " ")
            lines.append(f"{record['task']:7s} {metric:13s} {ours:>9s}  {' | '.join(cells) or '-'}")
    if used != dataset:
        lines.append(f"(ours: tiny models on the {used} tree, a pipeline check, not comparable to the paper)")
    elif records and records[0].get("tiny"):
        lines.append("(ours: tiny models, a pipeline check, not comparable to the paper's full-size recipes)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.suite", description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=sorted(SPLITS))
    parser.add_argument("--init", default=None, help=f"initialisation spec (default: the newest {PRETRAIN_EXPORTS})")
    parser.add_argument(
        "--backbone",
        choices=("vit_b", "r50"),
        default=None,
        help="config family (default: r50 for Pri3D / r50 baselines, else vit_b); the tiny recipe "
        "trains a CPU-sized ViT unless the init brings its own shape",
    )
    parser.add_argument("--iters", type=int, default=None, help=f"training iterations per task (default {ITERS})")
    parser.add_argument(
        "--tasks",
        nargs="+",
        choices=tuple(ITERS),
        default=None,
        help="which fine-tunings to run (default: every task the dataset has; Cityscapes has no depth)",
    )
    parser.add_argument("--output", default="output/bench", help="where the run folders go")
    args = parser.parse_args(argv)
    args.tasks = args.tasks or list(SPLITS[args.dataset])
    missing = [t for t in args.tasks if t not in SPLITS[args.dataset]]
    if missing:
        parser.error(f"{args.dataset} has no {', '.join(missing)} split; choose from {', '.join(SPLITS[args.dataset])}")
    return cli.run(
        lambda: bench(args),
        (SuiteError, RunError, inits.InitError, ArchitectureError),
        cli.RERUN_ADVICE,
        interrupted=cli.RERUN_HINT,
    )


def bench(args) -> None:
    """The suite of `main`'s arguments: fine-tunings in turn, then the report and a one-line summary."""
    start = time.perf_counter()
    init = args.init or f"mask3d:{newest_export().relative_to(REPO)}"
    spec = inits.parse(init)
    converted = inits.convert(spec)  # fails before any training on a wrong path or a bad file
    shape = inits.architecture(converted)
    used, names = resolve_names(args.dataset)
    family = pick_backbone(spec, args.backbone, shape)
    built = shape.describe() if shape else "the tiny recipe's CPU-sized backbone"
    print(f"bench: {args.dataset} ({used} data), init {init}: {built}; {family} configs, tiny recipe", flush=True)
    records = [
        run_one(args.dataset, task, family, names[task], init, converted, args.iters or ITERS[task], Path(args.output))
        for task in args.tasks
    ]
    print(report(args.dataset, used, records))
    summary = "; ".join(
        f"{r['task']} ({r['backbone']}) "
        + ", ".join(format_metric(m, r["metrics"][m]) for m in SHOWN[r["task"]][:2] if m in r["metrics"])
        for r in records
    )
    print(
        f"bench-{args.dataset}: {', '.join(args.tasks)} on {used} with init {spec.label} in "
        f"{time.perf_counter() - start:.0f} s: {summary}"
    )


if __name__ == "__main__":
    sys.exit(main())
