"""core.runs and core.provenance: folder states and guards, the finishing writes in order, the config hash,
provenance fields, git's dirty flag, and logging that does not leak from one run into the next."""

import json
import logging
import subprocess

import pytest
from detectron2.config import LazyConfig
from detectron2.utils.logger import setup_logger

import results.store
from core import runs
from core.provenance import git_commit
from results.store import read_records


def test_folder_states_and_the_resume_guard(tmp_path):
    run = tmp_path / "run"
    assert runs.claim(run, resume=False) == runs.NEW and not run.exists()
    run.mkdir()
    (run / "last_checkpoint").write_text("model_final.pth")
    stale = run / ".model_final.pth.a1b2.tmp"
    stale.write_bytes(b"half")
    with pytest.raises(runs.RunError, match="unfinished run: add --resume"):
        runs.claim(run, resume=False)
    assert stale.exists()
    assert runs.claim(run, resume=True, clean=False) == runs.UNFINISHED and stale.exists()
    assert runs.claim(run, resume=True) == runs.UNFINISHED and not stale.exists()
    stale.write_bytes(b"half")
    (run / runs.FINISHED_MARKER).write_text("{}")
    assert runs.claim(run, resume=False) == runs.FINISHED and stale.exists()  # a finished folder is left as it is


def _record(tmp_path):
    return runs.record(
        "pretrain",
        dataset="synthetic",
        task="pretrain",
        backbone="vit_t",
        init="random",
        seed=0,
        metrics={"loss": 0.5},
        config_file="c.py",
        config_hash="abc",
        device="cpu",
        output=tmp_path,
        tag="t",
    )


def test_finish_writes_metrics_record_then_marker(tmp_path, monkeypatch):
    record = _record(tmp_path)
    assert record["device"] == "cpu x1" and record["git_commit"] and record["date"].endswith("+00:00")
    assert record["output_dir"] == str(tmp_path) and record["kind"] == "pretrain"

    def store_down(_):
        raise OSError("store unavailable")

    with pytest.raises(OSError):
        runs.finish(tmp_path, {"loss": 0.5}, record, store_down)
    assert (tmp_path / "metrics.json").is_file() and runs.folder_state(tmp_path) == runs.NEW
    runs.finish(tmp_path, {"loss": 0.5}, record, results.store.append_record)
    assert read_records() == [record] and runs.folder_state(tmp_path) == runs.FINISHED
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"loss": 0.5}


def test_config_hash_ignores_only_the_named_keys(tmp_path):
    cfg = LazyConfig.load("pretrain/configs/default_cpu.py")
    ignore = {"train.output_dir": "", "train.seed": 0}
    base = runs.config_hash(cfg, ignore)
    moved = LazyConfig.apply_overrides(
        LazyConfig.load("pretrain/configs/default_cpu.py"), ["train.output_dir=elsewhere", "train.seed=3"]
    )
    assert runs.config_hash(moved, ignore) == base and len(base) == 12
    other = LazyConfig.apply_overrides(LazyConfig.load("pretrain/configs/default_cpu.py"), ["train.max_iter=7"])
    assert runs.config_hash(other, ignore) != base
    runs.save_config(cfg, tmp_path)
    assert LazyConfig.load(str(tmp_path / "config.yaml")).train.max_iter == cfg.train.max_iter


def test_git_commit_is_dirty_only_for_tracked_changes(tmp_path):
    def git(*args):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True, capture_output=True
        )

    assert git_commit(tmp_path) == "unknown"
    git("init", "-q")
    (tmp_path / "a.txt").write_text("a")
    git("add", "a.txt")
    git("commit", "-qm", "a")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.strip()
    (tmp_path / "untracked.txt").write_text("u")
    assert git_commit(tmp_path) == head
    (tmp_path / "a.txt").write_text("changed")
    assert git_commit(tmp_path) == head + "-dirty"


def test_logging_scope_leaves_no_handlers_behind(tmp_path):
    logger = logging.getLogger("core-runs-test")
    for folder in (tmp_path / "a", tmp_path / "b"):
        with runs.logging_scope("core-runs-test"):
            setup_logger(str(folder), name="core-runs-test", configure_stdout=False)
            logger.info(f"in {folder.name}")
        assert logger.handlers == []
    assert "in a" in (tmp_path / "a" / "log.txt").read_text()
    assert "in a" not in (tmp_path / "b" / "log.txt").read_text()
    assert "in b" in (tmp_path / "b" / "log.txt").read_text()
