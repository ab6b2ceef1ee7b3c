"""Every initialisation converter, on tiny models built here: zero missing backbone keys (ViTDet's
zero-initialised rel_pos tables aside), position embeddings resized, clear errors for bad files."""

import pytest
import timm
import torch
import torchvision
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import LazyConfig, instantiate
from safetensors.torch import save_file

from benchmark import architecture, inits
from benchmark.checkpoint import AtomicCheckpointer
from benchmark.tiny import CPU_VIT, make_tiny
from results import baselines

VIT_CONFIG = "benchmark/configs/scannet/semseg_vit_b.py"
R50_CONFIG = "benchmark/configs/scannet/semseg_r50.py"


def _cfg(path):
    cfg = LazyConfig.load(path)
    make_tiny(cfg)
    return cfg


@pytest.fixture(scope="module")
def vit_cfg():
    return _cfg(VIT_CONFIG)


@pytest.fixture(scope="module")
def r50_model():
    torch.manual_seed(0)
    return instantiate(_cfg(R50_CONFIG).model)


def _vit(cfg):
    torch.manual_seed(0)
    return instantiate(cfg.model)


def _timm_vit(**kw):
    """A timm ViT shaped like the tiny recipe's ViT, pre-trained at 112x112 (a 7x7 position grid)."""
    torch.manual_seed(1)
    dims = {k: CPU_VIT[k] for k in ("embed_dim", "depth", "num_heads", "patch_size")}
    return timm.models.vision_transformer.VisionTransformer(img_size=112, num_classes=10, **dims, **kw).state_dict()


def _assert_vit_loaded(model, timm_sd, summary):
    """Every ViT tensor equals the checkpoint's, only rel_pos tables are left, pos_embed went 7x7 -> 14x14."""
    assert summary["missing"] == []
    own = {k[len("backbone.net.") :]: v for k, v in model.state_dict().items() if k.startswith("backbone.net.")}
    untouched = {k for k in own if k not in timm_sd}
    assert untouched == {k for k in own if "rel_pos" in k}
    for k in own.keys() - untouched - {"pos_embed"}:
        assert torch.equal(own[k], timm_sd[k]), k
    assert own["pos_embed"].shape == (1, 1 + 14 * 14, CPU_VIT["embed_dim"])
    assert torch.equal(own["pos_embed"][:, 0], timm_sd["pos_embed"][:, 0])  # cls slot kept
    assert summary["resized"] == ["backbone.net.pos_embed"]


def _load(model, spec, **kw):
    return inits.load(model, inits.convert(inits.parse(spec)), **kw)


def test_mae_checkpoint_drops_decoder_and_loads_every_vit_weight(vit_cfg, tmp_path):
    sd = _timm_vit()
    mae = dict(
        sd,
        mask_token=torch.zeros(1, 1, 96),
        **{"decoder_embed.weight": torch.zeros(64, 96), "decoder_blocks.0.norm1.weight": torch.zeros(64)},
    )
    torch.save({"model": mae, "epoch": 799}, tmp_path / "mae.pth")
    model = _vit(vit_cfg)
    summary = _load(model, f"mae:{tmp_path / 'mae.pth'}")
    _assert_vit_loaded(model, sd, summary)
    assert {"mask_token", "decoder_embed.weight", "head.weight", "norm.weight", "cls_token"} <= set(summary["dropped"])


def test_timm_safetensors_and_supervised_state_dict(vit_cfg, tmp_path):
    sd = _timm_vit()
    save_file(sd, str(tmp_path / "vit.safetensors"))
    torch.save(sd, tmp_path / "vit.pth")
    for spec in (f"timm:{tmp_path / 'vit.safetensors'}", f"supervised:{tmp_path / 'vit.pth'}"):
        model = _vit(vit_cfg)
        _assert_vit_loaded(model, sd, _load(model, spec))


def test_position_embedding_without_cls_slot_is_resized_too(vit_cfg, tmp_path):
    sd = _timm_vit(class_token=False, global_pool="avg")  # pos_embed is a bare 7x7 grid
    sd["pos_embed"] = torch.ones_like(sd["pos_embed"]) * 0.5
    torch.save(sd, tmp_path / "nocls.pth")
    model = _vit(vit_cfg)
    _load(model, f"timm:{tmp_path / 'nocls.pth'}")
    pos = model.backbone.net.pos_embed
    assert pos.shape[1] == 1 + 14 * 14
    assert torch.allclose(pos[:, 1:], torch.full_like(pos[:, 1:], 0.5), atol=1e-5)  # a constant stays constant


