"""A new pre-training objective needs no change to library code: a class registered in `OBJECTIVE_REGISTRY`, here
in the test file itself, pre-trains and exports through the normal command lines (`python -m pretrain`,
`python -m pretrain.export`). docs/add_objective.md starts from this file."""

import json

import pytest
import torch
from torch import nn

from pretrain import export as export_cli
from pretrain import train as train_mod
from pretrain.masking import gather_tokens, patchify, random_masking
from pretrain.model import OBJECTIVE_REGISTRY, MaskedRGBD, objective_class

CONFIG = "pretrain/configs/default_cpu.py"
SETTINGS = {
    "model.objective": "rgb_to_depth",
    "model.embed_dim": 32,
    "model.depth": 2,
    "model.num_heads": 2,
    "model.img_size": (96, 128),
    "data.names": "synthetic_rgbd_train",
    "data.workers": 0,
    "train.batch_size": 4,
    "train.max_iter": 8,
    "train.base_lr": 1.0,
    "train.warmup_iters": 1,
    "train.checkpoint_period": 4,
    "train.vis_period": 0,
    "train.log_period": 4,
    "train.cpu_threads": 1,
}


@OBJECTIVE_REGISTRY.register()
class RGBToDepth(MaskedRGBD):
    """Regresses, in metres, the depth of each visible patch from the encoder's token of it (no decoder)."""

    name = "rgb_to_depth"  # model.objective=rgb_to_depth
    batch_keys = ("image", "depth", "valid")  # what `losses` reads; the trainer checks each batch has depth

    def build(self, rgb_to_depth_hidden=64):  # its options: `model.rgb_to_depth_hidden=...`
        p = self.patch_size
        self.depth_head = nn.Sequential(
            nn.Linear(self.embed_dim, rgb_to_depth_hidden), nn.GELU(), nn.Linear(rgb_to_depth_hidden, p * p)
        )

    def losses(self, batch, generator):
        x, grid = self.embed_rgb(batch["image"])
        keep, _, mask = random_masking(x.shape[0], x.shape[1], self.rgb_mask_ratio, x.device, generator)
        pred = self.depth_head(self.encode(gather_tokens(x, keep))).float()
        target = gather_tokens(patchify(batch["depth"].float(), self.patch_size), keep)
        valid = gather_tokens(patchify(batch["valid"].float(), self.patch_size), keep)
        loss = ((pred - target).abs() * valid).sum() / valid.sum().clamp(min=1)
        return {"loss": loss, "loss_depth": loss, "rgb_mask": mask, "grid": grid}

    def metrics(self, dataset, device, seed, amp=False):
        return {"visible_patches": float(max(1, int(self.grid[0] * self.grid[1] * (1 - self.rgb_mask_ratio))))}


def _run(out, **overrides):
    settings = {**SETTINGS, "train.output_dir": str(out), **overrides}
    return train_mod.main(["--config", CONFIG, *[f"{k}={v}" for k, v in settings.items()]])


def test_a_registered_objective_pretrains_and_exports_through_the_command_lines(synthetic_root, tmp_path):
    assert objective_class("rgb_to_depth") is RGBToDepth
    model = MaskedRGBD(objective="rgb_to_depth", embed_dim=32, depth=1, num_heads=2, img_size=(32, 32))
    assert isinstance(model, RGBToDepth) and model.depth_head[0].out_features == 64

    out = tmp_path / "run"
    assert _run(out, **{"model.rgb_to_depth_hidden": 16}) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["objective"] == "rgb_to_depth" and metrics["iterations"] == 8
    assert metrics["loss"] < 0.8 * metrics["loss_start"] and metrics["visible_patches"] == 12.0
    ckpt = torch.load(out / "checkpoint.pth", weights_only=True)
    assert ckpt["model"]["depth_head.0.weight"].shape == (16, 32)
    assert not list(out.glob("reconstruction*.png"))  # it draws no picture

    exported = torch.load(out / "backbone.pth", weights_only=True)
    assert exported["meta"]["objective"] == "rgb_to_depth" and exported["meta"]["iteration"] == 8
    assert not any("depth_head" in k for k in exported["model"])
    assert export_cli.main([str(out), str(tmp_path / "again.pth")]) == 0
    again = torch.load(tmp_path / "again.pth", weights_only=True)["model"]
    assert again.keys() == exported["model"].keys()
    assert all(torch.equal(again[k], exported["model"][k]) for k in again)
    key = "backbone.net.blocks.0.attn.qkv.weight"
    assert torch.equal(again[key], ckpt["model"]["blocks.0.attn.qkv.weight"])


def test_unknown_objective_or_option_is_one_line_naming_the_registered_ones(synthetic_root, tmp_path, capsys):
    assert _run(tmp_path / "a", **{"model.objective": "rgb_to_dept"}) == 1
    err = capsys.readouterr().err
    assert "'rgb_to_dept' is not a registered objective" in err and "rgb_to_depth" in err and "mask3d" in err
    assert _run(tmp_path / "b", **{"model.rgb_to_depth_hiden": 8}) == 1
    assert "model.rgb_to_depth_hiden: no such key" in capsys.readouterr().err
    with pytest.raises(ValueError, match="is not a registered objective; registered: .*none, pri3d"):
        objective_class("nope")
