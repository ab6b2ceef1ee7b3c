"""Typed records of the runs a campaign is made of.

A job is one `python -m MODULE ARGS` command. Whether it is finished is read from the files its tool writes
last (a run's finished marker, `core.runs.FINISHED_MARKER`, written after its metrics and record), never from
its console output, so a campaign can be listed, skipped or resumed from its folders
alone. A job names the jobs it needs; the runner starts it once they are done and skips it if one failed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from core.runs import FINISHED_MARKER
from results.store import append_record, read_records

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


@dataclass(frozen=True, kw_only=True)
class PretrainJob(Job):
    """`python -m pretrain` in `out_dir`; finished once the export and the run's finished marker exist. The run
    appends its own record to the store its environment names (`MASK3D_RESULTS`)."""

    config: str
    out_dir: Path
    overrides: tuple[str, ...] = ()
    stage: str = "pretrain"

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

    def metrics(self) -> dict:
        return json.loads((self.out_dir / "metrics.json").read_text())

    def collect(self) -> str:
        m = self.metrics()
        return (
            f"loss {m.get('loss_start', float('nan')):.4f} -> {m.get('loss', float('nan')):.4f}, "
            f"{m.get('iterations')} iterations"
        )


@dataclass(frozen=True, kw_only=True)
class FinetuneJob(Job):
    """`python -m benchmark.train_net` (fine-tune, then evaluate) in `out_dir`; finished once its finished
    marker exists. The run writes its record to a store of its own in the run folder; `collect` appends it to
    `store` with `labels` set (e.g. the campaign's name for the init), so a record is stored once, labelled."""

    config: str
    out_dir: Path
    init: str = "random"  # an init spec (benchmark/inits.py); `pretrain`'s export when that is set
    pretrain: PretrainJob | None = None
    train_set: str | None = None  # a registered dataset name; None keeps the config's
    seed: int = 0
    tiny: bool = False
    tag: str = ""
    overrides: tuple[str, ...] = ()
    labels: Mapping[str, object] = field(default_factory=dict)
    store: Path | None = None  # None: the default store ($MASK3D_RESULTS, else results/runs.jsonl)
    stage: str = "finetune"

    @property
    def requires(self) -> tuple[str, ...]:
        return self.needs + ((self.pretrain.name,) if self.pretrain else ())

    def command(self) -> list[str]:
        init = f"mask3d:{self.pretrain.export}" if self.pretrain else self.init
        train_set = [f"dataloader.train.dataset.names={self.train_set}"] if self.train_set else []
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
            f"train.output_dir={self.out_dir}",
        ]

    def environment(self) -> Mapping[str, str]:
        return {**self.env, "MASK3D_RESULTS": str(self.out_dir / "record.jsonl")}

    def outputs(self) -> tuple[Path, ...]:
        return (self.out_dir / FINISHED_MARKER,)

    def record(self) -> dict:
        """The run's record as the campaign stores it."""
        record = dict(json.loads((self.out_dir / "metrics.json").read_text())["record"], **self.labels)
        if self.pretrain:
            record["pretrain"] = {
                "output_dir": str(self.pretrain.out_dir),
                "iterations": self.pretrain.metrics().get("iterations"),
            }
        return record

    def collect(self) -> str:
        record = self.record()
        if not any(
            r.get("output_dir") == record["output_dir"] and r.get("tag") == record.get("tag")
            for r in read_records(self.store)
        ):
            append_record(record, self.store)
        return ", ".join(f"{k} {record['metrics'][k]:.2f}" for k in HEADLINE_METRICS if k in record["metrics"])
