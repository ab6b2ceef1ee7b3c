"""User errors end `python -m pretrain` and `python -m benchmark.train_net` with one line and exit code 1, and
lose nothing: bad overrides (unknown key, wrong type, malformed, an option after them), read-only or full
output folders, truncated prepared files (the message names the file). Internal errors keep their traceback."""

import errno
import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from benchmark import train_net
from core import overrides
from pretrain import train as pretrain
from tests.test_pretrain_train import CONFIG as PRETRAIN_CONFIG
from tests.test_pretrain_train import TINY
from tests.test_pretrain_train import _run as run_pretrain

BENCH_CONFIG = "benchmark/configs/scannet/semseg_vit_b.py"


def run_bench(out, *extra):
    return train_net.main(
        [
            "--config-file",
            BENCH_CONFIG,
            "--tiny",
            "dataloader.train.dataset.names=synthetic_sem_seg_train",
            "dataloader.test.dataset.names=synthetic_sem_seg_val",
            "train.max_iter=2",
            f"train.output_dir={out}",
            *extra,
        ]
    )


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    errors = [line for line in captured.err.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("error: "), captured.err
    return errors[0]


# --- overrides ---------------------------------------------------------------------------------------------
@pytest.fixture
def cfg():
    from detectron2.config import LazyConfig

    return LazyConfig.load(PRETRAIN_CONFIG)


@pytest.mark.parametrize(
    "item, message",
    [
        ("train.seeed=5", "'train.seeed': no such key"),
        ("train.max_iter=abc", "train.max_iter='abc': expected an integer like the default 600"),
        ("train.max_iter=2.5", "expected an integer"),
        ("train.base_lr=fast", "expected a number"),
        ("train.amp=1", "expected True or False"),
        ("model.img_size=(96,", "expected a list like the default [240, 320]"),
        ("train=5", "train is a section"),
        ("train.max_iter", "is not key=value"),
        ("+train.extra=1", "is not key=value"),
        ("--resume", "'--resume' after the key=value overrides"),
    ],
)
def test_bad_override_is_an_error_naming_it(cfg, item, message):
    with pytest.raises(overrides.OverrideError, match=None) as e:
        overrides.apply(cfg, [item], PRETRAIN_CONFIG)
    assert message in str(e.value)


def test_good_overrides_keep_their_types(cfg):
    new = overrides.apply(
        cfg,
        [
            "train.base_lr=1",
            "train.amp=false",
            "train.tag=5",
            "model.img_size=(96,128)",
            "data.names=a,b",
            "train.init_checkpoint=null",
        ],
        PRETRAIN_CONFIG,
    )
    assert new.train.base_lr == 1.0 and isinstance(new.train.base_lr, float) and new.train.amp is False
    assert new.train.tag == "5" and list(new.model.img_size) == [96, 128] and new.data.names == "a,b"
    assert new.train.init_checkpoint is None


# --- pretrain ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "settings, message",
    [
        ({"train.seeed": 5}, "no such key in"),
        ({"train.max_iter": "abc"}, "expected an integer"),
        ({"model.img_size": "(96,"}, "expected a list"),
    ],
)
def test_pretrain_bad_override_is_one_line_and_writes_nothing(synthetic_root, tmp_path, capsys, settings, message):
    assert run_pretrain(tmp_path / "run", **settings) == 1
    assert message in one_error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_pretrain_accepts_options_among_the_overrides(synthetic_root, tmp_path):
    settings = [f"{k}={v}" for k, v in {**TINY, "train.max_iter": 2, "train.output_dir": tmp_path / "run"}.items()]
    assert pretrain.main(["--config", PRETRAIN_CONFIG, *settings[:3], "--resume", *settings[3:]]) == 0


@contextmanager
def read_only(folder: Path, monkeypatch):
    """A folder nobody may write in: chmod, or, for root (who ignores the mode), an EACCES from file creation."""
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):
        import tempfile

        real = tempfile.NamedTemporaryFile

        def refuse(*args, dir=None, **kwargs):
            if dir is not None and Path(dir).resolve().is_relative_to(folder.resolve()):
                raise PermissionError(errno.EACCES, "Permission denied", str(Path(dir) / "x"))
            return real(*args, dir=dir, **kwargs)

        monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    try:
        yield folder
    finally:
        folder.chmod(0o755)


