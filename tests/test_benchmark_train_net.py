"""`python -m benchmark.train_net` end to end on the synthetic tree, initialised from a `pretrain.export`
file: metrics.json, one store record, the finished marker; finished runs never retrained or overwritten,
evaluations never marking a run finished, unfinished ones resumed only when asked and only from their own
`.pth` checkpoints."""

import hashlib
import json
import re
from pathlib import Path

import pytest
import torch

from benchmark import inits, probe, train_net
from benchmark.backbones import set_vit_architecture
from results.store import read_records

CONFIG = "benchmark/configs/scannet/semseg_vit_b.py"
SYNTHETIC = [
    "dataloader.train.dataset.names=synthetic_sem_seg_train",
    "dataloader.test.dataset.names=synthetic_sem_seg_val",
]


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """A tiny pre-training checkpoint exported by `pretrain.export` (3 blocks, 64 wide)."""
    from pretrain.export import export as run_export
    from pretrain.model import MaskedRGBD

    folder = tmp_path_factory.mktemp("pretrain")
    pre = MaskedRGBD(
        objective="mask3d",
        embed_dim=64,
        depth=3,
        num_heads=2,
        img_size=(96, 128),
        decoder_dim=32,
        decoder_depth=1,
        decoder_heads=2,
    )
    torch.save({"model": pre.state_dict(), "arch": pre.arch(), "iteration": 9}, folder / "checkpoint.pth")
    run_export(folder, folder / "backbone.pth")
    return folder / "backbone.pth"


def _run(out, *extra, iters=2):
    return train_net.main(
        ["--config-file", CONFIG, "--tiny", *extra, *SYNTHETIC, f"train.max_iter={iters}", f"train.output_dir={out}"]
    )


def test_run_lifecycle_records_once_and_never_overwrites_a_finished_run(synthetic_root, export, tmp_path, capsys):
    out, init = tmp_path / "run", ["--init", f"mask3d:{export}"]
    assert _run(out, *init, "--tag", "unit") == 0
    saved = json.loads((out / "metrics.json").read_text())
    (record,) = read_records()
    assert saved["record"] == record
    assert {
        k: record[k]
        for k in (
            "kind",
            "mode",
            "dataset",
            "split",
            "task",
            "backbone",
            "init",
            "seed",
            "iterations",
            "data_fraction",
            "tag",
            "tiny",
        )
    } == {
        "kind": "finetune",
        "mode": "train",
        "dataset": "synthetic",
        "split": "val",
        "task": "semseg",
        "backbone": "vit_e64d3",
        "init": "mask3d",
        "seed": 0,
        "iterations": 2,
        "data_fraction": 100.0,
        "tag": "unit",
        "tiny": True,
    }
    assert {"sem_seg/mIoU", "sem_seg/pACC"} <= set(record["metrics"])
    assert record["metrics"] == {f"sem_seg/{k}": v for k, v in saved["results"]["sem_seg"].items() if v is not None}
    assert len(record["config_hash"]) == 12 and record["git_commit"] and record["device"] == "cpu x1"
    assert record["config_file"] == CONFIG and record["output_dir"] == str(out) and record["date"].endswith("+00:00")
    assert (out / "config.yaml").is_file() and (out / "model_final.pth").is_file() and (out / "finished.json").is_file()
    log = (out / "log.txt").read_text()
    assert "rank 0 of 1; torch" in log and "Environment info" not in log and "_C" not in log
    console = capsys.readouterr().out
    assert "OrderedDict" in log and "OrderedDict" not in console and "np.float64(" not in console  # the raw dict
    assert console.splitlines()[-1].startswith("benchmark: ") and "sem_seg/mIoU" in console.splitlines()[-1]

    before = (out / "metrics.json").read_bytes()
    assert _run(out, *init) == 0  # finished: reported, not retrained
    assert "is finished" in capsys.readouterr().out
    assert _run(out, *init, "--eval-only", "--resume") == 0
    assert (out / "metrics.json").read_bytes() == before
    evaluation = json.loads((out / "metrics_eval.json").read_text())["record"]
    assert evaluation["iterations"] == 2 and evaluation["mode"] == "eval"
    assert evaluation["metrics"] == record["metrics"]  # the final weights, evaluated again: the same numbers
    assert len(read_records()) == 1

    for name in ("finished.json", "metrics.json", "metrics_eval.json"):  # as if killed after its last checkpoint
        (out / name).unlink()
    assert _run(out, *init, "--eval-only") == 0  # evaluating the init never finishes the training run
    assert json.loads((out / "metrics_eval.json").read_text())["record"]["iterations"] == 0
    assert not (out / "finished.json").exists() and not (out / "metrics.json").exists() and len(read_records()) == 1
    assert _run(out, *init, iters=4) == 1
    assert "add --resume" in capsys.readouterr().err
    for name in ("model_final.pkl", "../model_final.pth"):
        (out / "last_checkpoint").write_text(name)
        assert _run(out, *init, "--resume", iters=4) == 1
        assert f"names {name!r}, but a run resumes only from a .pth checkpoint inside" in capsys.readouterr().err
    (out / "last_checkpoint").write_text("model_final.pth")
    stale = out / ".model_final.pth.k3j4.tmp"  # as a write killed mid-way leaves it
    stale.write_bytes(b"half")
    assert _run(out, *init, "--resume", iters=4) == 0
    assert not stale.exists() and (out / "finished.json").is_file()
    assert "Starting training from iteration 2" in (out / "log.txt").read_text()
    assert [r["iterations"] for r in read_records()] == [2, 4]


