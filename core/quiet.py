"""Third-party warnings that every run would print at import and no user can act on; each says why it is
silenced. Installed by the `pretrain` and `benchmark` packages before they import Detectron2 (pytest.ini
lists the same for the test suite)."""

import warnings

THIRD_PARTY = (
    # fvcore scripts its focal losses with torch.jit.script at import (fvcore 0.1.5)
    (FutureWarning, r"`torch\.jit\.script` is deprecated"),
    # detectron2.model_zoo imports pkg_resources, which setuptools deprecates
    (UserWarning, r"pkg_resources is deprecated"),
    # detectron2's ViT imports DropPath/Mlp from timm's old module path
    (FutureWarning, r"Importing from timm\.models\.layers is deprecated"),
)


def silence_third_party_warnings() -> None:
    for category, message in THIRD_PARTY:
        warnings.filterwarnings("ignore", message=message, category=category)
