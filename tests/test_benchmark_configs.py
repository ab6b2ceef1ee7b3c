"""Every benchmark config, in its tiny variant, trains one step and evaluates on the synthetic tree."""
import math
from pathlib import Path

import pytest

from detectron2.config import instantiate

from benchmark import train_net

CONFIGS = sorted(str(p) for p in Path("benchmark/configs").glob("[!c]*/*.py")) + sorted(
    str(p) for p in Path("benchmark/configs/cityscapes").glob("*.py"))


def test_every_dataset_has_every_task_and_backbone():
    names = {str(Path(c).relative_to("benchmark/configs").with_suffix("")) for c in CONFIGS}
    for dataset in ("scannet", "nyuv2", "cityscapes"):
        for config in ("semseg_vit_b", "semseg_vit_b_upernet", "semseg_r50", "insseg_vit_b", "insseg_r50"):
            assert f"{dataset}/{config}" in names


@pytest.mark.parametrize("config", CONFIGS)
def test_tiny_config_trains_one_step_and_evaluates(config, synthetic_root, tmp_path):
    kind = "sem_seg" if "/semseg" in config else "instance"
    args = train_net.build_parser().parse_args([
        "--config-file", config, "--tiny", f"dataloader.train.dataset.names=synthetic_{kind}_train",
        f"dataloader.test.dataset.names=synthetic_{kind}_val", "train.max_iter=1", f"train.output_dir={tmp_path}"])
    cfg = train_net.load_config(args)
    train_net.sync_with_dataset(cfg)
    cfg.dataloader.evaluator.output_dir = str(tmp_path / "inference")
    results = train_net.train(cfg, instantiate(cfg.model), tmp_path, resuming=False)
    if kind == "sem_seg":
        assert 0 <= results["sem_seg"]["mIoU"] <= 100 and 0 <= results["sem_seg"]["pACC"] <= 100
    else:
        assert {"bbox", "segm"} <= set(results)
        assert all(math.isnan(v) or 0 <= v <= 100 for v in results["segm"].values())
    assert (tmp_path / "model_final.pth").is_file()
