"""`make speed`: model FLOP/s of a pre-training step, ours and timm's supervised ViT, as a fraction of a large
matmul's rate timed in the same rounds (on a GPU in bf16 that fraction is the model FLOPs utilisation).

FLOPs: fvcore counts one multiply-add as one "flop"; we report FLOPs = 2 x that, and a training step
(forward + backward) as 3 x the forward (the usual convention of MFU figures).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, ListConfig, OmegaConf

from core.measure import (
    best,
    common_settings,
    device_name,
    matmul,
    memory,
    require,
    reset_peak_memory,
    spread,
    time_calls,
)

BASE_CONFIG = Path(__file__).resolve().parent / "configs" / "base.py"
VIT_SIZES = {"vit_s": ("vit_s", "vit_small_patch16_224"), "vit_b": ("vit_b", "vit_base_patch16_224")}
TOY_VIT = dict(embed_dim=64, depth=2, num_heads=2)
TOY_DECODER = dict(decoder_dim=64, decoder_depth=1, decoder_heads=2)
# Dense bf16 peak (no sparsity) from the vendors' datasheets, for MFU against the datasheet as well.
DATASHEET_BF16_TFLOPS = {
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H100": 989.4,
    "H200": 989.4,
    "A100": 312.0,
    "L40S": 362.05,
    "A10G": 70.0,
}


def plain(x):
    """OmegaConf containers from a LazyConfig as plain (JSON-able) values."""
    return OmegaConf.to_container(x) if isinstance(x, (DictConfig, ListConfig)) else x


def _sdpa_flop_jit(inputs, outputs):
    """Multiply-adds of aten::scaled_dot_product_attention: Q K^T and attn V, (B, H, L, S) x (D + Dv)."""
    from fvcore.nn.jit_handles import get_shape

    q, k, v = (get_shape(x) for x in inputs[:3])
    batch = 1
    for d in q[:-2]:
        batch *= d
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


def count_forward_flops(module, inputs) -> tuple[float, dict]:
    """FLOPs (2 x fvcore's multiply-adds) of one forward, and the ops fvcore skipped (elementwise ones)."""
    from fvcore.nn import FlopCountAnalysis

    fca = FlopCountAnalysis(module, inputs).set_op_handle("aten::scaled_dot_product_attention", _sdpa_flop_jit)
    fca.unsupported_ops_warnings(False)
    fca.uncalled_modules_warnings(False)
    fca.tracer_warnings("none")
    return 2.0 * fca.total(), {
        "by_operator_gflops": {k: round(2 * v / 1e9, 3) for k, v in fca.by_operator().items()},
        "skipped_ops": sorted(fca.unsupported_ops()),
    }


def _pretrain_model(size, hw, tiny):
    """Our model exactly as `pretrain/configs/base.py` builds it (default objective, masking, decoder),
    with the encoder preset and image size of this measurement."""
    from detectron2.config import LazyConfig, instantiate

    cfg = LazyConfig.load(str(BASE_CONFIG))
    cfg.model.preset = VIT_SIZES[size][0]
    cfg.model.img_size = tuple(hw)
    if tiny:
        for k, v in {**TOY_VIT, **TOY_DECODER}.items():
            cfg.model[k] = v
    model = instantiate(cfg.model)
    keys = (
        "objective",
        "rgb_mask_ratio",
        "depth_mask_ratio",
        "decoder_dim",
        "decoder_depth",
        "depth_loss",
        "depth_norm",
    )
    return model, {k: plain(getattr(model, k, cfg.model.get(k))) for k in keys} | {
        "embed_dim": model.embed_dim,
        "depth": model.depth,
        "num_heads": model.num_heads,
        "amp_bf16": bool(cfg.train.amp),
    }


def _timm_model(size, hw, tiny):
    import timm

    kwargs = dict(pretrained=False, img_size=tuple(hw)) | (TOY_VIT if tiny else {})
    model = timm.create_model(VIT_SIZES[size][1], **kwargs)
    return model, {
        "timm_model": VIT_SIZES[size][1],
        "embed_dim": model.embed_dim,
        "depth": len(model.blocks),
        "fused_attn": bool(getattr(model.blocks[0].attn, "fused_attn", False)),
    }


class _LossOnly(torch.nn.Module):
    """Our model as fvcore traces it: tensors in, the loss out."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, image, depth, valid):
        return self.model(image, depth, valid, generator=torch.Generator().manual_seed(0))["loss"]


def _workload(kind, size, hw, batch, tiny):
    """(model, inputs, loss function of (model, inputs), the module fvcore counts, settings)."""
    g = torch.Generator().manual_seed(0)
    if kind == "mask3d":
        model, info = _pretrain_model(size, hw, tiny)
        image = torch.randint(0, 256, (batch, 3, *hw), generator=g).float()
        depth = torch.rand(batch, 1, *hw, generator=g) * 4.5 + 0.5
        depth[:, :, : hw[0] // 8] = 0  # an invalid band, as real sensors have
        seeds = iter(range(10**9))

        def loss(m, x):  # pretrain/train.py: a fresh CPU generator per step decides the masks
            return m(*x, generator=torch.Generator().manual_seed(next(seeds)))["loss"].float()

        return model, (image, depth, depth > 0), loss, _LossOnly(model), info
    if kind == "timm":
        model, info = _timm_model(size, hw, tiny)
        labels = torch.randint(0, model.num_classes, (batch,), generator=g)

        def loss(m, x):
            return F.cross_entropy(m(x[0]).float(), x[1])

        return model, (torch.randn(batch, 3, *hw, generator=g), labels), loss, model, info
    raise ValueError(f"unknown step kind {kind!r}")


def _plan(device, size, tiny):
    """(batch, (H, W), steps per timed round, rounds)."""
    if tiny:
        return 2, (64, 64), 1, 2
    if device.type == "cuda":
        return (128 if size == "vit_s" else 64), (224, 224), 10, 8
    return 8, (224, 224), 1, 3


def measure_step(kind="mask3d", size="vit_s", device="cpu", tiny=False):
    """Model FLOP/s of one training step (forward + backward, no optimizer) against the matmul rate.

    `mask3d`: `pretrain.model.MaskedRGBD` with the defaults of pretrain/configs/base.py (RGB and depth
    masking, depth decoder, its loss), called as pretrain/train.py calls it. `timm`: timm's supervised
    ViT on all tokens with a cross-entropy loss (the peer figure)."""
    dev = require(device)
    cuda = dev.type == "cuda"
    torch.manual_seed(0)
    batch, hw, per_round, rounds = _plan(dev, size, tiny)
    model, inputs, loss, counted, info = _workload(kind, size, hw, batch, tiny)
    # FLOPs of the forward at batch 2 on the CPU in fp32 (linear in the batch), scaled to the batch.
    model.train()
    counted_inputs = inputs[:3] if kind == "mask3d" else inputs[:1]
    flops_2, flop_info = count_forward_flops(counted, tuple(t[:2] for t in counted_inputs))
    step_flops = 3 * flops_2 / 2 * batch

    model.to(dev)
    inputs = tuple(t.to(dev) for t in inputs)

    def step():
        model.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
            value = loss(model, inputs)
        value.backward()

    reset_peak_memory(dev)
    step_s = time_calls(step, 0.0).wall_s  # also the warm-up
    peak = memory(dev)  # the step's own peak: the matmul operands do not exist yet
    mm, n, dtype = matmul(dev, tiny)
    budget = min(1.0, max(0.05, step_s * per_round))
    steps, mms = [], []
    for _ in range(rounds):  # each round: steps, then matmuls for about as long
        steps.append(time_calls(step, budget))
        mms.append(time_calls(mm, budget))
    rates = [step_flops / t.wall_s / 1e9 for t in steps]
    limits = [2 * n**3 / t.wall_s / 1e9 for t in mms]
    value, limit, ratio = best(rates, limits)
    settings = common_settings(tiny) | info
    settings.update(
        batch=batch,
        img_size=list(hw),
        dtype="bf16-autocast" if cuda else "fp32",
        rounds=rounds,
        steps_per_round=[t.calls for t in steps],
        forward_gflops_per_image=round(flops_2 / 2 / 1e9, 3),
        step_gflops=round(step_flops / 1e9, 2),
        images_per_s=round(value * 1e9 / step_flops * batch, 2),
        step_ms=round(1e3 * step_flops / (value * 1e9), 1),
        **spread(rates, limits),
        matmul={"n": n, "dtype": str(dtype).removeprefix("torch."), "calls_per_round": [t.calls for t in mms]},
        threads=torch.get_num_threads(),
        device_name=device_name(dev),
        flops=flop_info,
    )
    row = {
        "name": f"step_{kind}_{size}_{dev.type}",
        "value": value,
        "unit": "GFLOP/s",
        "limit": limit,
        "ratio": ratio,
        "settings": settings,
        **peak,
    }
    if cuda:
        peak_flops = next(
            (t * 1e12 for key, t in DATASHEET_BF16_TFLOPS.items() if key in settings["device_name"]), None
        )
        settings["mfu_vs_datasheet"] = round(value * 1e9 / peak_flops, 4) if peak_flops else None
    else:  # the same ratio in FLOPs per second of process CPU time
        row["ratio_cpu"] = max(step_flops / t.cpu_s for t in steps) / max(2 * n**3 / t.cpu_s for t in mms)
    return [row]
