"""pretrain/ end to end on the tiny synthetic tree: loss falls, outputs, exact resume (losses, weights, learning
rates), safe resume reading, stops on a non-finite loss or a batch without depth, bad input."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from detectron2.engine import hooks

from core.checkpoint import AtomicCheckpointer
from pretrain import export as export_cli
from pretrain import train as train_mod
from pretrain.model import MaskedRGBD
from results.store import read_records

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "pretrain" / "configs" / "default_cpu.py")
TINY = {
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
    "train.max_iter": 6,
    "train.warmup_iters": 2,
    "train.checkpoint_period": 2,
    "train.vis_period": 0,
    "train.log_period": 2,
    "train.cpu_threads": 1,
}  # tiny tensors: one thread is fastest, and immune to a busy machine


def _run(out_dir, resume=False, **overrides):
    settings = {**TINY, "train.output_dir": str(out_dir), **overrides}
    args = ["--config", CONFIG] + (["--resume"] if resume else []) + [f"{k}={v}" for k, v in settings.items()]
    return train_mod.main(args)


def _history(out_dir):
    return torch.load(Path(out_dir) / "checkpoint.pth", weights_only=True)["loss_history"]


def test_tiny_run_loss_falls_writes_outputs_and_leaves_a_finished_run_intact(synthetic_root, tmp_path):
    out = tmp_path / "run"
    # Depth in metres: the loss starts near the mean depth, so a short run shows a large, reliable fall.
    run = {
        "train.max_iter": 30,
        "train.checkpoint_period": 15,
        "train.vis_period": 15,
        "model.depth_norm": "metric",
        "train.base_lr": 0.32,
    }
    assert _run(out, **run) == 0
    for name in (
        "checkpoint.pth",
        "backbone.pth",
        "config.yaml",
        "log.txt",
        "metrics.json",
        "finished.json",
        "train_log.json",
        "reconstruction.png",
        "reconstruction_000015.png",
    ):
        assert (out / name).is_file(), name
    assert list(out.glob("events.out.tfevents.*"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["iterations"] == 30 and metrics["objective"] == "mask3d"
    assert metrics["loss"] < 0.5 * metrics["loss_start"], metrics
    # metric depth: the hidden patches' errors in metres, on the 16 frames' valid hidden pixels
    assert 0 < metrics["depth_abs_rel"] < 1 and 0 < metrics["depth_rmse_m"] and 0 <= metrics["depth_delta1"] <= 1
    assert metrics["depth_pixels"] > 0 and metrics["depth_alignment"] == "none"
    (record,) = read_records()
    assert record["kind"] == "pretrain" and record["objective"] == "mask3d" and record["dataset"] == "synthetic"
    assert record["iterations"] == 30 and record["metrics"]["loss"] == pytest.approx(metrics["loss"])
    assert record["metrics"]["depth_rmse_m"] == metrics["depth_rmse_m"]
    assert len(record["loss_history"]) == 30 and record["loss_history"][-1][0] == 30
    exported = torch.load(out / "backbone.pth", weights_only=True)
    assert exported["meta"]["iteration"] == 30 and exported["meta"]["img_size"] == [96, 128]

    kept = lambda p: p.name not in ("log.txt", ".lock")  # noqa: E731 - the log may grow, the lock names its holder
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if kept(p)}
    assert _run(out, resume=True, **run) == 0  # finished: nothing is redone
    assert _run(out, **run) == 0
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if kept(p)} == stamps
    assert len(read_records()) == 1

    assert export_cli.main([str(out), str(tmp_path / "again.pth")]) == 0
    again = torch.load(tmp_path / "again.pth", weights_only=True)["model"]
    assert all(torch.equal(again[k], exported["model"][k]) for k in exported["model"])


def _crash_after_saving(monkeypatch, iteration):
    real_save = AtomicCheckpointer.save

    def save_then_crash(self, name, **extra):
        real_save(self, name, **extra)
        if extra.get("iteration") == iteration:
            raise RuntimeError("simulated crash")

    monkeypatch.setattr(AtomicCheckpointer, "save", save_then_crash)


def _lrs(out_dir):
    """{iteration: lr} as train_log.json recorded it (log_period 1 writes every iteration)."""
    lines = [json.loads(line) for line in (Path(out_dir) / "train_log.json").read_text().splitlines()]
    return {line["iteration"]: line["lr"] for line in lines}


def test_resume_reproduces_the_uninterrupted_run_exactly(synthetic_root, tmp_path, monkeypatch, capsys):
    assert _run(tmp_path / "straight") == 0
    straight = torch.load(tmp_path / "straight" / "checkpoint.pth", weights_only=True)

    _crash_after_saving(monkeypatch, 4)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(tmp_path / "resumed")
    monkeypatch.undo()
    stale = tmp_path / "resumed" / ".checkpoint.pth.x1y2.tmp"  # as a write killed mid-way leaves it
    stale.write_bytes(b"half")
    assert _run(tmp_path / "resumed") == 1  # a run is there: continuing it needs --resume
    config = (tmp_path / "resumed" / "config.yaml").read_bytes()
    for other in ({"data.names": "synthetic_rgbd_val"}, {"model.depth": 3}):  # other data, another model
        assert _run(tmp_path / "resumed", resume=True, **other) == 1
        assert "was trained with different settings" in capsys.readouterr().err
    assert (tmp_path / "resumed" / "config.yaml").read_bytes() == config  # a refused resume rewrites nothing
    assert _run(tmp_path / "resumed", resume=True, **{"data.workers": 1}) == 0  # workers don't change the stream
    assert not stale.exists()
    resumed = torch.load(tmp_path / "resumed" / "checkpoint.pth", weights_only=True)
    assert [i for i, _ in resumed["loss_history"]] == list(range(1, 7))
    assert resumed["loss_history"] == straight["loss_history"]  # exact float equality on CPU
    assert resumed["model"].keys() == straight["model"].keys()
    assert all(torch.equal(resumed["model"][k], straight["model"][k]) for k in straight["model"])
    assert _run(tmp_path / "other", resume=True, **{"model.rgb_mask_ratio": 0.5}) == 0
    assert _history(tmp_path / "other") != straight["loss_history"]


def test_resume_continues_the_learning_rate_schedule(synthetic_root, tmp_path, monkeypatch):
    """Losses alone miss a schedule restarted on resume: the learning rates must match too. The hooks exist
    when the checkpoint is loaded, so the LR scheduler gets the state it saved."""
    run = {"train.max_iter": 8, "train.warmup_iters": 4, "train.log_period": 1}
    assert _run(tmp_path / "straight", **run) == 0
    _crash_after_saving(monkeypatch, 2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(tmp_path / "resumed", **run)
    monkeypatch.undo()
    saved = torch.load(tmp_path / "resumed" / "checkpoint.pth", weights_only=False)["trainer"]["hooks"]
    loaded = []
    real_load = hooks.LRScheduler.load_state_dict
    monkeypatch.setattr(
        hooks.LRScheduler, "load_state_dict", lambda self, state: loaded.append(state) or real_load(self, state)
    )
    assert _run(tmp_path / "resumed", resume=True, **run) == 0
    assert loaded == [saved["LRScheduler"]] and saved["LRScheduler"]
    assert "Cannot find the hook" not in (tmp_path / "resumed" / "log.txt").read_text()
    straight, resumed = _lrs(tmp_path / "straight"), _lrs(tmp_path / "resumed")
    assert len(set(straight.values())) == 8  # warm-up then cosine: every iteration has its own rate
    assert resumed == straight


def test_learning_rate_scales_with_the_effective_batch_including_accumulation(synthetic_root, tmp_path):
    """MAE's rule: lr = base_lr * batch_size * accum_steps * world_size / 256, then the cosine schedule."""
    run = {"train.batch_size": 2, "train.accum_steps": 2, "train.max_iter": 2, "train.warmup_iters": 0}
    assert _run(tmp_path / "run", **run, **{"train.log_period": 1}) == 0
    t = train_mod.load_config(CONFIG).train
    lr = t.base_lr * 2 * 2 * 1 / 256
    assert _lrs(tmp_path / "run") == {0: pytest.approx(lr, rel=1e-9), 1: pytest.approx((lr + t.min_lr) / 2, rel=1e-9)}


