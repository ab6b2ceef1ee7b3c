"""The `supervised` objective (the positive control): labels share every frame's crop and flip without changing the
random stream, it overfits a fixed batch, pre-trains and exports through the command line, the export starts a
benchmark model (`--init mask3d:PATH`), and a dataset without labels or with another class count is one line."""

import json

import cv2
import numpy as np
import torch
from torch.utils.data import default_collate

from pretrain import train as train_mod
from pretrain.data import RGBDPretrainDataset, dataset_dicts, to_model_inputs
from pretrain.model import MaskedRGBD

CONFIG = "pretrain/configs/default_cpu.py"
SIZE = (96, 128)
SETTINGS = {
    "model.objective": "supervised",
    "model.embed_dim": 32,
    "model.depth": 2,
    "model.num_heads": 2,
    "model.img_size": SIZE,
    "data.names": "synthetic_sem_seg_train",
    "data.workers": 0,
    "train.batch_size": 4,
    "train.max_iter": 4,
    "train.base_lr": 0.1,
    "train.warmup_iters": 1,
    "train.checkpoint_period": 4,
    "train.vis_period": 0,
    "train.log_period": 1,
    "train.cpu_threads": 1,
}


def _run(out, **overrides):
    settings = {**SETTINGS, "train.output_dir": str(out), **overrides}
    return train_mod.main(["--config", CONFIG, *[f"{k}={v}" for k, v in settings.items()]])


def _frame(tmp_path, h=120, w=160):
    """8 vertical bands: depth k metres, red 30k, label k - 1 (the top rows unlabelled: 255)."""
    steps = np.repeat(np.arange(1, 9), w // 8)[None].repeat(h, 0)
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[..., 0] = steps * 30
    labels = (steps - 1).astype(np.uint8)
    labels[:10] = 255
    cv2.imwrite(str(tmp_path / "a.jpg"), rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 100])
    cv2.imwrite(str(tmp_path / "a.png"), (steps * 1000).astype(np.uint16))
    cv2.imwrite(str(tmp_path / "a_label.png"), labels)
    return {
        "file_name": str(tmp_path / "a.jpg"),
        "depth_file_name": str(tmp_path / "a.png"),
        "sem_seg_file_name": str(tmp_path / "a_label.png"),
        "height": h,
        "width": w,
        "image_id": "a",
    }


def test_labels_share_crop_and_flip_and_leave_the_stream_unchanged(tmp_path):
    d = _frame(tmp_path)
    plain = RGBDPretrainDataset([d], (48, 64), color_jitter=0.4)
    labelled = RGBDPretrainDataset([d], (48, 64), color_jitter=0.4, sem_seg=True)
    flips = set()
    for k in range(12):
        a, b = plain[(0, [0, 0, 0, k])], labelled[(0, [0, 0, 0, k])]
        assert a.keys() == {"rgb", "depth_mm"} and b.keys() == a.keys() | {"sem_seg"}
        assert all(torch.equal(a[key], b[key]) for key in a)  # the other objectives' stream is bit-identical
        labels, depth = b["sem_seg"].numpy(), b["depth_mm"].numpy() / 1000.0
        assert labels.shape == (48, 64) and labels.dtype == np.uint8
        assert set(np.unique(labels)) <= {255, *range(8)}  # nearest: no blended ids
        known = labels != 255
        assert known.any() and np.array_equal(labels[known] + 1, depth[known].round().astype(np.uint8))
        row = known.all(1)
        if row.any() and np.ptp(labels[row][0]) > 0:
            flips.add(bool(labels[row][0][0] > labels[row][0][-1]))
    assert flips == {True, False}
    assert torch.equal(labelled[0]["sem_seg"], labelled[0]["sem_seg"])  # centre views are fixed


def test_supervised_overfits_a_fixed_batch(synthetic_root):
    torch.manual_seed(0)
    model = MaskedRGBD(objective="supervised", embed_dim=32, depth=2, num_heads=2, img_size=SIZE)
    dataset = RGBDPretrainDataset(dataset_dicts("synthetic_sem_seg_train", sem_seg_classes=20), SIZE, sem_seg=True)
    batch = to_model_inputs(default_collate([dataset[(i, [0, i])] for i in range(4)]), "cpu")
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses, accuracies = [], []
    for _ in range(20):
        out = model(batch["image"], sem_seg=batch["sem_seg"])
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        losses.append(out["loss"].item())
        accuracies.append(out["pixel_acc"])
    assert losses[0] > 2.5  # about ln(20): the 20 classes equally likely at first
    assert losses[-1] < 0.6 * losses[0] and losses[-1] == min(losses) and accuracies[-1] > accuracies[0] + 0.4


def test_supervised_pretrains_exports_and_starts_a_benchmark_model(synthetic_root, tmp_path):
    from detectron2.config import LazyConfig, instantiate

    from benchmark import architecture, inits

    out = tmp_path / "run"
    assert _run(out) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["objective"] == "supervised" and metrics["iterations"] == 4
    assert 0 < metrics["train_miou"] < 1 and 0 < metrics["train_pixel_acc"] < 1
    assert [json.loads(line)["pixel_acc"] for line in (out / "train_log.json").read_text().splitlines()]
    exported = torch.load(out / "backbone.pth", weights_only=True)
    assert exported["meta"]["objective"] == "supervised" and exported["meta"]["iteration"] == 4
    assert not any("seg_head" in k for k in exported["model"])

    converted = inits.convert(inits.parse(f"mask3d:{out / 'backbone.pth'}"))  # what `--init mask3d:PATH` does
    cfg = LazyConfig.load("benchmark/configs/scannet/semseg_vit_b.py")
    architecture.apply(cfg, inits.architecture(converted))
    model = instantiate(cfg.model)
    assert inits.load(model, converted)["missing"] == []
    ckpt = torch.load(out / "checkpoint.pth", weights_only=True)["model"]
    assert torch.equal(model.backbone.net.blocks[1].mlp.fc2.weight, ckpt["blocks.1.mlp.fc2.weight"])


def test_labels_are_required_and_their_classes_must_match(synthetic_root, tmp_path, capsys):
    assert _run(tmp_path / "a", **{"data.names": "synthetic_rgbd_train"}) == 1
    err = capsys.readouterr().err
    assert "'synthetic_rgbd_train' has no sem_seg_file_name" in err and "*_sem_seg_*" in err
    assert _run(tmp_path / "b", **{"model.num_classes": 40}) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has 20 semantic classes but model.num_classes is 40" in err[0]
