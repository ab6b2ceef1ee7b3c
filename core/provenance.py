"""Where a result came from: the code's git commit, the device, the time; every results record carries them."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import torch
from detectron2.utils import comm

REPO = Path(__file__).resolve().parent.parent


def git_commit(repo: str | Path = REPO) -> str:
    """HEAD's hash, with `-dirty` when tracked files differ from it (untracked files do not count, so an
    output folder inside the checkout does not make every run dirty); `unknown` outside a git checkout."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def device_name(device: str | torch.device) -> str:
    """`<GPU name> xN` or `cpu xN`, N the number of processes of the run."""
    device = torch.device(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return f"{name} x{comm.get_world_size()}"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
