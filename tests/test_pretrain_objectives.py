"""Every registered pre-training objective trains exactly as recorded: a few iterations at a fixed seed on CPU give
the recorded loss history, metrics and exported tensors (bit for bit where the recording was made; within float
tolerance on another CPU instruction set, whose kernels round differently). Moving an objective's code must keep
these values; changing what an objective computes means recording them again (`pytest -s` prints what it observed)."""

import hashlib
import json

import numpy as np
import pytest
import torch

from pretrain import train as train_mod

CONFIG = "pretrain/configs/default_cpu.py"
SETTINGS = {
    "model.embed_dim": 32,
    "model.depth": 2,
    "model.num_heads": 2,
    "model.decoder_dim": 32,
    "model.decoder_depth": 1,
    "model.decoder_heads": 2,
    "model.img_size": (96, 128),
    "data.names": "synthetic_rgbd_train",
    "data.workers": 0,
    "train.batch_size": 4,
    "train.max_iter": 3,
    "train.base_lr": 0.1,
    "train.warmup_iters": 1,
    "train.checkpoint_period": 3,
    "train.vis_period": 0,
    "train.log_period": 1,
    "train.cpu_threads": 1,
    "train.seed": 3,
}
PER_OBJECTIVE = {
    "pri3d": {"train.batch_size": 2},  # a pri3d sample is a pair of frames
    "supervised": {"data.names": "synthetic_sem_seg_train"},  # it reads semantic labels
}
NOT_REPRODUCIBLE = ("time_s", "images_per_s")  # wall-clock figures of metrics.json
RECORDED_ON = ("AVX512", "2.14.1")  # torch's CPU capability and version when EXPECTED was recorded

# The export's metadata besides objective, iteration and source.
META = {
    "embed_dim": 32,
    "depth": 2,
    "num_heads": 2,
    "mlp_ratio": 4.0,
    "patch_size": 16,
    "img_size": [96, 128],
    "backbone": "vit_e32d2",
    "norm_eps": 1e-06,
    "centre_pos": False,
    "pixel_mean": [123.675, 116.28, 103.53],
    "pixel_std": [58.395, 57.12, 57.375],
    "pretrain_grid": [6, 8],
    "pos_embed": "sincos-2d on pretrain_grid after a zero cls slot",
}
EXPECTED = {
    "mask3d": {
        "loss_history": [[1, 0.8999178409576416], [2, 0.8473879098892212], [3, 0.8599443435668945]],
        "metrics": {
            "backbone": "vit_e32d2",
            "encoder_rms": 2.9541234714916644,
            "encoder_shared_share": 0.1262611005966842,
            "depth_abs_rel": 0.3058379612493683,
            "depth_alignment": "image",
            "depth_delta1": 0.5044162577539116,
            "depth_pixels": 108010,
            "depth_rmse_m": 0.8069595035789707,
            "iterations": 3,
            "loss": 0.8599443435668945,
            "loss_start": 0.8999178409576416,
            "objective": "mask3d",
        },
        "export_sha256": "ebbab3203a1423932679b4400de3d9850d5f31a5a503fa6edf7bbc002015bca5",
        "export_abs_sum": 4604.058179667305,
    },
    "mae": {
        "loss_history": [[1, 1.062867522239685], [2, 1.0479034185409546], [3, 1.03099524974823]],
        "metrics": {
            "backbone": "vit_e32d2",
            "encoder_rms": 2.208303598338895,
            "encoder_shared_share": 0.1893999157650131,
            "iterations": 3,
            "loss": 1.03099524974823,
            "loss_start": 1.062867522239685,
            "objective": "mae",
        },
        "export_sha256": "6de7bc2d72d8a1d7caf96ae53bc546c89a1e61252a71b3a93ff3e61c66b4c8d8",
        "export_abs_sum": 4603.633357298611,
    },
    "multimae": {
        "loss_history": [[1, 1.9719398021697998], [2, 1.8967671394348145], [3, 1.905717134475708]],
        "metrics": {
            "backbone": "vit_e32d2",
            "encoder_rms": 2.2872996001254555,
            "encoder_shared_share": 0.22082234290869593,
            "depth_abs_rel": 0.3055880245930991,
            "depth_alignment": "image",
            "depth_delta1": 0.5045829089899083,
            "depth_pixels": 108010,
            "depth_rmse_m": 0.8058725550405965,
            "iterations": 3,
            "loss": 1.905717134475708,
            "loss_start": 1.9719398021697998,
            "objective": "multimae",
        },
        "export_sha256": "19a0a5ee9b862ccfb60b7f90173162f89cd1d24dac793a13ab3996b591ccc4ee",
        "export_abs_sum": 4585.313901554984,
    },
    "pri3d": {
        "loss_history": [[1, 3.2113466262817383], [2, 2.886866807937622], [3, 3.2139244079589844]],
        "metrics": {
            "backbone": "vit_e32d2",
            "encoder_rms": 1.9534701295843881,
            "encoder_shared_share": 0.14541066857064378,
            "iterations": 3,
            "loss": 3.2139244079589844,
            "loss_start": 3.2113466262817383,
            "objective": "pri3d",
        },
        "export_sha256": "02352b586d33e6a95c69b8a4afa0299b94776adee78ce2ff443eaf91d1627eb8",
        "export_abs_sum": 4601.941957547713,
    },
    "none": {
        "loss_history": [],
        "metrics": {
            "backbone": "vit_e32d2",
            "encoder_rms": 1.879193369364513,
            "encoder_shared_share": 0.3035593653959473,
            "iterations": 0,
            "loss": None,
            "loss_start": None,
            "objective": "none",
        },
        "export_sha256": "7355eb1ad3dec7bba6ac47bf142803eb1ff3fd4d515a51813afc72a8c9b5dd19",
        "export_abs_sum": 4603.596158919321,
    },
    "supervised": {
        "loss_history": [[1, 3.0000545978546143], [2, 3.0003433227539062], [3, 2.9768247604370117]],
        "metrics": {
            "backbone": "vit_e32d2",
            "encoder_rms": 2.2950473675309944,
            "encoder_shared_share": 0.2402142623902785,
            "iterations": 3,
            "loss": 2.9768247604370117,
            "loss_start": 3.0000545978546143,
            "objective": "supervised",
            "train_miou": 0.026893164962530136,
            "train_pixel_acc": 0.12089741230010986,
        },
        "export_sha256": "6d19ae1cd2e7162eff00d03f921066d1f93539903da12bfde48ce06beced83cb",
        "export_abs_sum": 4603.0506963845355,
    },
}


