"""Detectron2's checkpointer made safe for run folders, shared by `pretrain` and `benchmark`.

Writes are atomic (a run killed mid-save keeps its previous checkpoint). Resuming reads only what our own
runs write: the `.pth` file that `last_checkpoint` names, directly inside the run folder, through
`core.io.load_torch` (`weights_only`). Detectron2 alone would follow any path written there and unpickle a
`.pkl`, which can run arbitrary code.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from detectron2.checkpoint import DetectionCheckpointer

from core.io import CheckpointError, atomic_path, load_torch, write_text

LAST_CHECKPOINT = "last_checkpoint"


class AtomicCheckpointer(DetectionCheckpointer):
    """DetectionCheckpointer with atomic writes that reads back only `.pth` checkpoints of its own folder."""

    def save(self, name: str, **kwargs) -> None:
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        data.update({key: obj.state_dict() for key, obj in self.checkpointables.items()})
        data.update(kwargs)
        basename = f"{name}.pth"
        target = os.path.join(self.save_dir, basename)
        self.logger.info(f"Saving checkpoint to {target}")
        with atomic_path(target) as tmp:
            torch.save(data, tmp)
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        write_text(os.path.join(self.save_dir, LAST_CHECKPOINT), last_filename_basename)

    def get_checkpoint_file(self) -> str:
        """The checkpoint `last_checkpoint` names; a CheckpointError unless it is a `.pth` file in the folder."""
        folder = Path(self.save_dir)
        name = (folder / LAST_CHECKPOINT).read_text().strip()
        path = folder / name
        if Path(name).name != name or not name.endswith(".pth") or path.resolve().parent != folder.resolve():
            raise CheckpointError(
                f"{folder / LAST_CHECKPOINT} names {name!r}, but a run resumes only from a .pth "
                f"checkpoint inside its own folder {folder}; fix that file or delete the folder"
            )
        return str(path)

    def _load_file(self, filename: str) -> dict:
        return load_torch(filename)