def test_bad_init_and_absent_dataset_are_clear_errors(synthetic_root, tmp_path, capsys):
    assert _run(tmp_path / "a", "--init", f"mae:{tmp_path / 'nope.pth'}") == 1
    assert f"{tmp_path / 'nope.pth'}" in capsys.readouterr().err
    assert (
        train_net.main(
            ["--config-file", "benchmark/configs/nyuv2/semseg_r50.py", "--tiny", f"train.output_dir={tmp_path / 'b'}"]
        )
        == 1
    )
    assert "python -m tools.prepare_nyuv2" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists() and read_records() == []


def test_folder_and_summary_name_the_model_trained_and_show_percent(export):
    """A ViT-B config in its tiny recipe builds a CPU-sized ViT, and an export brings its own shape: the default
    folder says which; Detectron2's AP and mIoU are percentages and say so."""

    def variant(*extra):
        args = train_net.build_parser().parse_args(["--config-file", CONFIG, "--tiny", *extra])
        cfg, spec, _ = train_net.load_config(args)
        return train_net.default_output_dir(cfg, CONFIG, spec, tiny=True).parts[-3]

    assert variant() == "semseg_vit_e96d4_tiny"
    assert variant("--init", f"mask3d:{export}") == "semseg_vit_e64d3_tiny"
    assert train_net.format_metric("bbox/AP", 0.3) == "bbox/AP 0.30 %"
    assert train_net.format_metric("sem_seg/mIoU", 15.8) == "sem_seg/mIoU 15.80 %"


def test_periodic_evaluations_become_the_records_curve(synthetic_root, tmp_path):
    out = tmp_path / "curve"
    assert _run(out, "--init", "random", "train.eval_period=2", iters=4) == 0
    (record,) = read_records()
    assert [i for i, _ in record["curve"]] == [2, 4]
    assert record["curve"][-1][1] == record["metrics"]["sem_seg/mIoU"]  # the final evaluation closes it
    assert record["wall_s"] > 0
    assert _run(tmp_path / "flat", "--init", "random", iters=2) == 0
    assert "curve" not in read_records()[-1]  # no periodic evaluation, no curve