def export_digest(exported: dict) -> str:
    """sha256 over the exported tensors in sorted key order (the file's metadata names paths, so not its bytes)."""
    h = hashlib.sha256()
    for key in sorted(exported["model"]):
        t = exported["model"][key].contiguous()
        h.update(f"{key} {t.dtype} {tuple(t.shape)}\n".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _observed(out, objective: str) -> dict:
    ckpt = torch.load(out / "checkpoint.pth", weights_only=True)
    exported = torch.load(out / "backbone.pth", weights_only=True)
    metrics = json.loads((out / "metrics.json").read_text())
    return {
        "loss_history": [list(x) for x in ckpt["loss_history"]],
        "metrics": {k: v for k, v in metrics.items() if k not in NOT_REPRODUCIBLE},
        "export_sha256": export_digest(exported),
        "export_abs_sum": float(sum(v.double().abs().sum() for v in exported["model"].values())),
        "export_meta": {k: v for k, v in exported["meta"].items() if k != "source"},
    }


def _exact_here() -> bool:
    return (torch.backends.cpu.get_cpu_capability(), torch.__version__.split("+")[0]) == RECORDED_ON


@pytest.mark.parametrize("objective", ["mask3d", "mae", "multimae", "pri3d", "none", "supervised"])
def test_objective_trains_and_exports_as_recorded(objective, synthetic_root, tmp_path):
    out = tmp_path / objective
    settings = {**SETTINGS, **PER_OBJECTIVE.get(objective, {}), "model.objective": objective}
    args = ["--config", CONFIG, f"train.output_dir={out}", *[f"{k}={v}" for k, v in settings.items()]]
    assert train_mod.main(args) == 0
    got = _observed(out, objective)
    print(f"OBSERVED {objective!r}: {got!r},")
    want = EXPECTED[objective]
    assert got["export_meta"] == {**META, "objective": objective, "iteration": len(want["loss_history"])}
    assert [i for i, _ in got["loss_history"]] == [i for i, _ in want["loss_history"]]
    if _exact_here():
        assert got["loss_history"] == want["loss_history"]
        assert got["metrics"] == want["metrics"]
        assert got["export_sha256"] == want["export_sha256"]
    else:
        np.testing.assert_allclose([v for _, v in got["loss_history"]], [v for _, v in want["loss_history"]], 1e-4)
        floats = {k for k, v in want["metrics"].items() if isinstance(v, float)}
        assert {k: v for k, v in got["metrics"].items() if k not in floats} == {
            k: v for k, v in want["metrics"].items() if k not in floats
        }
        assert [got["metrics"][k] for k in floats] == pytest.approx([want["metrics"][k] for k in floats], rel=1e-4)
        assert got["export_abs_sum"] == pytest.approx(want["export_abs_sum"], rel=1e-4)
