"""`none`: no pretext task; the run exports the freshly initialised encoder (a from-scratch baseline with our
initialisation)."""

from __future__ import annotations

from ..model import OBJECTIVE_REGISTRY, MaskedRGBD


@OBJECTIVE_REGISTRY.register()
class NoObjective(MaskedRGBD):
    name = "none"
    batch_keys = ()
    trains = False

    def losses(self, batch, generator):
        raise ValueError("objective 'none' has no pretext task to train")
