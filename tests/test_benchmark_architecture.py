"""The backbone shape every init kind brings (`benchmark.architecture`): read from the tensors, heads by a
documented rule where shapes cannot tell, the tiny recipe never shrinking it, overrides that contradict it
refused in one line; our encoder in timm's names; every pre-training path the docs show is one we write."""

import re
from dataclasses import replace
from pathlib import Path

import pytest
import timm
import torch
import torchvision

from benchmark import architecture, inits, train_net
from benchmark.architecture import ArchitectureError, ResNetShape, ViTShape
from results import baselines

VIT = "benchmark/configs/scannet/semseg_vit_b.py"
R50 = "benchmark/configs/scannet/semseg_r50.py"


def _state(spec_path, kind="timm"):
    return inits.convert(inits.parse(f"{kind}:{spec_path}"))


def _timm_file(tmp_path, name, **kw):
    torch.manual_seed(0)
    path = tmp_path / f"{name}.pth"
    torch.save(timm.create_model(name, pretrained=False, **kw).state_dict(), path)
    return path


@pytest.mark.parametrize(
    "name, kw, shape",
    [
        ("vit_tiny_patch16_224", {}, (192, 12, 3, 4.0, 16, (14, 14))),
        ("vit_small_patch16_224", {"img_size": 96}, (384, 12, 6, 4.0, 16, (6, 6))),
        ("vit_base_patch16_224", {"depth": 2}, (768, 2, 12, 4.0, 16, (14, 14))),
        ("vit_small_patch8_224", {"depth": 1, "mlp_ratio": 2.0}, (384, 1, 6, 2.0, 8, (28, 28))),
        ("vit_huge_patch14_224", {"depth": 1}, (1280, 1, 16, 4.0, 14, (16, 16))),  # 80 channels a head
        ("vit_base_patch16_224", {"depth": 1, "embed_dim": 320, "num_heads": 5}, (320, 1, 5, 4.0, 16, (14, 14))),
    ],
)
def test_vit_shape_from_the_tensors_and_heads_by_the_documented_rule(tmp_path, name, kw, shape):
    got = inits.architecture(_state(_timm_file(tmp_path, name, num_classes=0, **kw)))
    assert (got.embed_dim, got.depth, got.num_heads, got.mlp_ratio, got.patch_size, got.pretrain_grid) == shape
    assert got.qkv_bias and got.heads_from == "rule"


def test_heads_come_from_meta_or_rel_pos_before_the_rule(tmp_path):
    sd = timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=1, num_classes=0).state_dict()
    assert architecture.read(sd, {"num_heads": 4}).num_heads == 4  # our exports say it
    rel = dict(sd, **{"blocks.0.attn.rel_pos_h": torch.zeros(27, 48), "blocks.0.attn.rel_pos_w": torch.zeros(27, 48)})
    assert architecture.read(rel) == replace(architecture.read(sd), num_heads=4, heads_from="rel_pos")  # 192 / 48
    assert architecture.read(sd).num_heads == 3  # the rule: ViT-Ti's width
    odd = {k: v for k, v in sd.items() if k != "pos_embed"}
    odd["patch_embed.proj.weight"] = torch.zeros(100, 3, 16, 16)
    with pytest.raises(ArchitectureError, match="set model.backbone.net.num_heads=N"):
        architecture.read(odd, where="odd.pth")
    no_bias = {k: v for k, v in sd.items() if not k.endswith("qkv.bias")}
    assert not architecture.read(no_bias).qkv_bias


