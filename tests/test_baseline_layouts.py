"""The README's "Adding a baseline" steps, for a random-weight checkpoint in each real key layout we import:
registry entry -> `python -m results.baselines NAME` -> `benchmark.suite scannet --init NAME --tasks semseg` on
the synthetic tree. The run fine-tunes the checkpoint's own architecture, loads every backbone weight, and its
record names what was built."""

import json
from pathlib import Path

import pytest
import timm
import torch
import torchvision
import yaml
from detectron2.config import LazyConfig, instantiate

from benchmark import suite
from benchmark.backbones import set_vit_architecture
from benchmark.checkpoint import AtomicCheckpointer
from benchmark.tiny import make_tiny
from results import baselines
from results.store import read_records

VIT_T = "ViT 192 wide, 12 blocks, 3 heads, mlp 4, patch 16, grid 14x14"
VIT_S = "ViT 384 wide, 12 blocks, 6 heads, mlp 4, patch 16, grid 14x14"


def _timm(name, **kw):
    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False, **kw).state_dict()


def ours(path):
    """`python -m pretrain.export` of a ViT-Ti pre-trained at 96x128 (a 6x8 grid, heads from the meta)."""
    from pretrain.export import export
    from pretrain.model import MaskedRGBD

    torch.manual_seed(0)
    pre = MaskedRGBD(objective="none", preset="vit_t", img_size=(96, 128))
    torch.save({"model": pre.state_dict(), "arch": pre.arch(), "iteration": 0}, path.parent / "checkpoint.pth")
    export(path.parent, path)


def timm_safetensors(path):
    from safetensors.torch import save_file

    save_file(_timm("vit_tiny_patch16_224", num_classes=10), str(path))


def mae(path):
    """MAE's pre-training checkpoint: `{"model": encoder + decoder_* + mask_token}`, no classifier."""
    sd = _timm("vit_tiny_patch16_224", num_classes=0)
    sd.update({"mask_token": torch.zeros(1, 1, 128), "decoder_embed.weight": torch.zeros(128, 192)})
    sd.update({"decoder_blocks.0.norm1.weight": torch.ones(128), "decoder_pred.weight": torch.zeros(768, 128)})
    torch.save({"model": sd, "epoch": 799}, path)


def deit(path):
    """DeiT's distilled checkpoint: `{"model": ...}` with a distillation token and two classifier heads."""
    torch.save({"model": _timm("deit_tiny_distilled_patch16_224", num_classes=10)}, path)


def dino(path):
    """DINO's "backbone only" file: a bare ViT-S state dict with cls token and final norm, no head."""
    torch.save(_timm("vit_small_patch16_224", num_classes=0), path)


def multimae(path):
    sd = _timm("vit_tiny_patch16_224", num_classes=0)
    grid = sd["pos_embed"][:, 1:].reshape(1, 14, 14, 192).permute(0, 3, 1, 2)
    out = {
        "input_adapters.rgb.pos_emb": grid,
        "input_adapters.rgb.proj.weight": sd["patch_embed.proj.weight"],
        "input_adapters.rgb.proj.bias": sd["patch_embed.proj.bias"],
        "input_adapters.depth.proj.weight": torch.zeros(192, 1, 16, 16),
        "global_tokens": torch.zeros(1, 1, 192),
        "output_adapters.depth.out_proj.weight": torch.zeros(4, 4),
    }
    out.update({"encoder." + k[len("blocks.") :]: v for k, v in sd.items() if k.startswith("blocks.")})
    torch.save({"model": out}, path)


def detectron2(path):
    """A whole Detectron2 model (a ViT-Ti semantic segmentor) as DetectionCheckpointer saves it; its heads come
    from the rel_pos tables' head dimension."""
    cfg = LazyConfig.load("benchmark/configs/scannet/semseg_vit_b.py")
    make_tiny(cfg)
    set_vit_architecture(cfg, embed_dim=192, depth=12, num_heads=3)
    torch.manual_seed(0)
    AtomicCheckpointer(instantiate(cfg.model), str(path.parent)).save(path.stem)


def torchvision_r50(path):
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), path)


# name -> (kind, writer, file name, backbone the record names, architecture it describes)
LAYOUTS = {
    "ours": ("mask3d", ours, "backbone.pth", "vit_t", "ViT 192 wide, 12 blocks, 3 heads, mlp 4, patch 16, grid 6x8"),
    "timm_vitt": ("timm", timm_safetensors, "vit.safetensors", "vit_t", VIT_T),
    "mae_vitt": ("mae", mae, "mae.pth", "vit_t", VIT_T),
    "deit_vitt": ("supervised", deit, "deit.pth", "vit_t", VIT_T),
    "dino_vits": ("timm", dino, "dino.pth", "vit_s", VIT_S),
    "multimae_vitt": ("multimae", multimae, "multimae.pth", "vit_t", VIT_T),
    "d2_vitt": ("d2", detectron2, "model_final.pth", "vit_t", VIT_T),
    "torchvision_r50": ("timm", torchvision_r50, "r50.pth", "r50", "ResNet-50"),
}


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """Each layout's file and a registry naming it, as a user would add it."""
    root = tmp_path_factory.mktemp("baselines")
    entries = []
    for name, (kind, write, file, backbone, _) in LAYOUTS.items():
        (root / name).mkdir()
        write(root / name / file)
        entries.append(
            dict(name=name, init=f"{kind}:{root / name / file}", backbone=backbone, references=[], note="test")
        )
    (root / "baselines.yaml").write_text(yaml.safe_dump(entries))
    return root / "baselines.yaml"


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_a_registered_baseline_fine_tunes_on_its_own_architecture(
    name, registry, synthetic_root, tmp_path, monkeypatch, capsys
):
    _, _, _, backbone, described = LAYOUTS[name]
    monkeypatch.setenv(baselines.REGISTRY_ENV, str(registry))
    assert baselines.main([name]) == 0
    assert capsys.readouterr().out.strip().startswith(LAYOUTS[name][0] + ":")
    argv = ["scannet", "--init", name, "--tasks", "semseg", "--iters", "1", "--output", str(tmp_path)]
    assert suite.main(argv) == 0, capsys.readouterr()
    (record,) = read_records()
    assert (record["init"], record["backbone"], record["architecture"]) == (name, backbone, described)
    log = (Path(record["output_dir"]) / "log.txt").read_text()
    assert ", 0 missing," in log and "tensors loaded" in log  # every backbone weight came from the file
    assert json.loads((Path(record["output_dir"]) / "metrics.json").read_text())["record"] == record
