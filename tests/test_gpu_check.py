"""`make gpu-check --smoke`: every stage at toy size on the CPU, one line each and a JSON report; the first
failing stage stops the check with exit 1 and is named."""

import json

from pretrain import gpu_stages
from tools import gpu_check

STAGES = [
    "matmul_bf16",
    "pretrain_eager",
    "pretrain_compile",
    "sdpa_kernel",
    "checkpoint_resume_export",
    "bench_semseg",
    "bench_insseg",
]


def test_smoke_runs_every_stage_and_reports(synthetic_root, tmp_path, capsys):
    out = tmp_path / "gpu_check.json"
    assert gpu_check.main(["--smoke", "--data", str(synthetic_root), "--out", str(out)]) == 0
    console = capsys.readouterr().out
    lines = console.splitlines()
    assert all(line.startswith("gpu-check: ") for line in lines), console  # a line per stage, nothing else
    assert [line.split()[1] for line in lines[1:-1]] == STAGES and all(" ok " in line for line in lines[1:-1])
    log = out.with_suffix(".log").read_text()  # what the stages print themselves: logs, COCO's tables
    assert "Average Precision" in log and "Evaluation results for bbox" in log
    assert lines[-1].endswith(f"(the stages' own output: {out.with_suffix('.log')})")
    report = json.loads(out.read_text())
    assert report["ok"] and report["smoke"] and report["device"] and report["versions"]["torch"]
    assert [s["name"] for s in report["stages"]] == STAGES
    assert all(s["status"] == "ok" and s["seconds"] >= 0 and s["peak_memory_mb"] > 0 for s in report["stages"])
    facts = {s["name"]: s["facts"] for s in report["stages"]}
    assert facts["matmul_bf16"]["tflops"] > 0
    assert facts["pretrain_eager"]["step_tflop"] > 0 and 0 < facts["pretrain_eager"]["mfu"]
    assert facts["pretrain_compile"]["compile"] and facts["sdpa_kernel"]["kernel"] in (
        "flash",
        "efficient",
        "cudnn",
        "math",
    )
    assert facts["checkpoint_resume_export"]["iterations"] == 4
    assert "sem_seg/mIoU" in facts["bench_semseg"]["metrics"] and "bbox/AP" in facts["bench_insseg"]["metrics"]


def test_first_failure_stops_naming_the_stage(synthetic_root, tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no bf16 here")

    monkeypatch.setattr(gpu_stages, "matmul_rate", broken)
    out = tmp_path / "gpu_check.json"
    assert gpu_check.main(["--smoke", "--data", str(synthetic_root), "--out", str(out)]) == 1
    assert "FAILED at stage matmul_bf16: RuntimeError: no bf16 here" in capsys.readouterr().err
    report = json.loads(out.read_text())
    assert not report["ok"] and [(s["name"], s["status"]) for s in report["stages"]] == [("matmul_bf16", "failed")]


def test_full_check_needs_a_gpu(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--out", str(tmp_path / "x.json")]) == 1
    assert "no CUDA device" in capsys.readouterr().err and not (tmp_path / "x.json").exists()
