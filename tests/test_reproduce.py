"""`python -m tools.reproduce`: a campaign end to end at the tiny size, its dry run (every run's problems and
the cost), and the SLURM path through a fake submitter."""

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from benchmark.campaign import cost, tables
from benchmark.campaign.runner import Runner
from benchmark.campaign.slurm import SlurmLauncher
from results.store import read_records
from tests.test_campaign_runner import _writes, snippet
from tools import reproduce

REPO = Path(__file__).resolve().parent.parent


def test_tiny_campaign_runs_records_and_resumes(synthetic_root, tmp_path, capsys):
    out, campaigns = tmp_path / "out", tmp_path / "runs"
    argv = [
        "scannet_semseg",
        "--tiny",
        "--inits",
        "random",
        "--seeds",
        "2",
        "--iters",
        "2",
        "--jobs",
        "2",
        "--out",
        str(out),
        "--campaigns",
        str(campaigns),
        "--data-root",
        str(synthetic_root),
    ]
    assert reproduce.main(argv) == 0
    console = capsys.readouterr().out
    assert "1 init(s) x 1 split(s) x 2 seed(s) = 2 runs, 0 finished, 2 to run" in console
    for seed in (0, 1):
        assert re.search(rf"scannet_semseg random 100% seed{seed}: done in \d+ s: sem_seg/mIoU ", console)
    assert re.search(r"random 100%: 2/2 runs, sem_seg/mIoU -?\d+\.\d\d ± \d+\.\d\d", console)
    assert "reproduce scannet_semseg: 2/2 runs finished" in console and "--campaigns" in console

    records = read_records(campaigns / "scannet_semseg.jsonl")
    assert sorted(r["seed"] for r in records) == [0, 1]
    for r in records:
        assert r["tiny"] is True and r["tag"] == "reproduce" and r["campaign"] == "scannet_semseg"
        assert (r["dataset"], r["split"], r["task"], r["init"]) == ("synthetic", "val", "semseg", "random")
        assert r["iterations"] == 2
    assert not read_records()  # nothing went to the scratch store

    # again: nothing runs, nothing is stored twice; the dry run lists them as finished
    assert reproduce.main(argv) == 0
    console = capsys.readouterr().out
    assert "2 runs, 2 already finished (skipped), 0 to run" in console and ": started" not in console
    assert len(read_records(campaigns / "scannet_semseg.jsonl")) == 2
    assert reproduce.main(argv + ["--dry-run"]) == 0
    assert "seed1: finished, skipped" in capsys.readouterr().out

    # other settings never mix into the same folder
    assert reproduce.main(argv + ["--iters", "3"]) == 1
    assert "holds runs made with other settings (differing: iters)" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(tables.CAMPAIGNS))
def test_every_campaign_plans_on_the_synthetic_tree(name, synthetic_root, tmp_path, capsys):
    argv = [
        name,
        "--tiny",
        "--inits",
        "random",
        "--seeds",
        "1",
        "--out",
        str(tmp_path / "out"),
        "--campaigns",
        str(tmp_path / "runs"),
        "--data-root",
        str(synthetic_root),
        "--dry-run",
    ]
    assert reproduce.main(argv) == 0
    console = capsys.readouterr().out
    campaign = tables.CAMPAIGNS[name]
    lines = [line for line in console.splitlines() if line.startswith(f"  {name} random ")]
    assert len(lines) == len(campaign.train_sets or [100])
    train, test = tables.TINY_SETS[campaign.task]
    assert all("--tiny" in line and f"dataloader.test.dataset.names={test}" in line for line in lines)
    if name == "scannet_data_efficient":
        assert f"dataloader.train.dataset.names={train}_20pct" in console
    assert not (tmp_path / "out").exists() and not (tmp_path / "runs").exists()


def test_dry_run_reports_every_run_that_cannot_start(synthetic_root, tmp_path, capsys):
    """Full recipes on a root with only the synthetic tree: ScanNet is not prepared, one init is unknown, one
    file is missing; every run says why, nothing starts, and the cost is still shown. The dry run is a plan that
    succeeds; `--check` (and a real run) make blocked runs an error."""
    out = tmp_path / "out"
    argv = [
        "scannet_semseg",
        "--inits",
        f"random,no_such_init,mae:{tmp_path / 'missing.pth'}",
        "--seeds",
        "2",
        "--out",
        str(out),
        "--campaigns",
        str(tmp_path / "runs"),
        "--data-root",
        str(synthetic_root),
    ]
    for extra, status in ((["--dry-run"], 0), (["--check"], 1), ([], 1)):
        assert reproduce.main(argv + extra) == status
        captured = capsys.readouterr()
        runs = [line for line in captured.out.splitlines() if line.startswith("  scannet_semseg ")]
        assert len(runs) == 6 and all("CANNOT START" in line for line in runs)
        notes = "\n".join(line for line in captured.out.splitlines() if re.match(r"  \[\d+\] ", line))
        assert "init 'no_such_init'" in notes and "missing.pth" in notes and "does not exist" in notes
        assert "'scannet_sem_seg_train' is not prepared" in notes and "tools.prepare_scannet" in notes
        assert "cost: " in captured.out and "an estimate from FLOPs, not a measurement" in captured.out
        if extra:  # a plan: its last line counts the blocked runs by kind of problem
            assert captured.out.splitlines()[-1].startswith(
                "reproduce scannet_semseg: planned 6 runs, 6 blocked: 6 by data not prepared ([1], [2]), "
                "4 by an init that does not resolve ([3], [4]); "
            )
            assert ("exit 1 (--check)" in captured.out) == (extra == ["--check"]) and not captured.err
        else:
            assert "6 of 6 runs cannot start" in captured.err
        assert not out.exists() and not (tmp_path / "runs").exists()


