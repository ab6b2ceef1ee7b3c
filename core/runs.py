"""Run folders, shared by `pretrain` and `benchmark`: one output folder per run, whose files say its state.

- new: no checkpoint yet.
- unfinished: a checkpoint (`last_checkpoint`) but no finished marker; continuing it needs `--resume`, so a
  reused output path never silently trains over another run.
- finished: the marker `finished.json`, written last, after the metrics file and the results record; a
  finished run is never trained or overwritten again.

Everything else a run's bookkeeping needs is here too: the config dump and hash, the log files, the
provenance fields of the results record, and the finishing writes.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from detectron2.config import LazyConfig
from detectron2.utils.logger import setup_logger
from omegaconf import OmegaConf

from core.checkpoint import LAST_CHECKPOINT
from core.io import TEMP_SUFFIX, atomic_path, remove_stale_temps, write_json
from core.provenance import device_name, git_commit, utc_now

OUTPUT_ROOT = Path("output")
FINISHED_MARKER = "finished.json"
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
