"""Our runs as the report needs them: records checked against the shared vocabulary, and mean +- std.

A record the report cannot place (an unknown dataset, a missing split) is an error naming its file and
line, never a row silently left out of a table.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from core import units
from results.store import DATASETS, KINDS, SPLITS, TASKS, RecordError, iter_records

REPRO_TAG = "repro-mini"
ABLATION_TAG = "repro-mini-ablation"
REPRO2_TAG = "repro-mini-2"  # the redesigned miniature: matched baseline, positive control, unlabelled pool
CAMPAIGN_TAGS = (REPRO_TAG, ABLATION_TAG, REPRO2_TAG)  # records shown only in their own report sections
# A campaign record's stage and the kind of run it must be: the report's tables are built per stage.
STAGE_KINDS = {"pretrain": "pretrain", "probe": "probe", "grid": "finetune", "main": "finetune", "long": "finetune"}


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


def fmt_stat(stat: Stat, metric: str) -> str:
    """`61.70 ± 0.42` over several runs, `61.70` for one, empty for none; the metric's decimals (core.units:
    AbsRel `0.274 ± 0.002`)."""
    if stat.n == 0:
        return ""
    if stat.std is None:
        return units.number(metric, stat.mean)
    return f"{units.number(metric, stat.mean)} ± {units.number(metric, stat.std)}"


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
    for key, pair in (("loss_history", "[iteration, loss]"), ("curve", "[iteration, mIoU]")):
        if not _pairs(record.get(key, [])):
            bad(f"{key} must be a list of {pair} pairs of numbers")
    if record.get("tag") in CAMPAIGN_TAGS:
        _check_campaign(record, bad)


def _check_campaign(record: dict, bad) -> None:
    """The fields the campaign sections group by: a missing one would silently drop runs from a table."""
    stage = record.get("stage")
    if STAGE_KINDS.get(stage) != record["kind"]:
        bad(f"stage {stage!r} does not fit kind {record['kind']!r} (stages: {STAGE_KINDS})")
    wall = record.get("wall_s")
    if not _is_number(wall) or not 0 <= wall < math.inf:
        bad(f"wall_s {wall!r} must be a number of seconds")
    if stage in ("grid", "main") and not all(_is_number(record.get(k)) for k in ("lr", "layer_decay")):
        bad("a grid or main record needs numbers lr and layer_decay")
    seed = record.get("pretrain_seed")
    if stage == "probe" and (isinstance(seed, bool) or not (seed is None or isinstance(seed, int))):
        bad(f"pretrain_seed {seed!r} must be an integer, or null for a random init")
    ratios = ("rgb_mask_ratio", "depth_mask_ratio")
    if record["tag"] == ABLATION_TAG and record.get("objective") and not all(_is_number(record.get(k)) for k in ratios):
        bad("an ablation record of a pre-trained encoder needs numbers rgb_mask_ratio and depth_mask_ratio")


def _pairs(value) -> bool:
    return isinstance(value, list) and all(
        isinstance(p, list) and len(p) == 2 and all(_is_number(v) for v in p) for p in value
    )


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