def test_a_resumed_runs_curve_keeps_its_earlier_points_and_skips_a_cut_line(tmp_path):
    log = tmp_path / "train_log.json"
    rows = [
        {"iteration": 99, "sem_seg/mIoU": 10.0},
        {"iteration": 119, "total_loss": 1.0},
        {"iteration": 199, "sem_seg/mIoU": 12.0},
        {"iteration": 199, "sem_seg/mIoU": 13.0},  # evaluated again after a resume: the later value holds
    ]
    log.write_text("\n".join(json.dumps(r) for r in rows) + '\n{"iteration": 2')
    curve = train_net.eval_curve(tmp_path, "semseg", 300, {"sem_seg/mIoU": 15.0})
    assert curve == [[100, 10.0], [200, 13.0], [300, 15.0]]
    assert train_net.eval_curve(tmp_path / "none", "depth", 5, {"depth/AbsRel": 0.2}) == [[5, 0.2]]


def _lrs(out):
    """[(iteration, lr), ...] in the order train_log.json holds them (log_period 1: every iteration)."""
    rows = [json.loads(line) for line in (out / "train_log.json").read_text().splitlines()]
    return [(row["iteration"], row["lr"]) for row in rows if "lr" in row]


def test_a_resumed_fine_tuning_continues_the_learning_rate_schedule(synthetic_root, tmp_path, monkeypatch):
    """Killed after its checkpoint at iteration 2 of 4 and resumed: every iteration's LR is the uninterrupted
    run's (a scheduler restarted on resume would repeat the warm-up)."""
    from core.checkpoint import AtomicCheckpointer

    every = ["--init", "random", "train.log_period=1", "train.checkpointer.period=2"]
    assert _run(tmp_path / "straight", *every, iters=4) == 0
    real_save = AtomicCheckpointer.save

    def save_then_crash(self, name, **extra):
        real_save(self, name, **extra)
        if extra.get("iteration") == 1:  # Detectron2 numbers the checkpoint after 2 iterations 1
            raise RuntimeError("simulated crash")

    monkeypatch.setattr(AtomicCheckpointer, "save", save_then_crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(tmp_path / "resumed", *every, iters=4)
    monkeypatch.undo()
    assert [i for i, _ in _lrs(tmp_path / "resumed")] == [0, 1]
    assert _run(tmp_path / "resumed", "--resume", *every, iters=4) == 0
    straight = _lrs(tmp_path / "straight")
    assert [i for i, _ in straight] == [0, 1, 2, 3] and len({lr for _, lr in straight}) == 4
    assert _lrs(tmp_path / "resumed") == straight


def test_the_readmes_run_folders_are_the_ones_runs_write(tmp_path):
    """The README's example folders of `make bench-scannet` and `make probe` with `make pretrain`'s ViT-Ti
    export, and what it says the init's hash is of, against the functions that name the folders."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    bench = re.search(r"bench/synthetic/semseg_vit_t_tiny/mask3d-([0-9a-f]{8})/seed0/", readme)
    probed = re.search(r"probe/synthetic/semseg/mask3d-([0-9a-f]{8})/seed0/", readme)
    assert bench and probed and 'SHA-1 of "<absolute path>:<size in bytes>:<mtime in ns>"' in readme
    assert "vit_e96d4 (width 96, 4 blocks) for INIT=random in the tiny recipe" in readme

    export = tmp_path / "backbone.pth"
    export.write_bytes(b"weights")
    spec = inits.parse(f"mask3d:{export}")
    stat = export.stat()
    digest = hashlib.sha1(f"{export.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:8]
    assert train_net.init_id(spec) == f"mask3d-{digest}"

    cfg = train_net.load_config(train_net.build_parser().parse_args(["--config-file", CONFIG, "--tiny", *SYNTHETIC]))[0]
    assert train_net.variant_name(cfg, CONFIG, tiny=True) == "semseg_vit_e96d4_tiny"  # random's tiny ViT
    set_vit_architecture(cfg, embed_dim=192, depth=12, num_heads=3)  # the shape make pretrain's export brings
    written = train_net.default_output_dir(cfg, CONFIG, spec, tiny=True)
    assert f"{written.as_posix()}/" == "output/" + bench.group(0).replace(bench.group(1), digest)
    folder = probe.run_folder("", "synthetic", "semseg", spec, 0)
    assert f"{folder.as_posix()}/" == "output/" + probed.group(0).replace(probed.group(1), digest)
