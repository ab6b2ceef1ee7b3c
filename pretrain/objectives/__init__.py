"""The pre-training objectives, one class per file, each registered in `pretrain.model.OBJECTIVE_REGISTRY` under
the name `model.objective` picks. Importing this package registers them; an objective of your own registers the
same way from any module imported before the model is built (docs/add_objective.md)."""

from . import mae, mask3d, multimae, none, pri3d, supervised

__all__ = ["mae", "mask3d", "multimae", "none", "pri3d", "supervised"]
