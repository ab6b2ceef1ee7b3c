"""Fine-tune and evaluate one benchmark config, in the manner of Detectron2's `lazyconfig_train_net.py`.

    python -m benchmark.train_net --config-file benchmark/configs/scannet/semseg_vit_b.py \
        [--init SPEC] [--tiny] [--num-gpus N] [--resume] [--eval-only] [key=value ...]

`--init` takes a `benchmark.inits` spec (`random`, `mask3d:PATH`, `mae:PATH`, a baseline name, ...) and
sets `train.init`; `--tiny` applies `benchmark.tiny` (CPU-sized variant). The run folder gets Detectron2's
config.yaml, log.txt, TensorBoard events (`train_log.json` holds the training scalars), checkpoints
written atomically, and finally `metrics.json`, one record in the results store and the finished marker
(`core.runs`). A finished run is reported and never trained again; one with checkpoints but no marker
continues with `--resume` and is otherwise refused. `--eval-only` writes `metrics_eval.json` (its record
has `mode: eval`), never marks a run finished and adds nothing to the store.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import sys
import time
from pathlib import Path

import detectron2
import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.engine import (
    AMPTrainer,
    SimpleTrainer,
    create_ddp_model,
    default_argument_parser,
    hooks,
)
from detectron2.engine.defaults import CommonMetricPrinter, JSONWriter, TensorboardXWriter
from detectron2.evaluation import inference_on_dataset, print_csv_format
from detectron2.utils import comm
from detectron2.utils.env import seed_all_rng
from detectron2.utils.logger import setup_logger

import datasets.builtin  # noqa: F401  (registers every prepared dataset under the data root)
from benchmark import architecture, inits
from benchmark.architecture import ArchitectureError
from benchmark.backbones import backbone_name, fit_pyramid, is_vit
from benchmark.evaluation import format_metric, record_metrics, task_of
from benchmark.loading import build_loader
from benchmark.tiny import make_tiny
from core import cli, overrides, runs
from core.checkpoint import AtomicCheckpointer
from core.distributed import launch
from core.io import CheckpointError, write_json
from core.runs import RunError
from datasets.fileio import DataError
from results import store

logger = logging.getLogger("benchmark")
# Where a run goes, its init and its seed are not part of the recipe: repeats share the config hash.
USER_ERRORS = (RunError, CheckpointError, inits.InitError, ArchitectureError, DataError)
HASH_IGNORES = {"train.output_dir": "", "train.init": "", "train.seed": 0, "dataloader.evaluator.output_dir": None}
FOLDER_KEYS = ("train.output_dir", "dataloader.evaluator.output_dir")  # where a run writes is not a setting


def build_parser():
    parser = default_argument_parser(epilog=__doc__)
    parser.add_argument(
        "--init",
        default=None,
        metavar="SPEC",
        help="initialisation (sets train.init): random, mask3d:PATH, mae:PATH, timm:PATH, "
        "supervised:PATH, multimae:PATH, pri3d:PATH, d2:PATH or a results/baselines.yaml name",
    )
    parser.add_argument("--tiny", action="store_true", help="the config's CPU-sized variant (benchmark.tiny)")
    parser.add_argument(
        "--allow-missing-init",
        action="store_true",
        help="train backbone weights the init file lacks from scratch instead of failing",
    )
    parser.add_argument("--tag", default="", help="free text stored with the result record")
    return parser


# --- configuration -------------------------------------------------------------------------------------
def load_config(args, converted=None):
    """The config as it will run: file, the init's backbone shape, tiny variant, command-line overrides, `--init`.

    One pass: the init is parsed and its architecture read first (`converted`, when the caller has already
    read the file), so the config is built in that shape and the tiny recipe shrinks only frames and lengths.
    Returns (config, init spec, converted weights).
    """
    if not args.config_file or not Path(args.config_file).is_file():
        raise RunError(f"config file {args.config_file!r} not found; see benchmark/configs/<dataset>/")
    cfg = LazyConfig.load(args.config_file)
    opts = args.opts or []
    init = args.init or overrides.apply(copy.deepcopy(cfg), opts, args.config_file).train.init
    spec = inits.parse(init)
    converted = inits.convert(spec) if converted is None else converted
    shape = inits.architecture(converted)
    where = f"init {spec.label} ({spec.path})"
    if shape is not None:
        architecture.apply(cfg, shape, where)
    if args.tiny:
        make_tiny(cfg, keep_backbone=shape is not None)
    cfg = overrides.apply(cfg, opts, args.config_file)
    overrides.require_counts(cfg, ("train.max_iter", "train.checkpointer.period", "train.log_period"), args.config_file)
    cfg.train.init = init
    if shape is not None:
        architecture.check(cfg, shape, where)
    if cfg.train.get("init_checkpoint"):
        raise RunError("train.init_checkpoint is not used here: pass --init d2:PATH (checked, converted loading)")
    fit_pyramid(cfg)
    return cfg, spec, converted


def _names(names) -> list[str]:
    return [names] if isinstance(names, str) else list(names)


def require_registered(names) -> None:
    """An absent dataset is a RunError carrying datasets.builtin's message, which names the preparation command."""
    for name in names:
        if name not in DatasetCatalog:
            try:
                datasets.builtin.get_dicts(name)
            except KeyError as e:
                raise RunError(e.args[0]) from None