def test_a_table_without_campaign_names_the_campaigns(capsys):
    assert reproduce.main(["imagenet_linear"]) == 1
    err = capsys.readouterr().err
    assert "no campaign for table 'imagenet_linear'" in err and "scannet_data_efficient" in err
    assert "repro_mini" in err


def test_campaign_tables_are_the_reports_tables():
    from results.tables import DATA_EFFICIENT, PAPER_TABLES

    titles = {c.spec.title for c in tables.CAMPAIGNS.values()}
    assert titles == {s.title for s in PAPER_TABLES} | {DATA_EFFICIENT.title}
    efficient = tables.CAMPAIGNS["scannet_data_efficient"]
    assert sorted(efficient.train_sets) == [20, 40, 60, 80, 100]
    assert efficient.splits(tiny=True)[40] == ("synthetic_sem_seg_train_40pct", "synthetic_sem_seg_val")


def test_cost_from_flops_and_from_a_measured_step(tmp_path):
    campaign = tables.CAMPAIGNS["scannet_semseg"]
    runs = tables.plan(campaign, ["random"], 2, tmp_path / "out", tmp_path / "s.jsonl")
    facts = tables.config_facts(campaign.config("vit_b"))
    flops = 6 * 134.5e9 * facts["batch"] * facts["max_iter"]
    got = cost.estimate(runs, measurements=(tmp_path / "absent.json",))
    assert got.gpu_hours == pytest.approx(2 * flops / (0.45 * 989e12) / 3600)
    assert "estimate from FLOPs, not a measurement" in got.source
    assert cost.estimate(runs, iters=100, measurements=(tmp_path / "absent.json",)).gpu_hours == pytest.approx(
        2 * flops * 100 / facts["max_iter"] / (0.45 * 989e12) / 3600
    )

    speed = tmp_path / "speed.json"
    speed.write_text(json.dumps([{"name": "step_mask3d_vit_b_cuda", "value": 200e3, "unit": "GFLOP/s"}]))
    measured = cost.estimate(runs, measurements=(tmp_path / "absent.json", speed))
    assert measured.gpu_hours == pytest.approx(2 * flops / 200e12 / 3600)
    assert measured.source.startswith("measured: 200 TFLOP/s") and "speed.json" in measured.source
    speed.write_text(json.dumps([{"name": "step_mask3d_vit_b_cuda", "value": None, "error": "no GPU"}]))
    assert "estimate from FLOPs" in cost.estimate(runs, measurements=(speed,)).source  # a failed row is no figure
    check = tmp_path / "gpu_check.json"
    check.write_text(json.dumps({"rows": [{"name": "step_mask3d_vit_b_cuda", "value": 400e3, "unit": "GFLOP/s"}]}))
    assert cost.estimate(runs, measurements=(speed, check)).gpu_hours == pytest.approx(2 * flops / 400e12 / 3600)


