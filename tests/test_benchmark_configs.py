"""Every benchmark config, in its tiny variant, trains one step and evaluates on the synthetic tree.

(`test_benchmark_train_net.py` runs the whole loop with hooks and checkpoints; here each config gets one
optimiser step and an evaluation of one validation frame, to keep 16 configs fast.)"""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from detectron2.config import instantiate
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.engine import SimpleTrainer
from detectron2.utils.events import EventStorage

from benchmark import train_net
from benchmark.depth import read_depth_metres
from benchmark.evaluation import read_label_png
from benchmark.loading import build_loader

CONFIGS = sorted(str(p) for p in Path("benchmark/configs").glob("[!c]*/*.py")) + sorted(
    str(p) for p in Path("benchmark/configs/cityscapes").glob("*.py")
)


def test_every_dataset_has_every_task_and_backbone():
    names = {str(Path(c).relative_to("benchmark/configs").with_suffix("")) for c in CONFIGS}
    for dataset in ("scannet", "nyuv2", "cityscapes"):
        for config in ("semseg_vit_b", "semseg_vit_b_upernet", "semseg_r50", "insseg_vit_b", "insseg_r50"):
            assert f"{dataset}/{config}" in names
    assert {f"{d}/depth_{b}" for d in ("scannet", "nyuv2") for b in ("vit_b", "r50")} <= names  # Cityscapes: no depth


@pytest.fixture(scope="module")
def one_frame_val(synthetic_root):
    """`synthetic_{kind}_val1`: the first validation frame, with the full set's metadata."""
    for kind in ("sem_seg", "instance", "depth"):
        name, full = f"synthetic_{kind}_val1", f"synthetic_{kind}_val"
        if name not in DatasetCatalog:
            DatasetCatalog.register(name, lambda full=full: DatasetCatalog.get(full)[:1])
            MetadataCatalog.get(name).set(
                **{k: v for k, v in MetadataCatalog.get(full).as_dict().items() if k != "name"}
            )


@pytest.mark.parametrize("config", CONFIGS)
def test_tiny_config_trains_one_step_and_evaluates(config, one_frame_val, tmp_path):
    kind = "sem_seg" if "/semseg" in config else "depth" if "/depth" in config else "instance"
    args = train_net.build_parser().parse_args(
        [
            "--config-file",
            config,
            "--tiny",
            f"dataloader.train.dataset.names=synthetic_{kind}_train",
            f"dataloader.test.dataset.names=synthetic_{kind}_val1",
        ]
    )
    cfg = train_net.load_config(args)[0]
    train_net.sync_with_dataset(cfg)
    cfg.dataloader.evaluator.output_dir = str(tmp_path)
    model = instantiate(cfg.model)
    cfg.optimizer.params.model = model
    trainer = SimpleTrainer(model, instantiate(cfg.dataloader.train), instantiate(cfg.optimizer))
    before = [p.detach().clone() for p in model.parameters()]
    with EventStorage(0) as trainer.storage:
        trainer.iter = 0
        trainer.run_step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=False))
    results = train_net.evaluate(cfg, model)
    if kind in ("sem_seg", "depth"):  # the metrics of the model's own prediction on the frame, by hand
        (inputs,) = list(build_loader(cfg.dataloader.test))
        with torch.no_grad():
            (output,) = model.eval()(inputs)
        name = f"synthetic_{kind}_val1"
        expected = _by_hand(kind, output, DatasetCatalog.get(name)[0], MetadataCatalog.get(name))
        assert {k: results[kind][k] for k in expected} == pytest.approx(expected, rel=1e-6, abs=1e-9)
    else:
        assert {"bbox", "segm"} <= set(results)
        assert all(math.isnan(v) or 0 <= v <= 100 for v in results["segm"].values())


def _by_hand(kind, output, frame, meta) -> dict:
    if kind == "sem_seg":
        pred = output["sem_seg"].argmax(0).numpy()
        gt = read_label_png(frame["sem_seg_file_name"])
        valid = gt != meta.ignore_label
        pred, gt = pred[valid], gt[valid]
        ious = [np.sum((pred == c) & (gt == c)) / np.sum((pred == c) | (gt == c)) for c in np.unique(gt)]
        return {"mIoU": 100 * np.mean(ious), "pACC": 100 * np.mean(pred == gt)}  # Detectron2: classes in the GT
    gt = read_depth_metres(frame["depth_file_name"]).astype(np.float64)
    valid = (gt >= meta.min_depth) & (gt <= meta.max_depth)
    p = np.clip(output["depth"].numpy().astype(np.float64), meta.min_depth, meta.max_depth)[valid]
    g = gt[valid]
    return {
        "AbsRel": np.mean(np.abs(p - g) / g),
        "RMSE": np.sqrt(np.mean((p - g) ** 2)),
        "delta1": np.mean(np.maximum(p / g, g / p) < 1.25),
    }
