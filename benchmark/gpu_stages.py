"""Benchmark stages of `make gpu-check` (benchmark/gpu_check.py): 20 iterations and an evaluation of the ViT-B
semantic-segmentation and Mask R-CNN configs at their 480x640 frames with AMP, on the synthetic tree,
through `python -m benchmark.train_net` (random init). `smoke` runs the tiny recipe for 2 iterations instead.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmark import train_net

CONFIGS = {
    "semseg": ("benchmark/configs/scannet/semseg_vit_b.py", "synthetic_sem_seg_train", "synthetic_sem_seg_val"),
    "insseg": ("benchmark/configs/scannet/insseg_vit_b.py", "synthetic_instance_train", "synthetic_instance_val"),
}
ITERS = 20
# One GPU's share: the semseg config's whole batch, and Mask R-CNN's 64 (ViTDet's 8 GPUs x 8) over 8 GPUs.
BATCH = {"semseg": 16, "insseg": 8}


def finetune_and_evaluate(task: str, out: Path, device: str, smoke: bool) -> dict:
    config, train, test = CONFIGS[task]
    iters = 2 if smoke else ITERS
    argv = [
        "--config-file",
        config,
        *(["--tiny"] if smoke else []),
        f"dataloader.train.dataset.names={train}",
        f"dataloader.test.dataset.names={test}",
        f"train.max_iter={iters}",
        f"train.device={device}",
        f"train.amp.enabled={device == 'cuda'}",
        "train.eval_period=0",
        f"train.output_dir={out}",
    ]
    if not smoke:
        argv += [
            f"dataloader.train.total_batch_size={BATCH[task]}",
            "dataloader.train.num_workers=4",
            "dataloader.test.num_workers=4",
        ]
    if train_net.main(argv) != 0:
        raise RuntimeError(f"python -m benchmark.train_net {' '.join(argv)} failed (see {out / 'log.txt'})")
    record = json.loads((out / "metrics.json").read_text())["record"]
    if record["iterations"] != iters:
        raise RuntimeError(f"{record['iterations']} iterations recorded, {iters} asked")
    return {
        "config": config,
        "tiny": smoke,
        "iterations": iters,
        "batch": None if smoke else BATCH[task],
        "backbone": record["backbone"],
        "amp": device == "cuda",
        "metrics": record["metrics"],
        "output": str(out),
    }