class FakeSlurmJob:
    """submitit's Job as the launcher uses it: runs `python COMMAND` in a thread."""

    count = 0

    def __init__(self, command, env):
        FakeSlurmJob.count += 1
        self.job_id, self.cancelled = str(1000 + FakeSlurmJob.count), False
        self.proc = subprocess.Popen(
            [sys.executable, *command], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.thread = threading.Thread(target=self.proc.communicate)
        self.thread.start()

    def done(self):
        return not self.thread.is_alive()

    def result(self):
        if self.proc.returncode:
            raise RuntimeError(f"Job {self.job_id} failed with exit code {self.proc.returncode}\nlast line")

    def cancel(self):
        self.cancelled = True


def test_slurm_launcher_submits_each_job_and_judges_it(tmp_path, capsys):
    calls = []

    def submit(command, *, name, folder, env, gpus, **options):
        calls.append({"name": name, "command": command, "env": env, "gpus": gpus, "options": options, "folder": folder})
        return FakeSlurmJob(command, {"PATH": "/usr/bin:/bin", **env})

    ok, never = tmp_path / "ok.txt", tmp_path / "never.txt"
    jobs = [
        snippet(tmp_path, "ok", "import os; " + _writes(ok, "os.environ['WHO']"), out=ok, env={"WHO": "me"}),
        snippet(tmp_path, "bad", "raise SystemExit(2)", out=never),
        snippet(tmp_path, "after", "pass", needs=("bad",)),
    ]
    launcher = SlurmLauncher(submit, options={"partition": "gpu"}, poll_s=0.01)
    outcomes = Runner("test", tmp_path / "logs", slots=4, launcher=launcher).run(jobs)
    assert {n: o.status for n, o in outcomes.items()} == {"ok": "done", "bad": "failed", "after": "not run"}
    assert outcomes["ok"].result == "wrote 'me'"
    assert re.fullmatch(r"SLURM job \d+ failed: RuntimeError: last line", outcomes["bad"].result)
    assert sorted(c["name"] for c in calls) == ["bad", "ok"]  # the dependent was never submitted
    first = next(c for c in calls if c["name"] == "ok")
    assert first["env"] == {"WHO": "me"} and first["gpus"] == 1 and first["options"] == {"partition": "gpu"}
    assert first["command"] == [str(tmp_path / "ok.py")]
    assert "submitted as SLURM job" in (tmp_path / "logs" / "ok.log").read_text()
    assert "bad: FAILED" in capsys.readouterr().out


def test_slurm_launcher_stop_cancels_the_jobs_still_running(tmp_path):
    class Pending:
        job_id, cancelled = "7", False

        def done(self):
            return self.cancelled

        def result(self):
            raise RuntimeError("cancelled")

        def cancel(self):
            self.cancelled = True

    handle = Pending()
    launcher = SlurmLauncher(lambda command, **kw: handle, poll_s=0.01)
    log = tmp_path / "x.log"
    thread = threading.Thread(target=lambda: setattr(handle, "got", launcher(snippet(tmp_path, "x", "pass"), log)))
    thread.start()
    while "submitted" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.01)
    launcher.stop()
    thread.join(120)  # bounded only so that a broken stop fails instead of hanging; it returns within a poll
    assert (
        not thread.is_alive() and handle.cancelled and handle.got == (1, "SLURM job 7 failed: RuntimeError: cancelled")
    )


def test_slurm_launcher_without_submitter_fails_each_job_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # not installed
    job = snippet(tmp_path, "x", "pass")
    outcome = Runner("test", tmp_path / "logs", launcher=SlurmLauncher(poll_s=0.01)).run([job])["x"]
    assert outcome.status == "failed" and "submitit is not installed" in outcome.result


def test_repro_mini_is_a_campaign_of_the_same_command(tmp_path, monkeypatch, capsys):
    from benchmark.campaign.reproduce import TINY_OUT
    from tools import repro_mini

    seen = []
    monkeypatch.setattr(repro_mini, "main", lambda argv: seen.append(argv) or 0)
    assert (
        reproduce.main(
            [
                "repro_mini",
                "--toy",
                "--seeds",
                "2",
                "--inits",
                "random,mae",
                "--dry-run",
                "--campaigns",
                str(tmp_path),
                "--fractions",
                "20",
            ]
        )
        == 0
    )
    assert seen == [
        [
            "--toy",
            "--report-out",
            str(TINY_OUT / "report"),
            "--store",
            str(tmp_path / "repro_mini_2.jsonl"),
            "--dry-run",
            "--objectives=mae",
            "--seeds=2",
            "--fractions",
            "20",
        ]
    ]  # its own options pass through
    assert reproduce.main(["repro_mini", "--inits", "random,imagenet_mae_vitb"]) == 1
    assert "repro_mini's inits are random, none, supervised and its objectives" in capsys.readouterr().err
    assert len(seen) == 1
    with pytest.raises(SystemExit):
        reproduce.main(["scannet_semseg", "--fractions", "20"])
    assert "only repro_mini takes its own options" in capsys.readouterr().err


def test_full_runs_record_into_the_tables_campaign_store_by_default(synthetic_root, tmp_path, capsys):
    from results.store import campaign_path

    before = campaign_path("scannet_semseg").exists()
    argv = [
        "scannet_semseg",
        "--inits",
        "random",
        "--seeds",
        "1",
        "--data-root",
        str(synthetic_root),
        "--dry-run",
        "--out",
        str(tmp_path / "out"),
    ]
    assert reproduce.main(argv) == 0  # a plan, though ScanNet is not prepared under this root (1 run blocked)
    assert "records in results/runs/scannet_semseg.jsonl" in capsys.readouterr().out
    assert campaign_path("scannet_semseg").exists() == before  # a dry run writes nothing
