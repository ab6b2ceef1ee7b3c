"""The campaign runner on jobs that are small Python snippets: order by dependencies, outcomes from exit
codes and files only, skipping of finished jobs, and what each running job's environment holds."""

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from benchmark.campaign.jobs import Job
from benchmark.campaign.runner import Runner


@dataclass(frozen=True, kw_only=True)
class Snippet(Job):
    script: Path
    out: Path | None = None  # the file the script writes when it succeeds

    def command(self):
        return [str(self.script)]

    def outputs(self):
        return (self.out,) if self.out else ()

    def collect(self):
        return f"wrote {self.out.read_text()!r}" if self.out else ""


def _writes(path: Path, text: str) -> str:
    return f"open({str(path)!r}, 'w').write({text})"


def snippet(folder: Path, name: str, code: str, **kwargs) -> Snippet:
    script = folder / f"{name}.py"
    script.write_text(code + "\n")
    return Snippet(name=name, script=script, **kwargs)


def test_failures_skip_their_dependents_while_independent_jobs_go_on(tmp_path, capsys):
    a, d = tmp_path / "a.txt", tmp_path / "d.txt"
    jobs = [
        snippet(tmp_path, "a", _writes(a, "'A'"), out=a),
        snippet(tmp_path, "b", "import sys; print('boom'); sys.exit(3)"),
        snippet(tmp_path, "c", "pass", needs=("b",)),
        snippet(tmp_path, "d", _writes(d, "open(" + repr(str(a)) + ").read() * 2"), out=d, needs=("a",)),
        snippet(tmp_path, "e", "pass", out=tmp_path / "never.txt"),
    ]
    outcomes = Runner("test", tmp_path / "logs", slots=2).run(jobs)
    assert {n: o.status for n, o in outcomes.items()} == {
        "a": "done",
        "b": "failed",
        "c": "not run",
        "d": "done",
        "e": "failed",
    }
    assert outcomes["d"].result == "wrote 'AA'"  # d ran after a, and its result came from its file
    console = capsys.readouterr().out
    assert "b: FAILED after" in console and "(exit code 3); last lines of" in console and "    boom" in console
    assert "c: not run, because b failed" in console
    assert re.search(r"\] \[\d/5\] d: done in \d+ s: wrote 'AA'", console)  # how many of the 5 to run ended
    assert "e: FAILED" in console and "exited without writing" in console and "never.txt" in console


def test_dependents_listed_before_a_failed_job_are_not_run(tmp_path):
    jobs = [
        snippet(tmp_path, "f", "pass", needs=("c",)),
        snippet(tmp_path, "c", "pass", needs=("b",)),
        snippet(tmp_path, "b", "raise SystemExit(3)"),
    ]
    outcomes = Runner("test", tmp_path / "logs").run(jobs)
    assert [(n, o.status, o.result) for n, o in outcomes.items()] == [
        ("b", "failed", "exit code 3"),
        ("c", "not run", "b failed"),
        ("f", "not run", "c failed"),
    ]


def test_exit_codes_of_many_short_jobs_side_by_side(tmp_path, capsys):
    """Each job's own exit code, also when jobs end while others start."""
    jobs = [snippet(tmp_path, f"j{i}", f"raise SystemExit({i % 3})") for i in range(40)]
    outcomes = Runner("test", tmp_path / "logs", slots=4).run(jobs)
    assert {n: o.result for n, o in outcomes.items() if not o.ok} == {
        f"j{i}": f"exit code {i % 3}" for i in range(40) if i % 3
    }


def test_finished_jobs_are_skipped_and_collected(tmp_path, capsys):
    out = tmp_path / "x.txt"
    job = snippet(tmp_path, "x", _writes(out, "'1'"), stage="work", out=out)
    runner = Runner("test", tmp_path / "logs", stages=("setup", "work"))
    assert runner.run([job])["x"].ok
    out.write_text("kept")  # a second run must not execute the snippet again
    outcome = runner.run([job])["x"]
    assert outcome.ok and outcome.result == "wrote 'kept'"
    console = capsys.readouterr().out
    assert "stage 2/2 work: 1 runs, 0 already finished (skipped), 1 to run" in console
    assert "stage 2/2 work: 1 runs, 1 already finished (skipped), 0 to run" in console
    assert console.count("x: started") == 1
    assert runner.plan_lines([job]) == ["x: finished, skipped"]


