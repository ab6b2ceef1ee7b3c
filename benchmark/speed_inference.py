"""`make speed`: images/s of a benchmark model (the `--tiny` variant of benchmark/configs/scannet/CONFIG.py,
random weights) at batch 1 in eval mode, on inputs mapped by the config's test-time resize from 480x640
frames, with postprocessing to 480x640 as the evaluator sees it."""

from __future__ import annotations

from pathlib import Path

import detectron2.data.transforms as T
import numpy as np
import torch
from detectron2.config import LazyConfig, instantiate

from benchmark.tiny import make_tiny
from core.measure import common_settings, device_name, memory, require, reset_peak_memory, spread, time_calls

CONFIGS = Path(__file__).resolve().parent / "configs" / "scannet"
FRAME_HW = (480, 640)


def measure_inference(config="semseg_vit_b", device="cpu", tiny=False):
    cfg = LazyConfig.load(str(CONFIGS / f"{config}.py"))
    make_tiny(cfg)
    dev = require(device)
    cuda = dev.type == "cuda"
    cfg.train.device = dev.type
    cfg.train.amp.enabled = cuda  # what make_tiny does on a GPU
    torch.manual_seed(0)
    model = instantiate(cfg.model).to(dev).eval()
    augs = T.AugmentationList(instantiate(cfg.dataloader.test.mapper.augmentations))
    rng = np.random.default_rng(0)
    images = []
    for _ in range(4):
        aug_in = T.AugInput(rng.integers(0, 256, (*FRAME_HW, 3), dtype=np.uint8))
        augs(aug_in)
        images.append(torch.as_tensor(np.ascontiguousarray(aug_in.image.transpose(2, 0, 1))))
    k = iter(range(10**9))

    def infer():
        img = images[next(k) % len(images)]
        with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
            model([{"image": img.to(dev), "height": FRAME_HW[0], "width": FRAME_HW[1]}])

    reset_peak_memory(dev)
    timings = [time_calls(infer, 0.0 if tiny else 1.0) for _ in range(1 if tiny else 3)]
    rates = [1.0 / t.wall_s for t in timings]
    settings = common_settings(tiny) | spread(rates)
    settings.update(
        config=f"benchmark/configs/scannet/{config}.py",
        variant="benchmark.tiny.make_tiny",
        autocast="bf16" if cuda else None,
        input_hw=list(images[0].shape[1:]),
        output_hw=list(FRAME_HW),
        batch=1,
        calls_per_round=[t.calls for t in timings],
        rounds=len(rates),
        threads=torch.get_num_threads(),
        device_name=device_name(dev),
    )
    return [
        {
            "name": f"inference_{config}_tiny_{dev.type}",
            "value": max(rates),
            "unit": "images/s",
            "limit": None,
            "ratio": None,
            "settings": settings,
            **memory(dev),
        }
    ]