def test_read_only_output_folder_is_one_line(synthetic_root, tmp_path, capsys, monkeypatch):
    with read_only(tmp_path / "ro", monkeypatch) as ro:
        assert run_pretrain(ro) == 1
        line = one_error_line(capsys)
        assert f"cannot write in the output folder {ro}" in line and "Permission denied" in line
        assert run_bench(ro) == 1
        assert f"cannot write in the output folder {ro}" in one_error_line(capsys)
        assert list(ro.iterdir()) == []


def test_full_disk_mid_run_is_one_line_and_keeps_the_last_checkpoint(synthetic_root, tmp_path, capsys, monkeypatch):
    """The third checkpoint write (iteration 4) fills the disk half-way: the run stops with one line, the
    checkpoint of iteration 2 is intact, and --resume finishes the run."""
    real_save, calls = torch.save, []

    def fill_disk(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) == 3:
            Path(f).write_bytes(b"\0" * 100)
            raise OSError(errno.ENOSPC, "No space left on device", str(f))
        return real_save(obj, f, *args, **kwargs)

    out = tmp_path / "run"
    monkeypatch.setattr(torch, "save", fill_disk)
    assert run_pretrain(out) == 1
    line = one_error_line(capsys)
    assert "No space left on device" in line and "--resume" in line
    assert torch.load(out / "checkpoint.pth", weights_only=True)["iteration"] == 2
    assert not list(out.glob(".*.tmp"))
    assert "No space left on device" in (out / "log.txt").read_text()
    monkeypatch.setattr(torch, "save", real_save)
    assert run_pretrain(out, resume=True) == 0
    assert json.loads((out / "metrics.json").read_text())["iterations"] == 6


def test_internal_errors_keep_their_traceback(synthetic_root, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(pretrain, "build_optimizer", broken)
    with pytest.raises(RuntimeError, match="a bug of ours"):
        run_pretrain(tmp_path / "run")


# --- truncated prepared files --------------------------------------------------------------------------------
@contextmanager
def truncated(paths):
    """Cuts each file to half its size, restoring it afterwards (the session's synthetic tree is shared)."""
    saved = {p: p.read_bytes() for p in paths}
    try:
        for p, data in saved.items():
            p.write_bytes(data[: len(data) // 2])
        yield
    finally:
        for p, data in saved.items():
            p.write_bytes(data)


def _train_colour_files(root: Path):
    from detectron2.data import DatasetCatalog

    return sorted({Path(d["file_name"]) for d in DatasetCatalog.get("synthetic_sem_seg_train")})


@pytest.mark.parametrize("cli", ["pretrain", "benchmark"])
def test_truncated_image_is_one_line_naming_the_file(synthetic_root, tmp_path, capsys, cli):
    files = _train_colour_files(synthetic_root)
    with truncated(files):
        assert (run_pretrain(tmp_path / "run") if cli == "pretrain" else run_bench(tmp_path / "run")) == 1
    line = one_error_line(capsys)
    assert any(f"{f}: truncated" in line for f in files), line


def test_truncated_index_is_one_line_naming_the_file(synthetic_root, tmp_path, capsys):
    from detectron2.data import DatasetCatalog

    index = synthetic_root / "synthetic" / "index_train.json"
    with truncated([index]):
        assert run_pretrain(tmp_path / "run", **{"data.names": "synthetic_rgbd_train"}) == 1
    assert f"{index}: not valid JSON" in one_error_line(capsys)
    assert DatasetCatalog.get("synthetic_rgbd_train")  # restored and readable again


# --- benchmark -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "extra, message",
    [
        (["train.seeed=5"], f"'train.seeed': no such key in {BENCH_CONFIG}"),
        (["train.max_iter=abc"], "train.max_iter='abc': expected an integer"),
        (["--resume"], "'--resume' after the key=value overrides"),
    ],
)
def test_benchmark_bad_override_is_one_line_and_writes_nothing(synthetic_root, tmp_path, capsys, extra, message):
    assert run_bench(tmp_path / "run", *extra) == 1
    assert message in one_error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_the_real_command_line_prints_one_line_and_no_import_warnings(tmp_path):
    """`python -m benchmark.train_net` as a user runs it: exit code 1 and stderr exactly the error line (no
    third-party import warnings, no traceback)."""
    cmd = [
        sys.executable,
        "-m",
        "benchmark.train_net",
        "--config-file",
        BENCH_CONFIG,
        "train.seeed=5",
        f"train.output_dir={tmp_path / 'run'}",
    ]
    proc = subprocess.run(cmd, cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"error: override 'train.seeed': no such key in {BENCH_CONFIG}; did you mean train.seed?"
    ], proc.stderr
