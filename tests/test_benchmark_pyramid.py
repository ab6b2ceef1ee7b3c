"""A ViT with 8-pixel patches keeps the pyramid every head expects (strides 4, 8, 16, 32 as p2..p5): ViTDet's
scale factors assume patch 16, and a patch-8 ViT would otherwise give p1..p4 and fail at the first step."""

import pytest
import torch
from detectron2.config import LazyConfig, instantiate

from benchmark.backbones import fit_pyramid, set_vit_architecture
from benchmark.tiny import make_tiny


def _config(name: str, patch: int):
    cfg = LazyConfig.load(f"benchmark/configs/scannet/{name}_vit_b.py")
    make_tiny(cfg)
    set_vit_architecture(cfg, embed_dim=32, depth=2, num_heads=2, patch_size=patch)
    cfg.model.backbone.net.img_size = 128
    return cfg


@pytest.mark.parametrize("patch", [8, 16])
def test_semantic_and_depth_pyramids_have_strides_4_to_32_at_patch_8_and_16(patch):
    for name in ("semseg", "depth"):
        cfg = _config(name, patch)
        fit_pyramid(cfg)
        backbone = instantiate(cfg.model.backbone).eval()
        with torch.no_grad():
            features = backbone(torch.zeros(1, 3, 96, 128))
        assert {k: tuple(v.shape[-2:]) for k, v in features.items()} == {
            "p2": (24, 32),
            "p3": (12, 16),
            "p4": (6, 8),
            "p5": (3, 4),
        }, name
        assert backbone.output_shape()["p5"].stride == 32


def test_mask_rcnn_at_patch_8_is_a_clear_error_not_a_missing_level():
    cfg = _config("insseg", 8)
    with pytest.raises(ValueError, match="patch 8: this config's pyramid already uses its top block"):
        fit_pyramid(cfg)
    cfg = _config("insseg", 16)
    fit_pyramid(cfg)  # ViTDet's own pyramid, unchanged
    assert tuple(cfg.model.backbone.scale_factors) == (4.0, 2.0, 1.0, 0.5)


def test_a_patch_size_without_a_pyramid_is_refused():
    cfg = _config("semseg", 16)
    cfg.model.backbone.net.patch_size = 12
    with pytest.raises(ValueError, match="patch 12 cannot give pyramid strides"):
        fit_pyramid(cfg)
