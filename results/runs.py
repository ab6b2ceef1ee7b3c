"""Our runs as the report needs them: records checked against the shared vocabulary, and mean +- std.

A record the report cannot place (an unknown dataset, a missing split) is an error naming its file and
line, never a row silently left out of a table.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from results.store import DATASETS, KINDS, SPLITS, TASKS, RecordError, iter_records

REPRO_TAG = "repro-mini"


@dataclass(frozen=True)
class Stat:
    n: int
    mean: float | None
    std: float | None  # sample standard deviation; None below two runs


def summarize(values: list[float]) -> Stat:
    if not values:
        return Stat(0, None, None)
    std = statistics.stdev(values) if len(values) > 1 else None
    return Stat(len(values), statistics.fmean(values), std)


def fmt_stat(stat: Stat) -> str:
    """`61.70 ± 0.42` over several runs, `61.70` for one, empty for none."""
    if stat.n == 0:
        return ""
    if stat.std is None:
        return f"{stat.mean:.2f}"
    return f"{stat.mean:.2f} ± {stat.std:.2f}"


def fmt_fraction(fraction: float) -> str:
    return f"{fraction:g}"


def load_runs(paths) -> list[dict]:
    """Every record of the given stores in order, checked; `data_fraction` defaults to 100, `tag` to "" and
    `tiny` (the benchmark's CPU-sized recipe) to False."""
    runs = []
    for path in paths:
        for where, record in iter_records(path, missing_ok=False):
            _check(record, where)
            record = dict(record)
            record["data_fraction"] = float(record.get("data_fraction", 100))
            record["tag"] = record.get("tag") or ""
            record["tiny"] = bool(record.get("tiny"))
            runs.append(record)
    return runs


def _check(record: dict, where: str) -> None:
    def bad(message):
        raise RecordError(f"{where}: {message}; fix or delete that line")

    if record["kind"] not in KINDS:
        bad(f"kind {record['kind']!r} is not one of {list(KINDS)}")
    for key in ("init", "backbone"):
        if not isinstance(record[key], str) or not record[key]:
            bad(f"{key} must be a non-empty string")
    # Pre-training may read several datasets at once, recorded as e.g. "nyuv2+scannet".
    parts = str(record["dataset"]).split("+") if record["kind"] == "pretrain" else [record["dataset"]]
    if not all(p in DATASETS for p in parts):
        bad(f"dataset {record['dataset']!r} is not one of {list(DATASETS)}")
    fraction = record.get("data_fraction", 100)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 100:
        bad(f"data_fraction {fraction!r} must be a percent in (0, 100]")
    if not isinstance(record.get("tag", ""), (str, type(None))):
        bad("tag must be a string")
    if record["kind"] in ("finetune", "probe"):
        if record["task"] not in TASKS:
            bad(f"task {record['task']!r} is not one of {list(TASKS)}")
        if record.get("split") not in SPLITS:
            bad(f"split {record.get('split')!r} is not one of {list(SPLITS)}")
    history = record.get("loss_history", [])
    if not isinstance(history, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(_is_number(v) for v in p) for p in history
    ):
        bad("loss_history must be a list of [iteration, loss] pairs of numbers")


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
