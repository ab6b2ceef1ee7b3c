"""Run folders, shared by `pretrain` and `benchmark`: one output folder per run, whose files say its state.

- new: no checkpoint yet.
- unfinished: a checkpoint (`last_checkpoint`) but no finished marker; continuing it needs `--resume`, so a
  reused output path never silently trains over another run.
- finished: the marker `finished.json`, written last, after the metrics file and the results record; a
  finished run is never trained or overwritten again, and asking for it with other settings is an error
  naming them (`refuse_changed`).

One process runs a folder at a time: it holds an exclusive lock on `.lock` there for the run's life (`held`).

Everything else a run's bookkeeping needs is here too: the config dump and hash, the log files, the
provenance fields of the results record, and the finishing writes.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from detectron2.config import LazyConfig
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger
from omegaconf import OmegaConf

from core.checkpoint import LAST_CHECKPOINT
from core.io import TEMP_SUFFIX, atomic_path, remove_stale_temps, write_json
from core.provenance import device_name, git_commit, utc_now

OUTPUT_ROOT = Path("output")
FINISHED_MARKER = "finished.json"
LOCK_NAME = ".lock"  # held (flock) by the process running the folder; holds its pid
NEW, UNFINISHED, FINISHED = "new", "unfinished", "finished"


class RunError(RuntimeError):
    """A run that cannot start or continue as asked; the message says what to do."""


def output_dir(configured: str | None, *default_parts: str) -> Path:
    """The configured folder, else `output/<default_parts...>`."""
    return Path(configured) if configured else OUTPUT_ROOT.joinpath(*default_parts)


def folder_state(folder: str | Path) -> str:
    folder = Path(folder)
    if (folder / FINISHED_MARKER).is_file():
        return FINISHED
    return UNFINISHED if (folder / LAST_CHECKPOINT).is_file() else NEW


def claim(folder: str | Path, resume: bool, clean: bool = True) -> str:
    """The folder's state; refuses an unfinished run without `resume`. A run about to start removes the temp
    files interrupted writes left (`clean`: only the process that writes the folder)."""
    state = folder_state(folder)
    if state == UNFINISHED and not resume:
        raise RunError(
            f"{folder} holds checkpoints of an unfinished run: add --resume to continue it, "
            "or set another train.output_dir"
        )
    if state != FINISHED and clean:
        require_writable(folder)
        for path in remove_stale_temps(folder):
            logging.getLogger(__name__).info(f"removed {path}, left by an interrupted write")
    return state


# --- one process per run folder ---------------------------------------------------------------------------
@contextmanager
def held(folder: str | Path, active: bool = True) -> Iterator[None]:
    """The run folder is this process's until the block ends: an exclusive `fcntl.flock` on `folder/.lock`,
    which the kernel releases however the process ends (kill -9 included). A second run given the same folder
    is a RunError naming the holder's pid, before it reads or writes anything. `active=False` (the ranks > 0
    of a distributed run, whose rank 0 holds it) takes no lock. Every rank of a distributed run waits at a
    barrier until rank 0 holds the folder: the writability check makes and removes it, and a rank writing its
    log there first would lose the folder under it. A folder that cannot be written gets no lock: no run can
    write it, and `claim` says why."""
    with _locked(Path(folder)) if active else contextlib.nullcontext():
        comm.synchronize()
        yield


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    if folder_state(folder) != FINISHED:
        require_writable(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = open(folder / LOCK_NAME, "a+")  # held open for the whole block
    except OSError:
        lock = None
    if lock is None:
        yield
        return
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "unknown"
            raise RunError(
                f"{folder} is in use by another run (process {holder}); wait for it to end, or set another "
                "train.output_dir"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        yield


def require_writable(folder: str | Path) -> None:
    """Writes a file in `folder`, so a read-only or full output folder fails before any work instead of at the
    first checkpoint; folders made for the check are removed again."""
    folder = Path(folder)
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check.", suffix=TEMP_SUFFIX) as f:
            f.write(b"\0" * 4096)
            f.flush()
    except OSError as e:
        raise RunError(
            f"cannot write in the output folder {folder} ({e.strerror}): choose another "
            f"train.output_dir, or free space / fix its permissions"
        ) from None
    finally:
        for p in made:
            with contextlib.suppress(OSError):
                p.rmdir()


def config_hash(cfg, ignore: dict) -> str:
    """Hash of the resolved config with the `ignore` keys set to the given values (where it runs, its seed:
    repeats of one recipe share the hash)."""
    cfg = copy.deepcopy(cfg)
    for key, value in ignore.items():
        OmegaConf.update(cfg, key, value, merge=False)
    with tempfile.TemporaryDirectory() as tmp:
        LazyConfig.save(cfg, f"{tmp}/config.yaml")
        return hashlib.sha256(Path(tmp, "config.yaml").read_bytes()).hexdigest()[:12]


# --- a finished run asked again -------------------------------------------------------------------------
class _YamlLoader(yaml.SafeLoader):
    """Reads a saved config without importing anything: `!!python/name:x.y` stays the text naming it."""


def _foreign(loader, suffix, node):
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    return f"!{suffix}{loader.construct_scalar(node)}"


_YamlLoader.add_multi_constructor("tag:yaml.org,2002:python/", _foreign)


def _read_config(path: Path) -> dict:
    return _flat(yaml.load(path.read_text(encoding="utf-8"), Loader=_YamlLoader) or {})  # a SafeLoader


def _flat(node, prefix: str = "") -> dict:
    if isinstance(node, dict):
        return {k: v for key, value in node.items() for k, v in _flat(value, f"{prefix}{key}.").items()}
    return {prefix[:-1]: node}


def _saved_settings(cfg) -> dict:
    """`cfg` as `save_config` writes it, read back as dotted key -> value."""
    with tempfile.TemporaryDirectory() as tmp:
        LazyConfig.save(cfg, f"{tmp}/config.yaml")
        return _read_config(Path(tmp, "config.yaml"))


def config_changes(cfg, folder: str | Path, ignore=()) -> list[str]:
    """`key: saved -> now` for every setting of `cfg` that differs from the run's `config.yaml`, the `ignore`
    keys aside (where the run writes, free-text tags); none when the folder has no config.yaml."""
    path = Path(folder) / "config.yaml"
    if not path.is_file():
        return []
    saved, now = _read_config(path), _saved_settings(cfg)
    absent = object()
    keys = sorted(k for k in set(saved) | set(now) if k not in ignore)
    return [
        f"{k}: {saved.get(k, 'absent')!r} -> {now.get(k, 'absent')!r}"
        for k in keys
        if saved.get(k, absent) != now.get(k, absent)
    ]


def refuse_changed(cfg, folder: str | Path, ignore=()) -> None:
    """A finished run re-invoked with other settings is a RunError naming them: its results are not theirs."""
    changes = config_changes(cfg, folder, ignore)
    if changes:
        more = f" and {len(changes) - 5} more" if len(changes) > 5 else ""
        raise RunError(
            f"{folder} is a finished run of other settings ({'; '.join(changes[:5])}{more}); set another "
            "train.output_dir to run these"
        )


def save_config(cfg, folder: str | Path) -> Path:
    """`LazyConfig.save` to `folder/config.yaml`, atomically."""
    path = Path(folder) / "config.yaml"
    with atomic_path(path) as tmp:
        LazyConfig.save(cfg, tmp)
    return path


@contextmanager
def logging_scope(*names: str) -> Iterator[None]:
    """Undoes, on exit, the handlers Detectron2's `setup_logger` (called inside) added to the loggers `names`,
    so a second run in the same process (tests, the suite) neither writes into this run's log.txt nor prints
    each line twice; `setup_logger`'s cache is cleared so the next run sets its handlers up again."""
    before = {name: list(logging.getLogger(name).handlers) for name in names}
    try:
        yield
    finally:
        for name in names:
            logger = logging.getLogger(name)
            for handler in [h for h in logger.handlers if h not in before[name]]:
                handler.flush()
                logger.removeHandler(handler)
        setup_logger.cache_clear()


def record(
    kind: str, *, config_file: str | None, config_hash: str, device, output: str | Path, tag: str, **fields
) -> dict:
    """A results-store record (docs/interfaces.md): `kind`, the run's own fields, then its provenance."""
    return {
        "kind": kind,
        **fields,
        "config_file": config_file,
        "config_hash": config_hash,
        "git_commit": git_commit(),
        "date": utc_now(),
        "device": device_name(device),
        "output_dir": str(output),
        "tag": tag,
    }


def finish(
    folder: str | Path, metrics: dict, rec: dict, append_record: Callable[[dict], object], metrics_name="metrics.json"
) -> None:
    """The last writes of a finished run: its metrics file, its record through `append_record` (the caller's
    store, e.g. `results.store.append_record`), then the marker. A crash in between repeats the record on the next
    start rather than losing it."""
    folder = Path(folder)
    write_json(folder / metrics_name, metrics)
    append_record(rec)
    write_json(folder / FINISHED_MARKER, {"date": utc_now(), "metrics": metrics_name})
