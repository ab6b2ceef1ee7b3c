"""File writes a crash cannot half-finish, and the one way we read checkpoints.

Every write goes to a temp file in the target folder and is moved into place with `os.replace`, so a run
killed mid-write leaves the previous file (or none), never half of one that a rerun would trust. Temp
files are named `.<name>.<random>.tmp`; `remove_stale_temps` clears those an interrupted run left.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import torch

_UMASK = os.umask(0)
os.umask(_UMASK)
TEMP_SUFFIX = ".tmp"


class CheckpointError(RuntimeError):
    """A checkpoint file that is missing, truncated or not one of ours; the message names the file."""


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yields a temp path beside `path` for writers that want a file name; on success it replaces `path`
    (mode 0666 less the umask), on any error it is removed and `path` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; our files should read like any other
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Calls `write(binary_file)` on a temp file, then moves it to `path`."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)
    return Path(path)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj, compact: bool = False) -> Path:
    """Strict JSON (NaN and infinity are errors, not invalid files); `compact` for large indexes."""
    if compact:
        text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    else:
        text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n"
    return write_text(path, text)


def save_torch(obj, path: str | os.PathLike) -> Path:
    return atomic_write(path, lambda f: torch.save(obj, f))


def _require_file(path: Path, what: str) -> None:
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a {what} file; name the .pth or .safetensors file in it")
    if not path.is_file():
        raise CheckpointError(f"{path}: {what} file is missing")


def _unreadable(path: Path, what: str, e: Exception) -> str:
    """Why `torch.load` refused `path`, in our words: PyTorch's own text suggests `weights_only=False`, which
    would run whatever code the file holds, and is never the advice here."""
    with open(path, "rb") as f:
        head = f.read(512)
    try:
        text = head.decode("utf-8") if head and b"\0" not in head else None
    except UnicodeDecodeError:
        text = None
    if text is not None:
        first = text.splitlines()[0][:40] if text.strip() else ""
        return (
            f"{path}: cannot be read as a PyTorch {what}: it is a text file (it begins {first!r}); pass the "
            "weights file itself"
        )
    foreign = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(e))
    if foreign or "weights_only" in str(e):
        held = f" (e.g. {foreign.group(1)})" if foreign else ""
        return (
            f"{path}: cannot be read as a PyTorch {what}: it holds Python objects other than tensors{held}, "
            "which are never loaded (they could run code); save its tensors alone (e.g. "
            "torch.save(checkpoint['model'], PATH)) and pass that"
        )
    return (
        f"{path}: cannot be read as a PyTorch {what} ({type(e).__name__}: "
        f"{str(e).splitlines()[0] if str(e) else 'no detail'}); it is truncated or corrupt: re-create it"
    )


def load_torch(path: str | os.PathLike, what: str = "checkpoint"):
    """`torch.load(weights_only=True)` on CPU: tensors and plain containers only, never foreign code.
    Missing, truncated, text and non-PyTorch files and folders raise a CheckpointError naming the file."""
    path = Path(path)
    _require_file(path, what)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises RuntimeError, EOFError or UnpicklingError depending on the damage
        raise CheckpointError(_unreadable(path, what, e)) from None


def load_weights(path: str | os.PathLike, what: str = "checkpoint"):
    """Tensors of a `.safetensors` file, else `load_torch`'s content: the one reader of weights from outside."""
    path = Path(path)
    if path.suffix != ".safetensors":
        return load_torch(path, what)
    _require_file(path, what)
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for a bad header or a short file
        raise CheckpointError(
            f"{path}: cannot be read as safetensors ({type(e).__name__}: {e}); it is truncated "
            f"or corrupt: download or re-create it"
        ) from None


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Deletes the temp files that interrupted atomic writes left directly in `folder`; returns them."""
    folder = Path(folder)
    stale = [p for p in folder.glob(f".*{TEMP_SUFFIX}") if p.is_file()] if folder.is_dir() else []
    for p in stale:
        p.unlink()
    return stale