@pytest.mark.parametrize("depth", [18, 50, 101])
def test_resnet_depth_from_blocks_per_stage_in_torchvision_moco_and_detectron2_layouts(tmp_path, depth):
    torch.manual_seed(0)
    sd = getattr(torchvision.models, f"resnet{depth}")(weights=None).state_dict()
    torch.save(sd, tmp_path / "tv.pth")
    moco = {"module.encoder_q." + k: v for k, v in sd.items()} | {"module.encoder_k.conv1.weight": sd["conv1.weight"]}
    torch.save({"state_dict": {**moco, "module.queue": torch.zeros(128, 8)}}, tmp_path / "moco.pth")
    for path in (tmp_path / "tv.pth", tmp_path / "moco.pth"):
        converted = _state(path)
        assert inits.architecture(converted) == ResNetShape(depth)
    assert "encoder_k.conv1.weight" in converted.dropped and "queue" in converted.dropped
    d2 = {"backbone.bottom_up." + k: v for k, v in converted.state.items()}
    assert architecture.read(d2) == ResNetShape(depth)


def test_wide_resnets_are_refused_with_both_widths(tmp_path):
    sd = torchvision.models.wide_resnet50_2(weights=None).state_dict()
    torch.save(sd, tmp_path / "wide.pth")
    with pytest.raises(ArchitectureError, match="128-channel first blocks"):
        inits.architecture(_state(tmp_path / "wide.pth"))


def _load(*argv):
    args = train_net.build_parser().parse_args(["--tiny", *argv])
    return train_net.load_config(args)[0]


def test_tiny_recipe_shrinks_frames_never_the_given_backbone(tmp_path):
    vit_s = _timm_file(tmp_path, "vit_small_patch16_224", num_classes=0)
    cfg = _load("--config-file", VIT, "--init", f"timm:{vit_s}")
    assert architecture.of_config(cfg) == ViTShape(384, 12, 6, 4.0, 16, True, (14, 14), "config")
    assert cfg.model.backbone.net.img_size == 128  # the recipe's frames
    random = _load("--config-file", VIT, "--init", "random")
    assert (random.model.backbone.net.embed_dim, random.model.backbone.net.depth) == (96, 4)  # CPU_VIT
    torch.save(torchvision.models.resnet101(weights=None).state_dict(), tmp_path / "r101.pth")
    assert (
        _load("--config-file", R50, "--init", f"timm:{tmp_path / 'r101.pth'}").model.backbone.bottom_up.stages.depth
        == 101
    )


