"""Typed records of the runs a campaign is made of.

A job is one `python -m MODULE ARGS` command. Whether it is finished is read from the files its tool writes
last (a run's finished marker, `core.runs.FINISHED_MARKER`, written after its metrics and record), never from
its console output, so a campaign can be listed, skipped or resumed from its folders
alone. A run whose folder is gone but whose record is in the campaign's store (a clean clone of a committed
campaign) is finished as well, so extending a committed campaign reruns nothing it already measured. A job names
the jobs it needs; the runner starts it once they are done and skips it if one failed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from core.runs import FINISHED_MARKER
from results.store import REPO_ROOT, append_record, read_records

# The metrics a finished fine-tune's progress line shows, where its record has them.
HEADLINE_METRICS = ("sem_seg/mIoU", "bbox/AP", "segm/AP", "depth/delta1", "depth/AbsRel")


@dataclass(frozen=True, kw_only=True)
class Job:
    name: str  # unique in its campaign; names its log file
    stage: str = "run"  # what kind of work, for the progress lines
    needs: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def requires(self) -> tuple[str, ...]:
        return self.needs

    def command(self) -> list[str]:
        """The interpreter's arguments, e.g. `["-m", "pretrain", ...]`."""
        raise NotImplementedError

    def environment(self) -> Mapping[str, str]:
        return self.env

    def outputs(self) -> tuple[Path, ...]:
        """Files that exist once the job is finished; a job without any runs every time."""
        return ()

    def finished(self) -> bool:
        outputs = self.outputs()
        return bool(outputs) and all(p.is_file() for p in outputs)

    def collect(self) -> str:
        """Called once the job is finished (now or by an earlier invocation): stores what the campaign keeps
        of it, without storing anything twice, and returns a one-line result."""
        return ""


@dataclass(frozen=True, kw_only=True)
class CommandJob(Job):
    """A tool that is safe to run again and keeps no run folder, e.g. data generation or a report."""

    module: str
    args: tuple[str, ...] = ()

    def command(self) -> list[str]:
        return ["-m", self.module, *self.args]


def portable(path) -> str:
    """A path as committed records keep it: relative to the repository when inside it (no machine's layout)."""
    try:
        return Path(path).resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


@dataclass(frozen=True, kw_only=True)
class RunJob(Job):
    """A run with a folder `out_dir` whose tool appends its records to `out_dir/record.jsonl`; `collect` copies
    them to the campaign's `store` with `labels` added and paths made repository-relative, each record once."""

    out_dir: Path
    labels: Mapping[str, object] = field(default_factory=dict)
    store: Path | None = None  # None: the default store ($MASK3D_RESULTS, else output/runs.jsonl)

    def environment(self) -> Mapping[str, str]:
        return {**self.env, "MASK3D_RESULTS": str(self.out_dir / "record.jsonl")}

    def own_records(self) -> list[dict]:
        """The run's records, last one per output folder (a crash before the finished marker repeats one)."""
        path = self.out_dir / "record.jsonl"
        latest = {r["output_dir"]: r for r in read_records(path)} if path.is_file() else {}
        return list(latest.values())

    def stored(self) -> list[dict]:
        """The run's records already in the campaign's store (they name its folder or one inside it)."""
        if self.store is None or not Path(self.store).is_file():
            return []
        folder = portable(self.out_dir)
        return [r for r in read_records(self.store) if f"{r.get('output_dir')}/".startswith(f"{folder}/")]

    def records(self) -> list[dict]:
        """The run's records as the campaign stores them: from its folder, else those already stored."""
        own = self.own_records()
        return [self.labelled(r) for r in own] if own else self.stored()

    def labelled(self, record: dict) -> dict:
        return dict(record, output_dir=portable(record["output_dir"]), **self.labels)

    def store_records(self) -> list[dict]:
        stored = {(r.get("output_dir"), r.get("tag"), r.get("task")) for r in read_records(self.store)}
        records = self.records()
        for record in records:
            if (record["output_dir"], record.get("tag"), record.get("task")) not in stored:
                append_record(record, self.store)
        return records


@dataclass(frozen=True, kw_only=True)
class PretrainJob(RunJob):
    """`python -m pretrain` in `out_dir`; finished once the export and the run's finished marker exist."""

    config: str
    overrides: tuple[str, ...] = ()
    stage: str = "pretrain"
    export_needed: bool = True  # False: a stored record finishes it (no unfinished job reads its export)

    @property
    def export(self) -> Path:
        return self.out_dir / "backbone.pth"

    def command(self) -> list[str]:
        return [
            "-m",
            "pretrain",
            "--config",
            self.config,
            "--resume",
            *self.overrides,
            f"train.output_dir={self.out_dir}",
        ]

    def outputs(self) -> tuple[Path, ...]:
        return self.out_dir / FINISHED_MARKER, self.export

    def finished(self) -> bool:
        return super().finished() or (not self.export_needed and bool(self.stored()))

    def metrics(self) -> dict:
        return json.loads((self.out_dir / "metrics.json").read_text())

    def collect(self) -> str:
        records = self.store_records()
        path = self.out_dir / "metrics.json"
        m = self.metrics() if path.is_file() else dict(records[-1]["metrics"], iterations=records[-1]["iterations"])
        start, end = (m.get(k) for k in ("loss_start", "loss"))
        if start is None or end is None:  # `none` trains nothing: it exports its initialisation
            return f"{m.get('iterations')} iterations (no loss)"
        return f"loss {start:.4f} -> {end:.4f}, {m.get('iterations')} iterations"