def sync_with_dataset(cfg) -> None:
    """Class counts and ignore label come from the training set's metadata, never from a stale literal."""
    require_registered(_names(cfg.dataloader.train.dataset.names) + _names(cfg.dataloader.test.dataset.names))
    meta = MetadataCatalog.get(_names(cfg.dataloader.train.dataset.names)[0])
    if "sem_seg_head" in cfg.model:
        cfg.model.sem_seg_head.num_classes = len(meta.stuff_classes)
        cfg.model.sem_seg_head.ignore_value = meta.get("ignore_label", 255)
    if "roi_heads" in cfg.model:
        cfg.model.roi_heads.num_classes = len(meta.thing_classes)


def init_id(spec: inits.InitSpec) -> str:
    """Folder-safe name of an initialisation; a file's content identity is folded in, so re-exported
    weights at the same path get a fresh run folder instead of a stale finished one."""
    if spec.path is None:
        return spec.label
    stat = spec.path.stat()
    digest = hashlib.sha1(f"{spec.path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:8]
    return f"{spec.label}-{digest}"


def variant_name(cfg, config_file: str, tiny: bool) -> str:
    """The config's name with the ViT actually built (the tiny recipe and exports change its shape), so a
    folder called `semseg_vit_b` never holds a smaller model; `_tiny` marks the tiny recipe."""
    stem = Path(config_file).stem
    if is_vit(cfg):
        stem = stem.replace("vit_b", backbone_name(cfg))
    return stem + ("_tiny" if tiny else "")


def default_output_dir(cfg, config_file: str, spec: inits.InitSpec, tiny: bool) -> Path:
    test = _names(cfg.dataloader.test.dataset.names)[0]
    return runs.output_dir(
        "", "bench", test.split("_")[0], variant_name(cfg, config_file, tiny), init_id(spec), f"seed{cfg.train.seed}"
    )


# --- running -------------------------------------------------------------------------------------------
def evaluate(cfg, model) -> dict:
    return inference_on_dataset(model, build_loader(cfg.dataloader.test), instantiate(cfg.dataloader.evaluator))


def _json_safe(results: dict) -> dict:
    return {
        k: (_json_safe(v) if isinstance(v, dict) else (float(v) if math.isfinite(v) else None))
        for k, v in results.items()
    }


CURVE_METRICS = {"semseg": "sem_seg/mIoU", "depth": "depth/AbsRel", "insseg": "segm/AP", "det": "bbox/AP"}


def eval_curve(out: Path, task: str, iterations: int, final: dict) -> list[list[float]]:
    """[[iteration, value], ...] of the task's headline metric at each periodic evaluation (`train.eval_period`),
    read back from train_log.json, where Detectron2's EvalHook left them, so a resumed run keeps its earlier
    points; the final evaluation closes the curve."""
    key, points = CURVE_METRICS[task], {}
    log = out / "train_log.json"
    if log.is_file():
        for line in log.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # a line cut by an interruption
                continue
            if key in row:
                points[int(row["iteration"]) + 1] = float(row[key])
    if key in final:
        points[int(iterations)] = float(final[key])
    return [[i, points[i]] for i in sorted(points)]


def build_record(
    cfg, args, spec: inits.InitSpec, results: dict, iterations: int, out: Path, chash: str, wall_s: float
) -> dict:
    train_name = _names(cfg.dataloader.train.dataset.names)[0]
    test_name = _names(cfg.dataloader.test.dataset.names)[0]
    task, metrics = task_of(results), record_metrics(results)
    curve = eval_curve(out, task, iterations, metrics) if cfg.train.eval_period > 0 and not args.eval_only else None
    return runs.record(
        "finetune",
        mode="eval" if args.eval_only else "train",
        dataset=test_name.split("_")[0],
        split=test_name.rsplit("_", 1)[-1],
        task=task,
        backbone=backbone_name(cfg),
        architecture=architecture.of_config(cfg).describe(),
        init=spec.label,
        seed=int(cfg.train.seed),
        data_fraction=float(MetadataCatalog.get(train_name).get("data_fraction", 100)),
        iterations=int(iterations),
        metrics=metrics,
        **({"curve": curve} if curve else {}),
        wall_s=round(wall_s, 1),  # this process only: a resumed run counts its last part
        tiny=bool(args.tiny),
        config_file=str(args.config_file),
        config_hash=chash,
        device=cfg.train.device,
        output=out,
        tag=args.tag,
    )


def metrics_file(args) -> str:
    return "metrics_eval.json" if args.eval_only else "metrics.json"


def finish(cfg, args, spec, results: dict, iterations: int, out: Path, chash: str, wall_s: float) -> dict:
    """A training run ends finished, with its record in the store; an evaluation only writes metrics_eval.json."""
    record = build_record(cfg, args, spec, results, iterations, out, chash, wall_s)
    saved = {"results": _json_safe(results), "record": record}
    if args.eval_only:
        write_json(out / metrics_file(args), saved)
    else:
        runs.finish(out, saved, record, store.append_record)
    return record


def _text_only(record: logging.LogRecord) -> bool:
    """The console's filter: `SemSegEvaluator` logs its whole result dict (numpy scalars, per-class IoUs), which
    only log.txt keeps; the console gets the formatted tables and the summary line."""
    return isinstance(record.msg, str)


def setup(cfg, args, out: Path) -> None:
    """Detectron2's `default_setup` without its environment dump (PyTorch's build settings and a
    `detectron2._C not built` line on every run; `make doctor` says once what the stack is and what replaces
    `_C`): loggers, one line of versions, config.yaml, seeds, cuDNN benchmark."""
    rank = comm.get_rank()
    for name in ("fvcore", "detectron2", "benchmark"):
        for handler in setup_logger(str(out), distributed_rank=rank, name=name).handlers:
            if getattr(handler, "stream", None) is sys.stdout:
                handler.addFilter(_text_only)
    logger.info(
        f"rank {rank} of {comm.get_world_size()}; torch {torch.__version__}, detectron2 "
        f"{detectron2.__version__}; {' '.join(sys.argv)}"
    )
    if comm.is_main_process():
        runs.save_config(cfg, out)
    seed = cfg.train.seed
    seed_all_rng(None if seed < 0 else seed + rank)
    if not args.eval_only:
        torch.backends.cudnn.benchmark = cfg.train.get("cudnn_benchmark", False)


def worker(args):
    cfg, spec, converted = load_config(args)
    sync_with_dataset(cfg)
    if cfg.train.device.startswith("cuda") and not torch.cuda.is_available():
        raise RunError("no CUDA device here: pass train.device=cpu to run anyway (slow), or --tiny")
    out = Path(cfg.train.output_dir or default_output_dir(cfg, args.config_file, spec, args.tiny))
    cfg.train.output_dir = str(out)
    cfg.dataloader.evaluator.output_dir = str(out / "inference")
    with runs.held(out, comm.is_main_process()):  # one process per run folder, for the run's life
        return _worker_in(cfg, args, spec, converted, out)


def _worker_in(cfg, args, spec, converted, out: Path):
    state = runs.claim(out, resume=args.resume or args.eval_only, clean=comm.is_main_process())
    if state == runs.FINISHED and not args.eval_only:
        runs.refuse_changed(cfg, out, ignore=FOLDER_KEYS)
        record = json.loads((out / "metrics.json").read_text())["record"]
        print(f"benchmark: {out} is finished ({_summary(record)}); use another train.output_dir to train again")
        return record
    resuming = args.resume and state != runs.NEW
    with runs.logging_scope("detectron2", "fvcore", "benchmark"):
        setup(cfg, args, out)
        try:
            with cli.one_line_in_logs(USER_ERRORS):
                return _run(cfg, args, spec, converted, out, resuming)
        except Exception as e:
            message = cli.user_message(e, USER_ERRORS)
            if message is not None and comm.is_main_process():
                cli.log_to_file(out, message)
            raise


def _run(cfg, args, spec, converted, out: Path, resuming: bool):
    chash = runs.config_hash(cfg, HASH_IGNORES)
    start = time.perf_counter()
    model = instantiate(cfg.model).to(cfg.train.device)
    logger.info(f"{backbone_name(cfg)} {type(model).__name__}, init {spec.label}, {cfg.train.max_iter} iterations")

    if args.eval_only:
        checkpointer = AtomicCheckpointer(model, str(out))
        iterations = 0
        if resuming:
            iterations = checkpointer.resume_or_load("", resume=True).get("iteration", -1) + 1
        else:
            inits.load(model, converted, allow_missing=args.allow_missing_init)
        results = evaluate(cfg, model)
    else:
        if not resuming:
            inits.load(model, converted, allow_missing=args.allow_missing_init)
        results = train(cfg, model, out, resuming)
        iterations = cfg.train.max_iter

    if not comm.is_main_process():
        return None
    print_csv_format(results)
    wall_s = time.perf_counter() - start
    record = finish(cfg, args, spec, results, iterations, out, chash, wall_s)
    print(f"benchmark: {_summary(record)} in {wall_s:.0f} s -> {out / metrics_file(args)}")
    return record


def train(cfg, model, out: Path, resuming: bool) -> dict:
    on_cpu = not cfg.train.device.startswith("cuda")  # CPU DDP (gloo) takes no device_ids
    model = create_ddp_model(model, **cfg.train.ddp, **({"device_ids": None} if on_cpu else {}))
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    use_amp = cfg.train.amp.enabled and cfg.train.device.startswith("cuda")
    trainer = (AMPTrainer if use_amp else SimpleTrainer)(model, build_loader(cfg.dataloader.train), optimizer)
    checkpointer = AtomicCheckpointer(model, str(out), trainer=trainer)
    writers = [
        CommonMetricPrinter(cfg.train.max_iter),
        JSONWriter(str(out / "train_log.json")),
        TensorboardXWriter(str(out)),
    ]
    trainer.register_hooks(
        [
            hooks.IterationTimer(),
            hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
            hooks.PeriodicCheckpointer(checkpointer, **cfg.train.checkpointer) if comm.is_main_process() else None,
            hooks.EvalHook(cfg.train.eval_period, lambda: evaluate(cfg, model), eval_after_train=False)
            if cfg.train.eval_period > 0
            else None,
            hooks.PeriodicWriter(writers, period=cfg.train.log_period) if comm.is_main_process() else None,
        ]
    )
    start_iter = 0
    if resuming:
        checkpointer.resume_or_load("", resume=True)
        start_iter = trainer.iter + 1
    trainer.train(start_iter, cfg.train.max_iter)
    return evaluate(cfg, model)


def _summary(record: dict) -> str:
    shown = [
        k
        for k in (
            "sem_seg/mIoU",
            "sem_seg/fwIoU",
            "sem_seg/pACC",
            "bbox/AP",
            "bbox/AP50",
            "segm/AP",
            "segm/AP50",
            "depth/AbsRel",
            "depth/RMSE",
            "depth/delta1",
        )
        if k in record["metrics"]
    ]
    metrics = ", ".join(format_metric(k, record["metrics"][k]) for k in shown)
    return (
        f"{record['task']} on {record['dataset']} {record['split']}, {record['backbone']} init {record['init']}: "
        f"{metrics}"
    )


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return cli.run(
        lambda: launch(
            worker,
            args.num_gpus,
            num_machines=args.num_machines,
            machine_rank=args.machine_rank,
            dist_url=args.dist_url,
            args=(args,),
        ),
        USER_ERRORS,
    )


if __name__ == "__main__":
    sys.exit(main())
