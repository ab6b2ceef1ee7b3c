"""The checkpointer benchmark runs use; it lives in `core.checkpoint`, shared with `pretrain`."""

from core.checkpoint import AtomicCheckpointer

__all__ = ["AtomicCheckpointer"]
