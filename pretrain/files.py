"""Atomic writes: a temp file in the target folder, then `os.replace`, so a crash never leaves a
half-written checkpoint, picture or metrics file that a rerun would trust."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch


def atomic_write(path: str | Path, write) -> Path:
    """Calls `write(binary_file)` on a temp file, then moves it to `path` (mode 0644)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def atomic_save(obj, path: str | Path) -> Path:
    return atomic_write(path, lambda f: torch.save(obj, f))


def atomic_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))
