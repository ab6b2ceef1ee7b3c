"""Third-party warnings that runs would print and no user can act on; each says why it is silenced. Installed
once, when `core` is first imported: every package (`datasets`, `pretrain`, `benchmark`, and so every tool)
imports `core` before Detectron2 (pytest.ini lists the same for the test suite)."""

import warnings

THIRD_PARTY = (
    # fvcore scripts its focal losses with torch.jit.script at import (fvcore 0.1.5)
    (FutureWarning, r"`torch\.jit\.script` is deprecated"),
    # detectron2.model_zoo imports pkg_resources, which setuptools deprecates
    (UserWarning, r"pkg_resources is deprecated"),
    # detectron2's ViT imports DropPath/Mlp from timm's old module path
    (FutureWarning, r"Importing from timm\.models\.layers is deprecated"),
    # detectron2's anchor generator calls torch.meshgrid without indexing= (every Mask R-CNN run)
    (UserWarning, r"torch\.meshgrid: in an upcoming release"),
    # detectron2's DatasetMapper makes tensors from read-only arrays; it never writes to them
    (UserWarning, r"The given NumPy array is not writable"),
)


def silence_third_party_warnings() -> None:
    for category, message in THIRD_PARTY:
        warnings.filterwarnings("ignore", message=message, category=category)