def test_resume_reads_only_pth_checkpoints_inside_the_run_folder(synthetic_root, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    _crash_after_saving(monkeypatch, 2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(out)
    monkeypatch.undo()
    outside = tmp_path / "outside.pth"
    outside.write_bytes((out / "checkpoint.pth").read_bytes())
    pickled = out / "model.pkl"
    pickled.write_bytes(b"not read")
    for name in ("model.pkl", str(outside), "../outside.pth"):
        (out / "last_checkpoint").write_text(name)
        assert _run(out, resume=True) == 1
        assert f"names {name!r}, but a run resumes only from a .pth checkpoint inside" in capsys.readouterr().err
    (out / "last_checkpoint").write_text("checkpoint.pth")
    assert _run(out, resume=True) == 0


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(synthetic_root, tmp_path, monkeypatch, capsys):
    real_forward = MaskedRGBD.forward
    calls = []

    def forward_nan_at_third(self, *args, **kwargs):
        out = real_forward(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 3:
            out["loss"] = out["loss"] * math.nan
        return out

    monkeypatch.setattr(MaskedRGBD, "forward", forward_nan_at_third)
    out = tmp_path / "nan"
    assert _run(out) == 1
    assert "non-finite loss at iteration 3: training stopped" in capsys.readouterr().err
    _assert_stopped_after_iteration_2(out)


def test_a_batch_without_valid_depth_stops_and_keeps_the_last_good_checkpoint(
    synthetic_root, tmp_path, monkeypatch, capsys
):
    real_loader = train_mod.make_loader

    def third_batch_without_depth(*args, **kwargs):
        for i, batch in enumerate(real_loader(*args, **kwargs)):
            if i == 2:
                batch["depth_mm"].zero_()  # the device makes depth and its mask from these millimetres
            yield batch

    monkeypatch.setattr(train_mod, "make_loader", third_batch_without_depth)
    out = tmp_path / "nodepth"
    assert _run(out) == 1
    assert "no valid depth pixels in micro-batch 1 of 1 of iteration 3" in capsys.readouterr().err
    _assert_stopped_after_iteration_2(out)


def _assert_stopped_after_iteration_2(out):
    assert "last good checkpoint" in (out / "log.txt").read_text()
    ckpt = torch.load(out / "checkpoint.pth", weights_only=True)
    assert ckpt["iteration"] == 2 and all(math.isfinite(v) for _, v in ckpt["loss_history"])
    for name in ("metrics.json", "backbone.pth", "finished.json"):
        assert not (out / name).exists(), name
    assert read_records() == []


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"data.names": "nodepth_test"}, "has no depth_file_name"),
        ({"data.names": "absent_rgbd_train"}, "absent_rgbd_train"),
        ({"model.img_size": (100, 128)}, "not divisible by patch size 16"),
        ({"model.rgb_mask_ratio": 1.0}, "outside [0, 1)"),
        ({"model.depth_mask_ratio": -0.5}, "outside [0, 1)"),
        ({"train.init_checkpoint": "WIDE"}, "embed_dim=64"),
        ({"model.no_such_key": 1}, "no such key"),
    ],
)
def test_bad_input_fails_before_training(synthetic_root, tmp_path, capsys, overrides, message):
    from detectron2.data import DatasetCatalog

    if "nodepth_test" not in DatasetCatalog.list():
        sem = DatasetCatalog.get("synthetic_sem_seg_train")
        DatasetCatalog.register(
            "nodepth_test", lambda: [{k: v for k, v in d.items() if k != "depth_file_name"} for d in sem]
        )
    if overrides.get("train.init_checkpoint") == "WIDE":
        wide = MaskedRGBD(objective="mae", preset="vit_t", embed_dim=64, depth=2, num_heads=2, img_size=(96, 128))
        torch.save({"model": wide.state_dict()}, tmp_path / "wide.pth")
        overrides = {"train.init_checkpoint": str(tmp_path / "wide.pth")}
    out = tmp_path / "bad"
    assert _run(out, **overrides) == 1
    assert message in capsys.readouterr().err
    assert not (out / "checkpoint.pth").exists()