@dataclass(frozen=True, kw_only=True)
class ProbeJob(RunJob):
    """`python -m benchmark.probe` of one init (a pre-training's export, or `init` itself) on `tasks`; finished
    once the run folder's store holds a record of every task."""

    init: str = "random"
    pretrain: PretrainJob | None = None
    dataset: str = "synthetic"
    tasks: tuple[str, ...] = ("semseg", "depth")
    seed: int = 0
    tag: str = ""
    stage: str = "probe"

    @property
    def requires(self) -> tuple[str, ...]:
        return self.needs + ((self.pretrain.name,) if self.pretrain else ())

    def command(self) -> list[str]:
        init = f"mask3d:{self.pretrain.export}" if self.pretrain else self.init
        return [
            "-m",
            "benchmark.probe",
            "--init",
            init,
            "--dataset",
            self.dataset,
            "--task",
            ",".join(self.tasks),
            "--seed",
            str(self.seed),
            "--output-dir",
            str(self.out_dir),
            "--tag",
            self.tag,
        ]

    def finished(self) -> bool:
        return {r.get("task") for r in self.records()} >= set(self.tasks)

    def collect(self) -> str:
        records = {r["task"]: r["metrics"] for r in self.store_records()}
        shown = {"semseg": ("sem_seg/mIoU",), "depth": ("depth/AbsRel", "depth/delta1")}
        return ", ".join(
            f"{k} {m[k]:.3g}" for task, m in sorted(records.items()) for k in shown.get(task, ()) if k in m
        )


@dataclass(frozen=True, kw_only=True)
class FinetuneJob(RunJob):
    """`python -m benchmark.train_net` (fine-tune, then evaluate) in `out_dir`; finished once its finished
    marker exists. With `grid`, the learning rate and layer decay are those of the grid run with the best
    headline metric (chosen when the job starts, after the grid's runs are done) and are added to the labels."""

    config: str
    init: str = "random"  # an init spec (benchmark/inits.py); `pretrain`'s export when that is set
    pretrain: PretrainJob | None = None
    train_set: str | None = None  # a registered dataset name; None keeps the config's
    seed: int = 0
    tiny: bool = False
    tag: str = ""
    overrides: tuple[str, ...] = ()
    grid: tuple[FinetuneJob, ...] = ()
    stage: str = "finetune"

    @property
    def requires(self) -> tuple[str, ...]:
        return self.needs + ((self.pretrain.name,) if self.pretrain else ()) + tuple(g.name for g in self.grid)

    def recipe(self) -> dict:
        """`lr` and `layer_decay` of the grid's best cell, by its mean score over the cell's seeds ({} without a
        grid or before it is done); ties go to the cell listed first."""
        if not self.grid:
            return {}
        if not all(job.finished() for job in self.grid):
            return {}  # a listing before the grid ran; the runner starts this job only once its grid is done
        cells: dict[tuple, list[float]] = {}
        for job in self.grid:
            cells.setdefault((job.labels["lr"], job.labels["layer_decay"]), []).append(job.score())
        lr, decay = max(cells, key=lambda cell: (sum(cells[cell]) / len(cells[cell]), -list(cells).index(cell)))
        return {"lr": lr, "layer_decay": decay}

    def score(self) -> float:
        metrics = self.records()[-1]["metrics"]
        return next(metrics[k] for k in HEADLINE_METRICS if k in metrics)

    def command(self) -> list[str]:
        init = f"mask3d:{self.pretrain.export}" if self.pretrain else self.init
        train_set = [f"dataloader.train.dataset.names={self.train_set}"] if self.train_set else []
        recipe = self.recipe()
        if recipe:
            chosen = [f"optimizer.lr={recipe['lr']}", f"optimizer.params.lr_factor_func.rate={recipe['layer_decay']}"]
        else:
            chosen = ["<the lr and layer decay of its grid's best run>"] if self.grid else []
        return [
            "-m",
            "benchmark.train_net",
            "--config-file",
            self.config,
            *(["--tiny"] if self.tiny else []),
            "--resume",
            "--init",
            init,
            "--tag",
            self.tag,
            *train_set,
            f"train.seed={self.seed}",
            *self.overrides,
            *chosen,
            f"train.output_dir={self.out_dir}",
        ]

    def outputs(self) -> tuple[Path, ...]:
        return (self.out_dir / FINISHED_MARKER,)

    def finished(self) -> bool:
        return super().finished() or bool(self.stored())

    def record(self) -> dict:
        """The run's record as the campaign stores it."""
        return self.records()[-1]

    def labelled(self, record: dict) -> dict:
        record = super().labelled(record) | self.recipe()
        if self.pretrain:
            record["pretrain"] = {
                "output_dir": portable(self.pretrain.out_dir),
                "iterations": self.pretrain.metrics().get("iterations"),
            }
        return record

    def collect(self) -> str:
        record = self.store_records()[-1]
        return ", ".join(f"{k} {record['metrics'][k]:.2f}" for k in HEADLINE_METRICS if k in record["metrics"])


def needed_exports(jobs: list[Job]) -> list[Job]:
    """`jobs` with `export_needed` of each pre-training set to whether an unfinished job reads its export, so
    a stored pre-training whose probes and fine-tunes are all finished is not run again for nothing."""
    readers = [job for job in jobs if isinstance(job, ProbeJob | FinetuneJob) and job.pretrain is not None]
    needed = {job.pretrain.name for job in readers if not job.finished()}
    return [replace(job, export_needed=job.name in needed) if isinstance(job, PretrainJob) else job for job in jobs]