def test_each_job_gets_the_gpu_of_its_slot_and_the_thread_count(tmp_path):
    seen = (
        "' '.join([os.environ[k] for k in ('CUDA_VISIBLE_DEVICES', 'OMP_NUM_THREADS', 'CAMPAIGN_TEST')] + "
        "[str(torch.get_num_threads())])"
    )
    # Each job waits until both have started (bounded, so a broken runner fails instead of hanging): two slots
    # must run them side by side however slowly either starts, so each holds its own GPU.
    wait = (
        "import os, pathlib, time, torch; here = pathlib.Path({folder!r}); (here / 'started{i}').touch(); "
        "end = time.monotonic() + 120\n"
        "while not all((here / f'started{{k}}').exists() for k in (0, 1)) and time.monotonic() < end:\n"
        "    time.sleep(0.01)\n"
    )
    jobs = [
        snippet(
            tmp_path,
            f"j{i}",
            wait.format(folder=str(tmp_path), i=i) + _writes(tmp_path / f"{i}.txt", seen),
            out=tmp_path / f"{i}.txt",
            env={"CAMPAIGN_TEST": str(i)},
        )
        for i in range(2)
    ]
    Runner("test", tmp_path / "logs", threads=3, gpus=["4", "7"]).run(jobs)
    seen = [(tmp_path / f"{i}.txt").read_text().split() for i in range(2)]
    assert sorted(s[0] for s in seen) == ["4", "7"]  # side by side, one GPU each
    assert [s[1:] for s in seen] == [["3", "0", "3"], ["3", "1", "3"]]


def test_runs_are_finished_by_their_marker_not_by_metrics_json(tmp_path):
    """metrics.json is written before the record and the marker: a run stopped in between is not finished."""
    from benchmark.campaign.jobs import FinetuneJob, PretrainJob

    pre = PretrainJob(name="p", config="c.py", out_dir=tmp_path / "p")
    fine = FinetuneJob(name="f", config="c.py", out_dir=tmp_path / "f", pretrain=pre)
    for folder in (pre.out_dir, fine.out_dir):
        folder.mkdir()
        (folder / "metrics.json").write_text("{}")
    pre.export.write_bytes(b"weights")
    assert not pre.finished() and not fine.finished()
    (pre.out_dir / "finished.json").write_text("{}")
    (fine.out_dir / "finished.json").write_text("{}")
    assert pre.finished() and fine.finished()
    pre.export.unlink()
    assert not pre.finished()


BASE = {"kind": "finetune", "dataset": "synthetic", "task": "semseg", "backbone": "vit", "init": "random"}
BASE |= {"seed": 0, "date": "2026-12-02T00:00:00+00:00", "tag": "t"}


def _finished_run(folder, **record):
    """A run folder as a finished tool leaves it: its own record store and the finished marker."""
    from results.store import append_record

    folder.mkdir(parents=True)
    append_record({**BASE, "output_dir": str(folder), **record}, folder / "record.jsonl")
    (folder / "finished.json").write_text("{}")


def test_a_main_run_takes_the_lr_and_layer_decay_of_its_grids_best_run(tmp_path):
    from benchmark.campaign.jobs import FinetuneJob

    grid = tuple(
        FinetuneJob(name=f"g{i}", config="c.py", out_dir=tmp_path / f"g{i}", labels={"lr": lr, "layer_decay": ld})
        for i, (lr, ld) in enumerate([(1e-3, 0.65), (1e-3, 1.0), (3e-3, 0.65)])
    )
    main = FinetuneJob(name="m", config="c.py", out_dir=tmp_path / "m", grid=grid, labels={"stage": "main"})
    assert main.requires == ("g0", "g1", "g2")
    assert main.recipe() == {} and "<the lr and layer decay of its grid's best run>" in main.command()
    for job, miou in zip(grid, (20.0, 24.0, 24.0), strict=True):  # a tie goes to the first
        _finished_run(job.out_dir, metrics={"sem_seg/mIoU": miou})
    assert main.recipe() == {"lr": 1e-3, "layer_decay": 1.0}
    command = main.command()
    assert "optimizer.lr=0.001" in command and "optimizer.params.lr_factor_func.rate=1.0" in command
    _finished_run(main.out_dir, metrics={"sem_seg/mIoU": 30.0})
    assert main.record() | {"lr": 1e-3, "layer_decay": 1.0, "stage": "main"} == main.record()


