"""Runs that would have given a wrong result without an error now end in one line and exit code 1, losing
nothing: lengths below 1, a run folder in use by another process, a finished run asked again with other
settings; and overrides reach the config as typed (non-ASCII folders, `[a,b]` lists, the closest name for a
mistyped one)."""

import errno
import subprocess
import sys
from pathlib import Path

import pytest

from core import overrides, runs
from results.store import read_records
from tests.test_pretrain_train import CONFIG as PRETRAIN_CONFIG
from tests.test_pretrain_train import _run as run_pretrain
from tests.test_user_errors import BENCH_CONFIG, one_error_line, run_bench

REPO = Path(__file__).resolve().parents[1]
SHORT = {"train.max_iter": 2}


@pytest.mark.parametrize(
    "run, setting, config",
    [
        (run_pretrain, {"train.max_iter": -5}, PRETRAIN_CONFIG),
        (run_pretrain, {"train.checkpoint_period": 0}, PRETRAIN_CONFIG),
        (run_bench, "train.max_iter=-3", BENCH_CONFIG),
        (run_bench, "train.max_iter=0", BENCH_CONFIG),
    ],
)
def test_lengths_below_one_are_refused_before_anything_runs(synthetic_root, tmp_path, capsys, run, setting, config):
    out = tmp_path / "run"
    assert (run(out, **setting) if isinstance(setting, dict) else run(out, setting)) == 1
    key, value = next(iter(setting.items())) if isinstance(setting, dict) else setting.split("=")
    assert one_error_line(capsys) == f"error: {key}={value} in {config}: must be at least 1"
    assert not out.exists() and read_records() == []


@pytest.fixture
def holder(tmp_path):
    """Another process holding the run folder `tmp_path / "run"` (core.runs.held) until the test ends."""
    out = tmp_path / "run"
    code = (
        "import sys\nfrom core.runs import held\nwith held(sys.argv[1]):\n print('held', flush=True)\n sys.stdin.read()"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(out)], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline() == "held\n"  # waits until the lock is taken: no timing involved
    yield out, proc
    proc.stdin.close()
    proc.wait()


def test_a_run_folder_in_use_is_refused_naming_the_holder(synthetic_root, holder, capsys):
    out, proc = holder
    expected = (
        f"error: {out} is in use by another run (process {proc.pid}); wait for it to end, or set another "
        "train.output_dir"
    )
    assert run_pretrain(out, **SHORT) == 1
    assert one_error_line(capsys) == expected
    assert run_bench(out) == 1
    assert one_error_line(capsys) == expected
    assert sorted(p.name for p in out.iterdir()) == [runs.LOCK_NAME] and read_records() == []
    proc.stdin.close()
    proc.wait()
    assert run_pretrain(out, **SHORT) == 0  # released when its holder ends
    assert len(read_records()) == 1


def test_held_is_exclusive_and_released_at_the_end(tmp_path):
    with runs.held(tmp_path / "run"):
        with pytest.raises(runs.RunError, match="is in use by another run"), runs.held(tmp_path / "run"):
            pass
        with runs.held(tmp_path / "run", active=False):  # ranks > 0 of a distributed run
            pass
    with runs.held(tmp_path / "run"):
        pass


def test_every_rank_passes_the_barrier_only_once_rank0_holds_the_folder(tmp_path, monkeypatch):
    """Rank 0's writability check makes and removes the folder; a rank that wrote its log there meanwhile lost
    it (`log.txt.rank1`: No such file, in CI). So every rank meets at a barrier once the folder is held."""
    at_barrier = []
    monkeypatch.setattr(
        runs.comm, "synchronize", lambda: at_barrier.append((tmp_path / "run" / runs.LOCK_NAME).exists())
    )
    with runs.held(tmp_path / "run"):  # rank 0
        assert at_barrier == [True]  # it locked the folder before the barrier
    with runs.held(tmp_path / "elsewhere", active=False):  # a rank > 0 writes nothing before the barrier
        assert at_barrier == [True, True] and not (tmp_path / "elsewhere").exists()


def test_a_finished_pretraining_asked_again_with_other_settings_names_them(synthetic_root, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_pretrain(out, **SHORT) == 0
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name not in ("log.txt", runs.LOCK_NAME)}
    assert run_pretrain(out, **SHORT, **{"train.tag": "again"}) == 0  # the same settings: nothing to do
    capsys.readouterr()
    assert run_pretrain(out, **SHORT, **{"model.objective": "mae", "train.seed": 3}) == 1
    assert one_error_line(capsys) == (
        f"error: {out} is a finished run of other settings (model.objective: 'mask3d' -> 'mae'; train.seed: 0 -> 3); "
        "set another train.output_dir to run these"
    )
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name not in ("log.txt", runs.LOCK_NAME)} == stamps
    assert len(read_records()) == 1