def test_multimae_rgb_adapter_and_encoder(vit_cfg, tmp_path):
    sd = _timm_vit()
    grid = sd["pos_embed"][:, 1:].reshape(1, 7, 7, 96).permute(0, 3, 1, 2)
    multimae = {
        "input_adapters.rgb.pos_emb": grid,
        "global_tokens": torch.zeros(1, 1, 96),
        "input_adapters.rgb.proj.weight": sd["patch_embed.proj.weight"],
        "input_adapters.rgb.proj.bias": sd["patch_embed.proj.bias"],
        "input_adapters.depth.proj.weight": torch.zeros(96, 1, 16, 16),
        "output_adapters.depth.out_proj.weight": torch.zeros(4, 4),
    }
    multimae.update({"encoder." + k[len("blocks.") :]: v for k, v in sd.items() if k.startswith("blocks.")})
    torch.save({"model": multimae}, tmp_path / "multimae.pth")
    model = _vit(vit_cfg)
    summary = _load(model, f"multimae:{tmp_path / 'multimae.pth'}")
    assert summary["missing"] == []
    assert torch.equal(model.backbone.net.blocks[3].mlp.fc2.weight, sd["blocks.3.mlp.fc2.weight"])
    assert torch.equal(model.backbone.net.patch_embed.proj.weight, sd["patch_embed.proj.weight"])
    assert "input_adapters.depth.proj.weight" in summary["dropped"]


def _assert_r50_loaded(model, tv):
    bottom_up = model.backbone.bottom_up
    assert torch.equal(bottom_up.stem.conv1.weight, tv["conv1.weight"])
    assert torch.equal(bottom_up.res2[0].conv1.weight, tv["layer1.0.conv1.weight"])
    assert torch.equal(bottom_up.res5[2].conv3.norm.running_var, tv["layer4.2.bn3.running_var"])
    assert torch.equal(bottom_up.res3[0].shortcut.norm.weight, tv["layer2.0.downsample.1.weight"])


def test_pri3d_resnet50_to_detectron2_names(r50_model, tmp_path):
    tv = torchvision.models.resnet50().state_dict()
    pri3d = {"backbone.encoder." + k: v for k, v in tv.items() if not k.startswith("fc.")}
    pri3d["backbone.decoder.up1.conv1.weight"] = torch.zeros(1)
    torch.save({"model": pri3d, "epoch": 5}, tmp_path / "pri3d.pth")
    summary = _load(r50_model, f"pri3d:{tmp_path / 'pri3d.pth'}")
    assert summary["missing"] == []
    assert summary["dropped"] == ["backbone.decoder.up1.conv1.weight"]
    _assert_r50_loaded(r50_model, tv)


def test_supervised_torchvision_resnet50(r50_model, tmp_path):
    tv = torchvision.models.resnet50().state_dict()
    torch.save(tv, tmp_path / "r50.pth")
    assert _load(r50_model, f"supervised:{tmp_path / 'r50.pth'}")["missing"] == []
    _assert_r50_loaded(r50_model, tv)


def test_pretrain_export_round_trip(tmp_path):
    """A checkpoint of our pre-training model, exported by pretrain.export, rebuilds and fills the ViT."""
    from pretrain.export import export
    from pretrain.model import MaskedRGBD

    pre = MaskedRGBD(
        objective="mask3d",
        embed_dim=64,
        depth=3,
        num_heads=2,
        img_size=(96, 128),
        decoder_dim=32,
        decoder_depth=1,
        decoder_heads=2,
    )
    torch.save({"model": pre.state_dict(), "arch": pre.arch(), "iteration": 9}, tmp_path / "checkpoint.pth")
    export(tmp_path, tmp_path / "backbone.pth")

    converted = inits.convert(inits.parse(f"mask3d:{tmp_path / 'backbone.pth'}"))
    cfg = _cfg(VIT_CONFIG)
    architecture.apply(cfg, inits.architecture(converted))
    model = instantiate(cfg.model)
    summary = inits.load(model, converted)
    assert summary["missing"] == [] and summary["resized"] == []
    assert torch.equal(model.backbone.net.blocks[2].attn.qkv.weight, pre.blocks[2].attn.qkv.weight)
    model.eval()
    with torch.no_grad():
        out = model([{"image": torch.zeros(3, 96, 128), "height": 96, "width": 128}])
    assert out[0]["sem_seg"].shape[-2:] == (96, 128)


