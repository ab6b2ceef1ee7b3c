"""`python -m tools.speed` runs on toy sizes and writes well-formed output. No timing is asserted: speed
figures depend on the machine; only that every measurement ran and produced a sane record."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark import speed as suite
from tools import speed

REPO = Path(__file__).resolve().parent.parent
ROW_KEYS = {"name", "value", "unit", "limit", "ratio", "settings", "targets", "ok"}


def _check_rows(rows, expected_names):
    assert isinstance(rows, list)
    names = [r["name"] for r in rows]
    assert len(names) == len(set(names)), names
    assert set(expected_names) <= set(names), set(expected_names) - set(names)
    for r in rows:
        assert ROW_KEYS <= set(r), (r["name"], ROW_KEYS - set(r))
        assert not r.get("error"), (r["name"], r.get("error"))
        assert isinstance(r["value"], float) and math.isfinite(r["value"]) and r["value"] > 0, r
        assert isinstance(r["unit"], str) and r["unit"]
        assert isinstance(r["settings"], dict) and r["settings"]["tiny"] is True
        assert r["ok"] is None  # targets are not judged on toy sizes
        if r["limit"] is not None:
            assert r["limit"] > 0 and r["ratio"] > 0
        if not r["name"].startswith("mask3d_vs_timm"):
            memory = r.get("cuda_max_allocated_mb", r.get("peak_rss_mb"))
            assert isinstance(memory, float) and memory > 0, r


def test_tiny_run_writes_every_measurement(tmp_path):
    out = tmp_path / "speed.json"
    proc = subprocess.run(
        [sys.executable, "-m", "tools.speed", "--tiny", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    rows = json.loads(out.read_text())
    expected = [n for m in suite.measurements(cuda=False) for n in m.row_names]
    expected += ["mask3d_vs_timm_vit_s_cpu", "mask3d_vs_timm_vit_b_cpu"]
    _check_rows(rows, expected)
    by_name = {r["name"]: r for r in rows}
    step = by_name["step_mask3d_vit_s_cpu"]["settings"]
    assert step["objective"] == "mask3d" and step["step_gflops"] > 0 and step["batch"] >= 1
    assert by_name["mask3d_vs_timm_vit_b_cpu"]["targets"] == ["ratio >= 0.9"]
    assert by_name["loader_rgbd"]["targets"] == ["ratio >= 0.75", "value >= 150"]
    assert "speed:" in proc.stdout.splitlines()[-1] and "written to" in proc.stdout.splitlines()[-1]
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically


def test_isolated_workers_and_only(tmp_path):
    """One process per measurement (the full run's mode) on the cheapest ones; `--only` takes patterns."""
    out = tmp_path / "speed.json"
    assert speed.main(["--tiny", "--isolate", "--only", "synthetic_*,prepare_scannet", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())
    _check_rows(rows, ["synthetic_generate", "prepare_scannet"])
    assert [r["name"] for r in rows] == ["synthetic_generate", "prepare_scannet"]
    assert all(r["memory_isolated"] for r in rows)


def test_unknown_name_is_an_error_naming_the_choices(tmp_path):
    with pytest.raises(SystemExit, match="matches no measurement.*loader_rgbd_worker"):
        speed.main(["--tiny", "--only", "no_such_thing", "--out", str(tmp_path / "x.json")])
    assert not (tmp_path / "x.json").exists()


def test_target_check():
    row = {"value": 160.0, "ratio": 0.7, "targets": ["ratio >= 0.75", "value >= 150"]}
    assert suite.check(row, tiny=False) is False
    assert suite.check(dict(row, ratio=0.8), tiny=False) is True
    assert suite.check(dict(row, ratio=0.8), tiny=True) is None
    assert suite.check(dict(row, targets=[]), tiny=False) is None
    # on CPU the CPU-time figure decides where the row has one
    assert suite.check(dict(row, ratio=0.8, ratio_cpu=0.7), tiny=False) is False
    assert suite.check(dict(row, value_cpu=140.0, ratio=0.8), tiny=False) is False


def test_time_calls_gives_wall_and_cpu_time_of_the_same_calls(monkeypatch):
    """Waiting costs wall time, not CPU time; spinning costs both. The clocks are fakes the calls advance, so
    the figures are exact whatever else the machine (or another thread of this process) is doing."""
    import types

    from core import measure

    clock = {"wall": 0.0, "cpu": 0.0}
    monkeypatch.setattr(measure, "synchronized_clock", lambda: clock["wall"])
    monkeypatch.setattr(measure, "time", types.SimpleNamespace(process_time=lambda: clock["cpu"]))

    def wait():
        clock["wall"] += 0.02

    def spin():
        clock["wall"] += 0.01
        clock["cpu"] += 0.01

    waited = measure.time_calls(wait, 0.1)
    assert waited.calls >= 2 and waited.wall_s == pytest.approx(0.02) and waited.cpu_s == 0.0
    spun = measure.time_calls(spin, 0.05)
    assert spun.calls >= 2 and spun.cpu_s == pytest.approx(0.01) and spun.wall_s == pytest.approx(0.01)


def fake_gpu_check(path, eager=3000.0, compile=4000.0, smoke=False, compile_status="ok"):
    """A `make gpu-check` report with the two pre-training stages' frames/s."""
    stages = [
        {"name": "matmul_bf16", "status": "ok", "facts": {"tflops": 700.0}},
        {"name": "pretrain_eager", "status": "ok", "facts": {"images_per_s": eager, "img_size": [240, 320]}},
        {"name": "pretrain_compile", "status": compile_status, "facts": {"images_per_s": compile}},
    ]
    path.write_text(json.dumps({"smoke": smoke, "device": "NVIDIA H100", "date": "2026-12-06", "stages": stages}))
    return str(path)


def test_gpu_rate_comes_from_gpu_check_when_present_else_from_flops(tmp_path):
    from pretrain.speed_packed import gpu_consumption, gpu_frame_rate

    estimate = {"gpu_frames_per_s": gpu_frame_rate(), "gpu_rate_from": "flop estimate"}
    assert gpu_consumption(str(tmp_path / "absent.json")) == estimate
    got = gpu_consumption(fake_gpu_check(tmp_path / "a.json"))
    assert got["gpu_rate_from"] == "gpu_check" and got["gpu_frames_per_s"] == 4000.0  # the faster stage
    assert got["gpu_check"]["stage"] == "pretrain_compile" and got["gpu_check"]["device"] == "NVIDIA H100"
    got = gpu_consumption(fake_gpu_check(tmp_path / "b.json", compile_status="failed"))
    assert (got["gpu_frames_per_s"], got["gpu_check"]["stage"]) == (3000.0, "pretrain_eager")
    assert gpu_consumption(fake_gpu_check(tmp_path / "c.json", smoke=True)) == estimate  # toy sizes on a CPU
    (tmp_path / "d.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"d.json: not a readable gpu-check report .*make gpu-check"):
        gpu_consumption(str(tmp_path / "d.json"))


def test_packed_loader_rows_at_toy_size(tmp_path):
    """The packed reader against a plain read of the same bytes, the augmented loader and cores per GPU."""
    from pretrain.speed_packed import PACKED_FRAMES, measure_packed

    gpu_check = fake_gpu_check(tmp_path / "gpu_check.json", eager=2500.0, compile=2000.0)
    rows = {r["name"]: r for r in measure_packed(str(tmp_path), tiny=True, gpu_check=gpu_check)}
    assert list(rows) == ["packed_read", "packed_loader", "packed_cores_per_gpu"]
    read = rows["packed_read"]
    assert read["limit"] > 0 and read["ratio"] == pytest.approx(read["value"] / read["limit"])
    assert 0 < read["ratio_cpu"] < math.inf  # a measured figure: its size depends on the machine's load
    loader = rows["packed_loader"]
    assert loader["value_cpu"] > 0 and loader["settings"]["img_size"] == [48, 64]
    assert loader["value"] == pytest.approx(max(loader["settings"]["rates_per_round"]), abs=1e-3)  # the best round
    cores = rows["packed_cores_per_gpu"]
    assert cores["gpu_rate_from"] == "gpu_check" and cores["settings"]["gpu_check"]["stage"] == "pretrain_eager"
    assert cores["value"] == math.ceil(2500.0 / rows["packed_loader"]["value_cpu"]) >= 1
    assert read["settings"]["pack_frames"] == PACKED_FRAMES[True] and read["settings"]["tiny"] is True
    assert not (tmp_path / "packed").exists()  # the pack is removed after measuring
    targets = {m.name: m.targets for m in suite.measurements(cuda=False)}["packed"]
    assert targets == {"packed_read": ["ratio >= 0.5"], "packed_loader": ["value >= 1500"]}
