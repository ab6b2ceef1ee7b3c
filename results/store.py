"""Append-only stores of our runs: one JSON object per line, never rewritten.

Ordinary runs (`benchmark/`, `pretrain/`) append to the scratch store, `$MASK3D_RESULTS` else
`output/runs.jsonl` (git-ignored, like every run folder). A campaign (e.g. `make repro-mini`) appends to its
own committed file, `results/runs/<campaign>.jsonl`, which is what `results.report` renders the committed
report from. A second run of the same config and seed is kept as a repeat, so the report can average over
every run; the same record twice (a copied line, an append repeated) is refused on append and named, with
both line numbers, by every reader, so a run is never counted twice.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
from pathlib import Path

from core.io import atomic_path

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRATCH_PATH = REPO_ROOT / "output" / "runs.jsonl"
CAMPAIGNS_DIR = REPO_ROOT / "results" / "runs"
REQUIRED_KEYS = ("kind", "dataset", "task", "backbone", "init", "seed", "metrics", "date")
# The shared vocabulary (docs/interfaces.md); `results/paper.csv` uses the same words.
KINDS = ("finetune", "pretrain", "probe")  # probe: a linear head on a frozen encoder (benchmark.probe)
DATASETS = ("scannet", "nyuv2", "cityscapes", "synthetic")
SPLITS = ("val", "test", "holdout")  # holdout: held-out training scenes, for recipe selection
TASKS = ("semseg", "insseg", "det", "depth")


class RecordError(ValueError):
    """A malformed record, or a store that should exist and does not; the message names the file (and line)."""


class StoreWriteError(OSError):
    """An append that failed (disk full, permissions); the store is left as it was. It carries the failure's
    errno and the store's path, so command lines report it as the disk error it is."""

    def __init__(self, error: OSError, target: Path):
        super().__init__(error.errno, error.strerror or str(error), str(target))

    def __str__(self) -> str:
        return (
            f"{self.filename}: could not append the run record ({self.strerror}); the store is unchanged. Free "
            "space or fix permissions there, then rerun (finished runs keep their metrics.json)"
        )


def store_path(path: str | os.PathLike | None = None) -> Path:
    """`path`, else the scratch store."""
    return Path(path or os.environ.get("MASK3D_RESULTS") or SCRATCH_PATH)


def campaign_path(name: str) -> Path:
    """The committed store of campaign `name` (e.g. `repro_mini`)."""
    return CAMPAIGNS_DIR / f"{name}.jsonl"


def campaign_files(folder: str | os.PathLike | None = None) -> list[Path]:
    """Every committed campaign store, in name order; none is a valid answer (nothing committed yet)."""
    return sorted(Path(folder or CAMPAIGNS_DIR).glob("*.jsonl"))


def validate(record: dict, where: str = "record") -> None:
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise RecordError(f"{where}: missing keys {missing}")
    if not isinstance(record["metrics"], dict):
        raise RecordError(f"{where}: 'metrics' must be an object of name -> number")
    for name, value in record["metrics"].items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise RecordError(f"{where}: metric {name!r} is {value!r}, not a finite number")


RECORD_ID = ("kind", "task", "output_dir", "date", "iterations", "seed")


def record_id(record: dict) -> tuple:
    """What makes a record one run's: its kind, task, output folder and date, with its iterations and seed (a
    folder resumed to more iterations within the same second is another run); a record without an output
    folder (written by hand) is identified by its whole content."""
    if record.get("output_dir"):
        return tuple(json.dumps(record.get(k), sort_keys=True) for k in RECORD_ID)
    return (json.dumps(record, sort_keys=True),)


def _describe(record: dict) -> str:
    return (
        f"{record['kind']} {record.get('task')} of {record.get('output_dir') or 'no output folder'} at {record['date']}"
    )


def _line_of(store: bytes, rid: tuple) -> int | None:
    """The line of `store` holding the record `rid`, if any (lines that do not parse are left to the readers)."""
    for lineno, raw in enumerate(store.splitlines(), 1):
        try:
            other = json.loads(raw)
        except ValueError:
            continue
        if isinstance(other, dict) and "kind" in other and record_id(other) == rid:
            return lineno
    return None


def append_record(record: dict, path: str | os.PathLike | None = None) -> Path:
    """Append one run; numpy scalars are turned into plain floats (Detectron2 evaluators return them).

    All or nothing: the store plus the new line is written to a temp file and moved over the store, so a
    full disk or a kill mid-append leaves the store exactly as it was (a plain append could leave half a
    line that every later read would trip over). A store ending in a torn line from an older writer keeps
    that line on its own, so the reader can point at it. A store that is a symlink gets the record in its
    target (the link stays). A record the store already holds is a RecordError naming its line.
    """
    record = json.loads(json.dumps(record, default=_plain))
    validate(record)
    target = Path(os.path.realpath(store_path(path)))  # replace the file a link points at, not the link
    target.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=True).encode("utf-8") + b"\n"
    with open(target.with_name(target.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        old = target.read_bytes() if target.exists() else b""
        repeat = _line_of(old, record_id(record))
        if repeat:
            raise RecordError(
                f"{target}:{repeat}: already holds this record ({_describe(record)}); not appended again, so the "
                "run counts once"
            )
        if old and not old.endswith(b"\n"):
            old += b"\n"
        try:
            with atomic_path(target) as tmp, open(tmp, "wb") as f:
                f.write(old + line)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise StoreWriteError(e, target) from e
    return target


def read_records(path: str | os.PathLike | None = None) -> list[dict]:
    """Every record in order (none for a store no run has created yet); a malformed line raises RecordError
    naming the file and line."""
    return [record for _, record in iter_records(path)]


def iter_records(path: str | os.PathLike | None = None, missing_ok: bool = True):
    """Yield `(where, record)` with `where` = "FILE:LINE", so readers can point at a bad record too.
    `missing_ok=False` (the report) makes an absent store an error instead of an empty one."""
    source = store_path(path)
    if not source.exists():
        if missing_ok:
            return
        raise RecordError(
            f"{source}: no such run store; runs (`make pretrain`, `make bench-*`) create it when "
            "they finish: check the path"
        )
    seen = {}
    with open(source, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            where = f"{source}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise RecordError(
                    f"{where}: byte {raw[e.start]:#04x} at column {e.start + 1} is not UTF-8; fix or delete that line"
                ) from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise RecordError(f"{where}: not valid JSON ({e.msg}); fix or delete that line") from e
            if not isinstance(record, dict):
                raise RecordError(f"{where}: expected a JSON object")
            validate(record, where)
            first = seen.setdefault(record_id(record), lineno)
            if first != lineno:
                raise RecordError(
                    f"{where}: repeats the record of line {first} ({_describe(record)}); a run counts once: "
                    "delete one of the two lines"
                )
            yield where, record


def _plain(obj):
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"cannot store {type(obj).__name__} in a run record")