def _export(tmp_path, img_size, **kw):
    """A pre-training model and the `mask3d:` spec of its export; the seed makes each test's model its own."""
    from pretrain.export import export
    from pretrain.model import MaskedRGBD

    torch.manual_seed(3)
    pre = MaskedRGBD(
        objective="mask3d",
        embed_dim=32,
        depth=2,
        num_heads=2,
        img_size=img_size,
        decoder_dim=32,
        decoder_depth=1,
        decoder_heads=2,
        **kw,
    ).eval()
    torch.save({"model": pre.state_dict(), "arch": pre.arch(), "iteration": 9}, tmp_path / "checkpoint.pth")
    export(tmp_path, tmp_path / "backbone.pth")
    return pre, f"mask3d:{tmp_path / 'backbone.pth'}"


def _vit_from_export(spec):
    """The benchmark's ViT built from an export the way `train_net` builds it, windows and rel. positions off."""
    converted = inits.convert(inits.parse(spec))
    cfg = _cfg(VIT_CONFIG)
    architecture.apply(cfg, inits.architecture(converted))
    cfg.model.backbone.net.update(use_rel_pos=False, window_block_indexes=[])
    model = instantiate(cfg.model).eval()
    summary = inits.load(model, converted)
    assert summary["missing"] == [] and summary["resized"] == []
    return model.backbone.net