def test_collected_records_are_labelled_stored_once_and_keep_no_machine_path(tmp_path):
    from benchmark.campaign.jobs import ProbeJob
    from results.store import REPO_ROOT, append_record, read_records

    store = tmp_path / "campaign.jsonl"
    folder = REPO_ROOT / "output" / "test_campaign_runner_probe"  # inside the repository: stored relative
    probe = ProbeJob(name="p", out_dir=folder, store=store, labels={"stage": "probe"})
    shutil.rmtree(folder, ignore_errors=True)
    try:
        folder.mkdir(parents=True)
        semseg = {**BASE, "kind": "probe", "metrics": {"sem_seg/mIoU": 9.0}}
        append_record(dict(semseg, output_dir=str(folder / "semseg")), folder / "record.jsonl")
        assert not probe.finished()  # the depth probe is still missing
        depth = {**BASE, "kind": "probe", "task": "depth", "metrics": {"depth/AbsRel": 0.3, "depth/delta1": 0.5}}
        append_record(dict(depth, output_dir=str(folder / "depth")), folder / "record.jsonl")
        assert probe.finished()
        assert probe.collect() == "depth/AbsRel 0.3, depth/delta1 0.5, sem_seg/mIoU 9"
        probe.collect()  # collecting again stores nothing twice
        stored = read_records(store)
        assert [r["task"] for r in stored] == ["semseg", "depth"] and all(r["stage"] == "probe" for r in stored)
        assert stored[0]["output_dir"] == "output/test_campaign_runner_probe/semseg"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_grid_cell_with_several_seeds_is_judged_by_its_mean(tmp_path):
    """The cell whose best seed is luckiest is not chosen: (1e-3, 1.0) scores 30 and 10 (mean 20) against
    (3e-3, 0.65)'s 22 and 22."""
    from benchmark.campaign.jobs import FinetuneJob

    cells = [(1e-3, 1.0), (1e-3, 1.0), (3e-3, 0.65), (3e-3, 0.65)]
    grid = tuple(
        FinetuneJob(name=f"g{i}", config="c.py", out_dir=tmp_path / f"g{i}", labels={"lr": lr, "layer_decay": ld})
        for i, (lr, ld) in enumerate(cells)
    )
    main = FinetuneJob(name="m", config="c.py", out_dir=tmp_path / "m", grid=grid)
    for job, miou in zip(grid, (30.0, 10.0, 22.0, 22.0), strict=True):
        _finished_run(job.out_dir, metrics={"sem_seg/mIoU": miou})
    assert main.recipe() == {"lr": 3e-3, "layer_decay": 0.65}


def test_sigterm_stops_the_campaign_and_its_running_jobs(tmp_path):
    """`kill` of a campaign ends its jobs too (they are the forkserver's children, not the campaign's): a rerun
    would otherwise find their run folders in use."""
    import signal
    import subprocess
    import sys
    import time

    pid_file = tmp_path / "job.pid"
    job = tmp_path / "job.py"
    job.write_text(f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)\n")
    campaign = (
        "from pathlib import Path\n"
        "from tests.test_campaign_runner import Snippet\n"
        "from benchmark.campaign.runner import Runner\n"
        f"job = Snippet(name='j', script=Path({str(job)!r}))\n"
        f"Runner('test', Path({str(tmp_path / 'logs')!r}), heartbeat_s=0.2).run([job])\n"
    )
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-c", campaign], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (pid_file.is_file() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    job_pid = int(pid_file.read_text())
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and b"interrupted; run the same command again to resume" in out
    deadline = time.monotonic() + 10
    while Path(f"/proc/{job_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{job_pid}").exists(), "the job outlived its campaign"
