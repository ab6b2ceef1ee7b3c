"""Layer-wise LR decay as the ViT configs build it: the exact factor of every parameter group."""

import pytest
from detectron2.config import LazyConfig, instantiate

from benchmark.tiny import make_tiny


@pytest.mark.parametrize(
    "config, rate",
    [("benchmark/configs/scannet/semseg_vit_b.py", 0.65), ("benchmark/configs/scannet/insseg_vit_b.py", 0.7)],
)
def test_layer_decay_gives_the_last_block_rate_the_embeddings_rate_to_depth_plus_one_and_heads_one(config, rate):
    """BEiT/MAE/ViTDet: block i of a depth-L ViT gets rate^(L - i), the patch and position embeddings
    rate^(L + 1), everything outside the ViT 1."""
    cfg = LazyConfig.load(config)
    make_tiny(cfg)
    depth = cfg.model.backbone.net.depth
    assert depth >= 2 and cfg.optimizer.params.lr_factor_func.rate == rate
    model = instantiate(cfg.model)
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    factor = {id(p): group["lr"] / cfg.optimizer.lr for group in optimizer.param_groups for p in group["params"]}
    for name, param in model.named_parameters():
        if name.startswith("backbone.net.blocks."):
            expected = rate ** (depth - int(name.split(".")[3]))
        elif name.startswith(("backbone.net.patch_embed.", "backbone.net.pos_embed")):
            expected = rate ** (depth + 1)
        else:  # the pyramid, the heads
            expected = 1.0
        assert factor[id(param)] == pytest.approx(expected, rel=1e-12), name
    last, first = f"backbone.net.blocks.{depth - 1}.mlp.fc1.weight", "backbone.net.blocks.0.mlp.fc1.weight"
    params = dict(model.named_parameters())
    assert factor[id(params[last])] == pytest.approx(rate) and factor[id(params[first])] == pytest.approx(rate**depth)
    assert factor[id(params["backbone.net.patch_embed.proj.weight"])] == pytest.approx(rate ** (depth + 1))
    assert factor[id(params["backbone.net.pos_embed"])] == pytest.approx(rate ** (depth + 1))