def test_an_override_that_contradicts_the_checkpoint_is_one_line_naming_both(tmp_path, capsys):
    vit_s = _timm_file(tmp_path, "vit_small_patch16_224", num_classes=0)
    with pytest.raises(ArchitectureError) as e:
        _load("--config-file", VIT, "--init", f"timm:{vit_s}", "model.backbone.net.embed_dim=192")
    assert "holds a ViT 384 wide, 12 blocks, 6 heads (from rule)" in str(e.value)
    assert "ask for a ViT 192 wide" in str(e.value)
    # heads by the rule are not a fact: an override of them stands
    assert (
        _load(
            "--config-file", VIT, "--init", f"timm:{vit_s}", "model.backbone.net.num_heads=12"
        ).model.backbone.net.num_heads
        == 12
    )
    argv = ["--config-file", VIT, "--tiny", "--init", f"timm:{vit_s}", "model.backbone.net.depth=6"]
    assert train_net.main([*argv, f"train.output_dir={tmp_path / 'run'}"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "12 blocks" in err[0] and "6 blocks" in err[0]
    with pytest.raises(ArchitectureError, match="use a vit_b config"):
        _load("--config-file", R50, "--init", f"timm:{vit_s}")


# --- our weights outside Detectron2 ----------------------------------------------------------------------
def _pretrained(tmp_path, img_size=(96, 128)):
    from pretrain.model import MaskedRGBD

    torch.manual_seed(0)
    pre = MaskedRGBD(
        objective="mask3d",
        embed_dim=64,
        depth=3,
        num_heads=2,
        patch_size=16,
        img_size=img_size,
        decoder_dim=32,
        decoder_depth=1,
        decoder_heads=2,
    ).eval()
    with torch.no_grad():  # a final norm that is not the identity, so leaving it behind would show
        pre.norm.weight.uniform_(0.5, 1.5)
        pre.norm.bias.uniform_(-0.5, 0.5)
    torch.save({"model": pre.state_dict(), "arch": pre.arch(), "iteration": 5}, tmp_path / "checkpoint.pth")
    return pre


def test_timm_export_loads_in_timm_with_our_features(tmp_path, capsys):
    from pretrain.export import main

    pre = _pretrained(tmp_path)
    out = tmp_path / "encoder.safetensors"
    assert main([str(tmp_path), str(out), "--format", "timm"]) == 0
    snippet = capsys.readouterr().out.strip().splitlines()[-1].strip()
    assert snippet.startswith('timm.create_model("vit_base_patch16_224", pretrained=True')
    model = eval(snippet, {"timm": timm}).eval()  # the very call the command prints
    from safetensors.torch import load_file

    assert set(load_file(out)) == set(model.state_dict())  # no missing encoder key, nothing left over
    image = torch.randint(0, 256, (2, 3, 96, 128), generator=torch.Generator().manual_seed(1)).float()
    with torch.no_grad():
        ours = pre.norm(pre.features(image).flatten(2).transpose(1, 2))
        theirs = model.forward_features(pre.normalize(image))
    assert theirs.shape == ours.shape == (2, 48, 64)
    diff = (theirs - ours).abs().max().item()
    assert diff < 1e-4, diff  # measured: 0.0, timm runs the same blocks
    assert main([str(tmp_path), str(tmp_path / "encoder.pth"), "--format", "timm"]) == 1
    assert "name the output *.safetensors" in capsys.readouterr().err


def test_timm_export_comes_back_as_a_timm_init_on_its_own_grid(tmp_path):
    from pretrain.export import export, export_timm

    _pretrained(tmp_path)
    export_timm(tmp_path, tmp_path / "encoder.safetensors")
    export(tmp_path, tmp_path / "backbone.pth")
    via_timm = inits.convert(inits.parse(f"timm:{tmp_path / 'encoder.safetensors'}"))
    via_d2 = inits.convert(inits.parse(f"mask3d:{tmp_path / 'backbone.pth'}"))
    assert inits.architecture(via_timm) == inits.architecture(via_d2)  # 6x8 grid and heads from the header
    assert inits.architecture(via_timm).pretrain_grid == (6, 8)
    for key, value in via_d2.state.items():
        assert torch.equal(via_timm.state[key], value), key


# --- paths the docs show --------------------------------------------------------------------------------
def test_every_pretraining_path_in_the_docs_is_one_pretraining_writes():
    from core import runs
    from pretrain.model import registered_objectives
    from pretrain.train import run_name

    configs = [p for p in Path("pretrain/configs").glob("*.py") if p.stem != "base"]
    written = {
        str(runs.output_dir("", "pretrain", run_name(str(c), o)) / "backbone.pth")
        for c in configs
        for o in registered_objectives()
    }
    shown = set()
    for doc in ("README.md", "results/baselines.yaml"):
        shown |= set(re.findall(r"output/pretrain/[\w.-]+/backbone\.pth", Path(doc).read_text()))
    assert shown and shown <= written, shown - written
    mask3d = baselines.load_baselines(baselines.DEFAULT_PATH)["mask3d"].init
    folder = runs.output_dir("", "pretrain", run_name("pretrain/configs/scannet_vit_b.py", "mask3d"))
    assert mask3d == f"mask3d:{folder}/backbone.pth"


def test_an_export_whose_grid_disagrees_with_its_table_is_named(tmp_path):
    from pretrain.export import export

    _pretrained(tmp_path)  # 96x128, patch 16: a 6x8 grid
    export(tmp_path, tmp_path / "backbone.pth")
    exported = torch.load(tmp_path / "backbone.pth", weights_only=True)
    exported["meta"]["pretrain_grid"] = [8, 8]
    torch.save(exported, tmp_path / "backbone.pth")
    with pytest.raises(
        ArchitectureError, match="pos_embed has 48 tokens after its cls slot, not the 8x8 pretrain_grid"
    ):
        inits.architecture(_state(tmp_path / "backbone.pth", "mask3d"))