def test_multimae_and_none_objectives_export(synthetic_root, tmp_path):
    assert _run(tmp_path / "mm", **{"model.objective": "multimae", "train.max_iter": 2}) == 0
    assert (tmp_path / "mm" / "reconstruction.png").is_file()
    assert _run(tmp_path / "none", **{"model.objective": "none"}) == 0
    metas = {r["objective"]: r for r in read_records()}
    assert metas["multimae"]["iterations"] == 2 and metas["none"]["iterations"] == 0
    exported = torch.load(tmp_path / "none" / "backbone.pth", weights_only=True)
    assert exported["meta"]["objective"] == "none" and exported["meta"]["iteration"] == 0


def test_torchrun_two_processes_with_accumulation(synthetic_root, tmp_path):
    """torchrun's process group (core.distributed): both ranks train in step, rank 0 alone writes the outputs."""
    out = tmp_path / "ddp"
    settings = {
        **TINY,
        "train.output_dir": str(out),
        "train.batch_size": 2,
        "train.accum_steps": 2,
        "train.max_iter": 2,
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",  # a free port: a second torchrun on this machine (another CI job) must not collide
        "--nproc_per_node",
        "2",
        "-m",
        "pretrain",
        "--config",
        CONFIG,
        *[f"{k}={v}" for k, v in settings.items()],
    ]
    env = {**os.environ, "MASK3D_DATA": str(synthetic_root), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    # the ranks' own errors come before torchrun's summary of them
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr.split("ChildFailedError")[0][-6000:]
    assert "effective batch 8 (2 x 2 accum x 2 ranks)" in (out / "log.txt").read_text()
    (record,) = read_records()
    assert record["device"] == "cpu x2" and record["iterations"] == 2
    assert (out / "finished.json").is_file() and (out / "log.txt.rank1").is_file()


def test_config_yaml_records_the_derived_output_folder(synthetic_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _run("", **{"train.max_iter": 2, "model.depth_norm": "image"}) == 0
    out = tmp_path / "output" / "pretrain" / "default_cpu-mask3d"
    config = (out / "config.yaml").read_text()
    assert "output_dir: output/pretrain/default_cpu-mask3d" in config
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["depth_alignment"] == "image" and metrics["depth_abs_rel"] > 0


def test_depth_errors_in_metres():
    from pretrain.metrics import error_sums, summarize

    depth = torch.tensor([[1.0, 2.0, 4.0, 3.0]])
    where = torch.tensor([[True, True, True, False]])
    exact = summarize(error_sums(depth, depth, where), "metric")
    assert exact["depth_abs_rel"] == 0 and exact["depth_rmse_m"] == 0 and exact["depth_delta1"] == 1
    off = summarize(error_sums(torch.tensor([[1.2, 3.0, -1.0, 0.0]]), depth, where), "image")
    assert off["depth_abs_rel"] == pytest.approx((0.2 + 0.5 + 1.25) / 3)
    assert off["depth_rmse_m"] == pytest.approx(math.sqrt((0.04 + 1 + 25) / 3))
    assert off["depth_delta1"] == pytest.approx(1 / 3) and off["depth_pixels"] == 3
    assert off["depth_alignment"] == "image" and summarize(error_sums(depth, depth, ~where & False), "image") == {}


def test_pretraining_reads_a_pack_when_data_packed_is_set(synthetic_root, tmp_path):
    from datasets.builtin import get_dicts
    from datasets.packed import pack

    pack(get_dicts("synthetic_rgbd_train"), str(tmp_path / "pack"), (96, 128))
    assert _run(tmp_path / "run", **{"data.packed": str(tmp_path / "pack"), "train.max_iter": 2}) == 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["iterations"] == 2
    assert _run(tmp_path / "bad", **{"data.packed": str(tmp_path / "absent")}) == 1  # one line, no traceback


def test_token_health_of_hand_made_tokens():
    from pretrain.metrics import token_health

    same = torch.tensor([3.0, -4.0]).expand(2, 5, 2)  # one token everywhere: all energy is shared
    assert token_health(same) == {"encoder_rms": pytest.approx(math.sqrt(12.5)), "encoder_shared_share": 1.0}
    z = torch.randn(3, 7, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    z = z - z.mean((0, 1))  # zero-mean tokens: nothing shared
    zero = token_health(z)
    assert zero["encoder_shared_share"] == pytest.approx(0.0, abs=1e-12)
    assert zero["encoder_rms"] == pytest.approx(float(z.square().mean().sqrt()), rel=1e-12)
    # a shared token m on top of them: its energy over the whole, whatever the image the token comes from
    m = torch.tensor([1.0, 2.0, 0.0, -2.0], dtype=torch.float64)
    mixed = token_health(z + m)
    assert mixed["encoder_shared_share"] == pytest.approx(9.0 / (9.0 + float(z.square().sum(-1).mean())), rel=1e-9)
    assert token_health(torch.zeros(1, 3, 2)) == {"encoder_rms": 0.0, "encoder_shared_share": 0.0}


def test_encoder_health_is_the_exported_features_and_draws_no_random_numbers():
    """Measured on what the benchmark receives (`features()`, no final norm), in eval mode, and leaving the
    model's mode and the torch RNG as they were: logging it cannot change a training run."""
    from pretrain.metrics import encoder_health, token_health

    torch.manual_seed(0)
    model = MaskedRGBD(objective="mask3d", embed_dim=32, depth=2, num_heads=2, patch_size=8, img_size=(48, 64))
    model.train()
    images = torch.randint(0, 256, (3, 3, 48, 64), dtype=torch.uint8)
    rng = torch.get_rng_state()
    health = encoder_health(model, images)
    assert model.training and torch.equal(torch.get_rng_state(), rng)
    with torch.no_grad():
        expected = token_health(model.eval().features(images).flatten(2).transpose(1, 2))
    assert health == expected and 0 < health["encoder_shared_share"] < 1


def test_encoder_health_in_the_log_metrics_and_record(synthetic_root, tmp_path):
    """Every log period into train_log.json; at the end into metrics.json and the record, equal to the health of the
    export as the benchmark's ViT computes it; `none` records the initialisation's."""
    from benchmark import inits, probe
    from datasets.builtin import get_dicts
    from pretrain.data import RGBDPretrainDataset
    from pretrain.metrics import health_images, token_health

    out = tmp_path / "run"
    assert _run(out, **{"train.max_iter": 4, "train.log_period": 2}) == 0
    logged = [json.loads(line) for line in (out / "train_log.json").read_text().splitlines()]
    assert [x["iteration"] for x in logged if "encoder_rms" in x and "encoder_shared_share" in x] == [1, 3]
    metrics = json.loads((out / "metrics.json").read_text())
    assert logged[-1]["encoder_rms"] == pytest.approx(metrics["encoder_rms"])
    images = health_images(RGBDPretrainDataset(get_dicts("synthetic_rgbd_train"), (96, 128)))
    exported = probe.build_encoder(inits.parse(f"mask3d:{out / 'backbone.pth'}")).features(images)
    assert token_health(exported.flatten(2).transpose(1, 2)) == pytest.approx(
        {k: metrics[k] for k in ("encoder_rms", "encoder_shared_share")}, rel=1e-4
    )
    assert _run(tmp_path / "none", **{"model.objective": "none"}) == 0
    records = {r["objective"]: r for r in read_records()}
    assert records["mask3d"]["metrics"]["encoder_rms"] == metrics["encoder_rms"]
    assert set(records["none"]["metrics"]) == {"encoder_rms", "encoder_shared_share"}  # no loss: nothing trained
