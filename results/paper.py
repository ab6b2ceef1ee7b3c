"""The reference numbers in `results/paper.csv`, checked against the store's vocabulary.

Each row is one number with its source and whether it was read in the primary source (`verified`), so a
report can never show a number without saying where it came from. Empty `value` cells are numbers not
yet established; they stay empty rather than being guessed.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from results.store import DATASETS, SPLITS, TASKS

DEFAULT_PATH = Path(__file__).resolve().parent / "paper.csv"
COLUMNS = (
    "paper",
    "method",
    "backbone",
    "pretrain_data",
    "dataset",
    "split",
    "task",
    "metric",
    "data_fraction",
    "value",
    "relative_to",
    "source",
    "verified",
    "note",
)
METRIC = re.compile(r"^(sem_seg|bbox|segm|depth)/[A-Za-z0-9_]+$")


class PaperError(ValueError):
    """A malformed row of paper.csv; the message names the file and line."""


@dataclass(frozen=True)
class PaperRow:
    paper: str
    method: str
    backbone: str
    pretrain_data: str
    dataset: str
    split: str
    task: str
    metric: str
    data_fraction: int
    value: float | None  # None: not established
    text: str  # the value as written in the source, e.g. "61.7"
    relative_to: str  # non-empty: `value` is a gain over that method, not a score
    source: str
    verified: bool
    note: str
    where: str


def load_paper(path: str | Path | None = None) -> list[PaperRow]:
    path = Path(path or DEFAULT_PATH)
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise PaperError(f"{path}:1: header must be {','.join(COLUMNS)}; got {reader.fieldnames}")
        rows = []
        for row in reader:
            rows.append(_parse(row, f"{path}:{reader.line_num}"))
    return rows


def _parse(row: dict, where: str) -> PaperRow:
    if None in row or any(v is None for v in row.values()):
        raise PaperError(f"{where}: expected {len(COLUMNS)} columns; quote cells that contain commas")
    row = {k: v.strip() for k, v in row.items()}
    for key in ("paper", "method", "backbone", "source"):
        if not row[key]:
            raise PaperError(f"{where}: '{key}' is empty; every reference needs it")
    for key, allowed in (("dataset", DATASETS), ("split", SPLITS), ("task", TASKS), ("verified", ("yes", "no"))):
        if row[key] not in allowed:
            raise PaperError(f"{where}: {key} {row[key]!r} is not one of {list(allowed)}")
    if not METRIC.match(row["metric"]):
        raise PaperError(
            f"{where}: metric {row['metric']!r} is not a Detectron2 name such as sem_seg/mIoU, bbox/AP50, segm/AP50"
        )
    try:
        fraction = int(row["data_fraction"])
    except ValueError:
        fraction = 0
    if not 0 < fraction <= 100:
        raise PaperError(f"{where}: data_fraction {row['data_fraction']!r} must be a whole percent in 1..100")
    value = None
    if row["value"]:
        try:
            value = float(row["value"])
        except ValueError:
            raise PaperError(f"{where}: value {row['value']!r} is not a number; leave it empty if unknown") from None
    verified = row["verified"] == "yes"
    if verified and value is None:
        raise PaperError(f"{where}: verified=yes needs a value; an unknown number cannot be verified")
    return PaperRow(
        paper=row["paper"],
        method=row["method"],
        backbone=row["backbone"],
        pretrain_data=row["pretrain_data"],
        dataset=row["dataset"],
        split=row["split"],
        task=row["task"],
        metric=row["metric"],
        data_fraction=fraction,
        value=value,
        text=row["value"],
        relative_to=row["relative_to"],
        source=row["source"],
        verified=verified,
        note=row["note"],
        where=where,
    )
