"""DetectionCheckpointer with atomic writes: a run killed mid-save keeps its previous checkpoint."""
from __future__ import annotations

import os

import torch

from detectron2.checkpoint import DetectionCheckpointer

from core.io import atomic_path, write_text


class AtomicCheckpointer(DetectionCheckpointer):
    """DetectionCheckpointer whose checkpoints and `last_checkpoint` tag are replaced atomically."""

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
        write_text(os.path.join(self.save_dir, "last_checkpoint"), last_filename_basename)