def test_a_finished_fine_tuning_asked_again_with_other_settings_names_them(synthetic_root, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_bench(out) == 0
    assert run_bench(out) == 0
    capsys.readouterr()
    assert run_bench(out, "train.max_iter=3") == 1
    assert one_error_line(capsys).startswith(
        f"error: {out} is a finished run of other settings (train.max_iter: 2 -> 3"
    )
    assert len(read_records()) == 1


def test_a_non_ascii_output_folder_is_used_as_typed(synthetic_root, tmp_path):
    out = tmp_path / "dätä" / "run ü"
    assert run_pretrain(out, **SHORT) == 0
    assert (out / "finished.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["dätä"]  # not `d\u00e4t\u00e4`
    (record,) = read_records()
    assert record["output_dir"] == str(out)


def test_overrides_keep_every_character_and_take_bracketed_lists():
    from detectron2.config import LazyConfig

    cfg = overrides.apply(
        LazyConfig.load(PRETRAIN_CONFIG),
        ["train.output_dir=out/dätä\\x y", "data.names=[synthetic_rgbd_train, synthetic_rgbd_val]", "train.tag=[x]"],
        PRETRAIN_CONFIG,
    )
    assert cfg.train.output_dir == "out/dätä\\x y" and cfg.train.tag == "[x]"
    assert list(cfg.data.names) == ["synthetic_rgbd_train", "synthetic_rgbd_val"]


def test_a_mistyped_key_or_dataset_name_gets_the_closest_known_one(synthetic_root, tmp_path, capsys):
    assert run_pretrain(tmp_path / "run", **{"train.seeed": 1}) == 1
    assert one_error_line(capsys).endswith(f"'train.seeed': no such key in {PRETRAIN_CONFIG}; did you mean train.seed?")
    assert run_pretrain(tmp_path / "run", **SHORT, **{"data.names": "[synthetic_rgbd_trian]"}) == 1
    line = one_error_line(capsys)
    assert "'synthetic_rgbd_trian' is not registered; did you mean synthetic_rgbd_train?" in line
    assert "Available" not in line
    assert run_bench(tmp_path / "run", "dataloader.test.dataset.names=synthetic_sem_seg_vall") == 1
    assert one_error_line(capsys).endswith("is not registered; did you mean synthetic_sem_seg_val?")


def test_a_full_disk_at_the_store_append_is_one_line_and_resume_stores_the_record(
    synthetic_root, tmp_path, capsys, monkeypatch
):
    import results.store as store
    from core import cli

    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device")

    real = store.atomic_path
    monkeypatch.setattr(store, "atomic_path", full)
    out = tmp_path / "run"
    assert run_pretrain(out, **SHORT) == 1
    assert one_error_line(capsys) == f"error: {store.store_path()}: No space left on device; {cli.ADVICE}"
    assert (out / "metrics.json").is_file() and not (out / runs.FINISHED_MARKER).exists()
    monkeypatch.setattr(store, "atomic_path", real)
    assert run_pretrain(out, resume=True, **SHORT) == 0
    assert len(read_records()) == 1 and (out / runs.FINISHED_MARKER).is_file()


def test_ctrl_c_is_one_line_saying_how_to_resume(synthetic_root, tmp_path, capsys, monkeypatch):
    from core import cli
    from pretrain import train as pretrain

    real = pretrain.PretrainTrainer.run_step

    def interrupted_at_iteration_2(self):
        if self.iter == 2:
            raise KeyboardInterrupt
        real(self)

    monkeypatch.setattr(pretrain.PretrainTrainer, "run_step", interrupted_at_iteration_2)
    out = tmp_path / "run"
    assert run_pretrain(out, **{"train.max_iter": 4}) == 130
    captured = capsys.readouterr()
    assert captured.err.splitlines()[-1] == cli.RESUME_HINT and "Traceback" not in captured.err
    assert "KeyboardInterrupt" not in captured.err
    monkeypatch.setattr(pretrain.PretrainTrainer, "run_step", real)
    assert run_pretrain(out, resume=True, **{"train.max_iter": 4}) == 0
    assert read_records()[0]["iterations"] == 4


def test_an_init_folder_is_named_as_a_folder(synthetic_root, tmp_path, capsys):
    (tmp_path / "weights").mkdir()
    from benchmark import train_net

    argv = ["--config-file", BENCH_CONFIG, "--tiny", "--init", f"mae:{tmp_path / 'weights'}"]
    assert train_net.main([*argv, f"train.output_dir={tmp_path / 'run'}"]) == 1
    assert one_error_line(capsys) == (
        f"error: {tmp_path / 'weights'}: is a folder, not a mae checkpoint file; name the .pth or .safetensors "
        "file in it"
    )