@pytest.mark.parametrize("img_size", [(240, 320), (96, 128), (224, 224)])
def test_export_hands_over_exactly_at_the_pretraining_resolution(tmp_path, img_size):
    """Detectron2's ViT built from an export computes our encoder's features at the pre-training size,
    whatever its aspect ratio."""
    pre, spec = _export(tmp_path, img_size)
    net = _vit_from_export(spec)
    image = torch.randint(0, 256, (2, 3, *img_size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = pre.features(image)
        theirs = net(pre.normalize(image))["last_feat"]
    assert theirs.shape == ours.shape == (2, 32, img_size[0] // 16, img_size[1] // 16)
    assert (theirs - ours).abs().max() <= 1e-5 * ours.abs().max()


def test_other_resolutions_resize_from_the_pretraining_grid(tmp_path):
    from timm.layers import resample_abs_pos_embed

    pre, spec = _export(tmp_path, (96, 128))
    net = _vit_from_export(spec)
    assert net.pretrain_grid == (6, 8)
    table = pre.pos_embed  # (1, 6*8, C), the embedding our encoder was trained with
    for grid in ((6, 8), (12, 16), (15, 20), (3, 4)):
        expected = resample_abs_pos_embed(table, list(grid), [6, 8], num_prefix_tokens=0).reshape(1, *grid, -1)
        assert torch.allclose(net.abs_pos(grid), expected, atol=1e-6), grid
    square = resample_abs_pos_embed(
        resample_abs_pos_embed(table, [14, 14], [6, 8], num_prefix_tokens=0), [15, 20], num_prefix_tokens=0
    ).reshape(1, 15, 20, -1)
    assert not torch.allclose(net.abs_pos((15, 20)), square, atol=1e-3)  # not through a square stand-in


def test_exports_with_a_square_grid_from_before_pretrain_grid_still_load(tmp_path):
    _, spec = _export(tmp_path, (224, 224))
    path = tmp_path / "backbone.pth"
    exported = torch.load(path, weights_only=True)
    del exported["meta"]["pretrain_grid"]
    torch.save(exported, path)
    assert inits.architecture(inits.convert(inits.parse(spec))).pretrain_grid == (14, 14)
    assert _vit_from_export(spec).pretrain_grid == (14, 14)


def test_d2_checkpoint_round_trip_through_detection_checkpointer(vit_cfg, tmp_path):
    model = _vit(vit_cfg)
    AtomicCheckpointer(model, str(tmp_path)).save("model_final")
    assert (tmp_path / "last_checkpoint").read_text() == "model_final.pth"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    torch.manual_seed(5)
    fresh = instantiate(vit_cfg.model)
    DetectionCheckpointer(fresh).load(str(tmp_path / "model_final.pth"))
    for (k, a), b in zip(model.state_dict().items(), fresh.state_dict().values(), strict=False):
        assert torch.equal(a, b), k
    fresh2 = instantiate(vit_cfg.model)
    assert _load(fresh2, f"d2:{tmp_path / 'model_final.pth'}")["missing"] == []
    assert torch.equal(fresh2.sem_seg_head.predictor.weight, model.sem_seg_head.predictor.weight)


def test_bad_files_give_clear_errors(vit_cfg, r50_model, tmp_path):
    model = _vit(vit_cfg)
    with pytest.raises(inits.InitError, match="does not exist"):
        _load(model, f"mae:{tmp_path / 'absent.pth'}")

    sd = _timm_vit()
    torch.save(sd, tmp_path / "full.pth")
    (tmp_path / "cut.pth").write_bytes((tmp_path / "full.pth").read_bytes()[:5000])
    with pytest.raises(inits.InitError, match="cut.pth.*truncated"):
        _load(model, f"timm:{tmp_path / 'cut.pth'}")

    torch.save({"model": sd, "opt": torch.optim.SGD}, tmp_path / "pickled.pth")  # code, refused by weights_only
    with pytest.raises(inits.InitError, match="pickled.pth.*objects other than tensors"):
        _load(model, f"mae:{tmp_path / 'pickled.pth'}")

    torch.save(dict(sd, **{"blocks.0.ls1.gamma": torch.ones(96)}), tmp_path / "layerscale.pth")
    with pytest.raises(inits.InitError, match="no place in the model.*ls1.gamma"):
        _load(model, f"timm:{tmp_path / 'layerscale.pth'}")

    partial = {k: v for k, v in sd.items() if not k.startswith("blocks.3.")}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(inits.InitError, match="missing.*blocks.3.*allow-missing-init"):
        _load(model, f"timm:{tmp_path / 'partial.pth'}")
    assert len(_load(model, f"timm:{tmp_path / 'partial.pth'}", allow_missing=True)["missing"]) == 12

    torch.save(
        timm.models.vision_transformer.VisionTransformer(
            img_size=112, patch_size=16, embed_dim=48, depth=4, num_heads=3
        ).state_dict(),
        tmp_path / "narrow.pth",
    )
    with pytest.raises(inits.InitError, match="backbone differs"):
        _load(model, f"timm:{tmp_path / 'narrow.pth'}")

    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "r18.pth")
    with pytest.raises(inits.InitError, match="has none; use an r50 config"):
        _load(model, f"supervised:{tmp_path / 'r18.pth'}")
    with pytest.raises(inits.InitError, match="not a Mask3D export"):
        _load(model, f"mask3d:{tmp_path / 'full.pth'}")
    with pytest.raises(inits.InitError, match="not a Pri3D checkpoint"):
        _load(r50_model, f"pri3d:{tmp_path / 'full.pth'}")

    torch.save({"model": {"backbone.net.pos_embed": torch.zeros(1, 1 + 6 * 8, 96)}}, tmp_path / "grid6x8.pth")
    with pytest.raises(inits.InitError, match="not a cls slot plus a square grid.*pretrain_grid"):
        _load(model, f"d2:{tmp_path / 'grid6x8.pth'}")  # a fine-tuned run's grid must come from its config


def test_specs_and_named_baselines(tmp_path):
    registry = tmp_path / "baselines.yaml"
    registry.write_text(
        "- name: imagenet_mae\n  init: mae:checkpoints/mae.pth\n  backbone: vit_b\n"
        "- name: scratch\n  init: random\n  backbone: r50\n- name: loop\n  init: loop\n  backbone: r50\n"
    )
    spec = inits.parse("imagenet_mae", registry)
    assert (spec.kind, str(spec.path), spec.label, spec.baseline_backbone) == (
        "mae",
        "checkpoints/mae.pth",
        "imagenet_mae",
        "vit_b",
    )
    assert inits.parse("scratch", registry).kind == "random"
    assert inits.parse("random").label == "random"
    assert inits.parse("timm:/x/y.safetensors").path.name == "y.safetensors"
    with pytest.raises(inits.InitError, match="must be 'random' or KIND:PATH"):
        inits.parse("loop", registry)
    with pytest.raises(inits.InitError, match="known: imagenet_mae, scratch, loop"):
        inits.parse("nope", registry)
    with pytest.raises(inits.InitError, match="unknown init kind 'dino'"):
        inits.parse("dino:/x.pth", registry)
    with pytest.raises(inits.InitError, match="no baseline registry"):
        inits.parse("imagenet_mae", tmp_path / "absent.yaml")


def test_every_entry_of_the_real_baseline_registry_parses():
    import yaml

    for entry in yaml.safe_load(baselines.DEFAULT_PATH.read_text()):
        spec = inits.parse(entry["name"])
        assert spec.label == entry["name"] and spec.kind == entry["init"].split(":")[0]
