"""`make repro-mini`: the paper's claim in miniature on a CPU, end to end, in under 45 minutes on 2 cores.

    python -m tools.repro_mini [--toy] [--out output/repro_mini] [--seeds 3] [--jobs 2] ...

1. data: generates (or reuses) the synthetic RGB-D scenes, exactly as `make data-synthetic` does;
2. pretrain: pre-trains the same small ViT with the same budget (iterations, batch, data, seed) for each
   objective, `mask3d`, `mae` and `multimae` (`python -m pretrain`), and exports each encoder;
3. finetune: fine-tunes each export and a `random` initialisation on synthetic semantic segmentation with
   the full training split and the 20 % split, for every seed, and evaluates mIoU on the validation
   split (`python -m benchmark.train_net`);
4. report: every run goes to the results store with tag `repro-mini` (fine-tunes with `init` and
   `objective` set to the pre-training objective), then `python -m results.report` regenerates
   results/REPORT.md, whose "Mini reproduction" section has mean +- std mIoU per (objective, split), the
   gaps to random and to mae, and a bar plot.

Settings (image size, ViT, iterations) and the reasons for them are in `tools/repro_mini_config.py`.
Runs go to OUT/pretrain/<objective>/ and OUT/finetune/<init>/<pct>pct/seed<k>/; each is the ordinary run
folder of its command-line tool, whose console output goes to OUT/logs/<run>.log. Up to `--jobs` runs go
side by side (one thread each on 2 cores: small models use two cores better as two processes than as two
threads); a fine-tune starts as soon as its export exists. Re-running skips finished runs and resumes
interrupted ones; a finished run is never overwritten, and OUT remembers its settings so that other
settings cannot mix into it (choose another --out). `--toy` runs the same pipeline at a size that checks
it works in about a minute (tests/test_repro_mini.py); its numbers mean nothing.
"""
from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing as mp
import os
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tools import repro_mini_config as C

REPO = Path(__file__).resolve().parent.parent
TAG = "repro-mini"
HEARTBEAT_S = 60.0
# Imported once by the process that forks every run, so each run starts in a fraction of a second.
PRELOAD = ["torch", "detectron2.engine", "benchmark.train_net", "pretrain.train", "tools.make_synthetic",
           "tools.prepare_scannet"]


class ReproError(RuntimeError):
    """Something the user has to fix before the reproduction can run; the message says what."""


# --- one run in a child process --------------------------------------------------------------------------
def _child(module: str, argv: list[str], env: dict, log: str, threads: int) -> None:
    """Runs `module.main(argv)` with stdout/stderr going to `log` (executed in a forked child)."""
    os.chdir(REPO)
    os.environ.update(env)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    import torch

    torch.set_num_threads(threads)
    if env.get("MASK3D_DATA"):  # the forking process may have registered another root (or none) at import
        import datasets.builtin

        datasets.builtin.register_all(env["MASK3D_DATA"])
    print(f"$ python -m {module} {' '.join(argv)}", flush=True)
    rc = importlib.import_module(module).main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    if rc:
        sys.exit(rc)


@dataclass
class Job:
    name: str  # e.g. "finetune mae 20% seed1"
    stage: str
    module: str
    argv: list[str]
    log: Path
    env: dict = field(default_factory=dict)
    needs: list["Job"] = field(default_factory=list)
    finished: callable = lambda: False  # true when its result exists (the run is skipped)
    after: callable = lambda: ""  # on success: store the record, return a one-line result
    progress_total: int = 0
    state: str = "pending"  # pending, running, done, failed, skipped
    process: object = None
    started: float = 0.0
    result: str = ""


class Runner:
    """Runs jobs, up to `jobs` at a time, each in a child forked from a preloaded server process."""

    def __init__(self, jobs: int, threads: int, t0: float):
        self.jobs, self.threads, self.t0 = jobs, threads, t0
        method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        self.ctx = mp.get_context(method)
        if method == "forkserver":
            self.ctx.set_forkserver_preload(PRELOAD)

    def say(self, text: str) -> None:
        elapsed = int(time.perf_counter() - self.t0)
        print(f"[repro-mini {elapsed // 60:02d}:{elapsed % 60:02d}] {text}", flush=True)

    def run(self, jobs: list[Job]) -> None:
        pending = [j for j in jobs if j.state == "pending"]
        running: list[Job] = []
        last_beat = time.perf_counter()
        try:
            while pending or running:
                for job in list(pending):
                    if any(d.state in ("failed", "skipped") for d in job.needs):
                        job.state = "skipped"
                        pending.remove(job)
                        self.say(f"{job.name}: not run, because {_first_bad(job.needs)} failed")
                    elif len(running) < self.jobs and all(d.state == "done" for d in job.needs):
                        self._start(job)
                        pending.remove(job)
                        running.append(job)
                for job in list(running):
                    if job.process.exitcode is not None:
                        running.remove(job)
                        self._finish(job)
                if time.perf_counter() - last_beat >= HEARTBEAT_S and running:
                    last_beat = time.perf_counter()
                    self.say("running: " + "; ".join(f"{j.name} {_progress(j)}" for j in running))
                time.sleep(0.2)
        except KeyboardInterrupt:
            for job in running:
                job.process.terminate()
                job.process.join()
            self.say("interrupted; run the same command again to resume (finished runs are kept)")
            raise

    def _start(self, job: Job) -> None:
        job.log.parent.mkdir(parents=True, exist_ok=True)
        job.process = self.ctx.Process(target=_child, name=job.name,
                                       args=(job.module, job.argv, job.env, str(job.log), self.threads))
        job.started = time.perf_counter()
        job.process.start()
        job.state = "running"
        self.say(f"{job.name}: started (log {_rel(job.log)})")

    def _finish(self, job: Job) -> None:
        seconds = time.perf_counter() - job.started
        if job.process.exitcode == 0 and job.finished():
            try:
                job.result = job.after()
                job.state = "done"
            except Exception as e:  # noqa: BLE001 - a record that cannot be stored fails this run only
                job.state, job.result = "failed", f"{type(e).__name__}: {e}"
        else:
            job.state = "failed"
            job.result = f"exit code {job.process.exitcode}"
        if job.state == "done":
            self.say(f"{job.name}: done in {seconds:.0f} s" + (f": {job.result}" if job.result else ""))
        else:
            tail = _tail(job.log, 15)
            self.say(f"{job.name}: FAILED after {seconds:.0f} s ({job.result}); last lines of {_rel(job.log)}:\n"
                     + "\n".join("    " + line for line in tail))


def _first_bad(jobs: list[Job]) -> str:
    return next(j.name for j in jobs if j.state in ("failed", "skipped"))


def _tail(path: Path, n: int) -> list[str]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    lines = [line.split("\r")[-1] for line in text.splitlines()]
    return [line for line in lines if line.strip()][-n:]


def _progress(job: Job) -> str:
    """`iter 800/1600`, `eval 91/200`, ... from the end of the run's console log."""
    try:
        with open(job.log, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - 20000))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    found = []
    for pattern, fmt in ((r"iter (\d+)/(\d+)", "iter {}/{}"), (r"\| *(\d+)/(\d+) \[", "iter {}/{}"),
                         (r"iter: (\d+) ", "iter {}"),
                         (r"Inference done (\d+)/(\d+)", "eval {}/{}")):
        for m in re.finditer(pattern, text):
            found.append((m.start(), fmt.format(*m.groups())))
    if not found:
        return "(starting)"
    text = max(found)[1]
    if text.startswith("iter ") and "/" not in text and job.progress_total:
        text = f"iter {int(text.split()[1]) + 1}/{job.progress_total}"
    return f"({text})"


def _rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def _atomic_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


# --- the plan -------------------------------------------------------------------------------------------
def settings_of(preset: dict, args) -> dict:
    """What a run's result depends on; OUT keeps it so other settings never mix into its runs."""
    return {"preset": preset["name"], "data": preset["data"], "image": list(preset["image"]), "vit": preset["vit"],
            "pretrain_iters": args.pretrain_iters or preset["pretrain_iters"], "pretrain": preset["pretrain"],
            "finetune_iters": args.finetune_iters or preset["finetune_iters"], "finetune": preset["finetune"],
            "set_pretrain": args.set_pretrain, "set_finetune": args.set_finetune,
            "data_root": str(Path(args.data_root).resolve())}


def check_settings(out: Path, settings: dict) -> None:
    path = out / "settings.json"
    if path.is_file():
        old = json.loads(path.read_text())
        if old != settings:
            diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
            raise ReproError(f"{out} holds runs made with other settings (differing: {', '.join(diff)}); choose "
                             f"another --out, or delete {out} to start over")
    else:
        _atomic_json(path, settings)


def plan(preset: dict, args, out: Path, store: Path) -> tuple[list[Job], dict]:
    data_root = Path(args.data_root).resolve()
    env = {"MASK3D_DATA": str(data_root), "MASK3D_RESULTS": str(store)}
    logs = out / "logs"
    d = preset["data"]
    raw, prepared = data_root / "synthetic_raw", data_root / "synthetic"
    make = Job("data: generate scenes", "data", "tools.make_synthetic",
               ["--out", str(raw), "--scenes", str(d["scenes"]), "--frames-per-scene", str(d["frames_per_scene"]),
                "--seed", str(d["seed"]), "--height", str(d["height"]), "--width", str(d["width"]),
                "--skip-existing"], logs / "data_make_synthetic.log", env)
    prepare = Job("data: prepare", "data", "tools.prepare_scannet",
                  ["--raw", str(raw), "--out", str(prepared), "--frame-skip", "1"], logs / "data_prepare.log", env,
                  needs=[make])
    make.finished = prepare.finished = lambda: True
    jobs = [make, prepare]

    pretrains = {}
    iters = args.pretrain_iters or preset["pretrain_iters"]
    for objective in args.objectives:
        run = out / "pretrain" / objective
        job = Job(f"pretrain {objective}", "pretrain", "pretrain.train",
                  ["--config", C.PRETRAIN_CONFIG, "--resume", *C.pretrain_overrides(preset, objective, str(run), iters),
                   *args.set_pretrain], logs / f"pretrain_{objective}.log", env, needs=[prepare],
                  progress_total=iters)
        job.finished = lambda run=run: (run / "metrics.json").is_file() and (run / "backbone.pth").is_file()
        job.after = lambda run=run: _pretrain_result(run)
        pretrains[objective] = job
    # multimae costs about twice as much per iteration: start it first so the two slots end together
    jobs += sorted(pretrains.values(), key=lambda j: j.name != "pretrain multimae")

    finetunes = []
    ft_iters = args.finetune_iters or preset["finetune_iters"]
    for fraction in args.fractions:
        for seed in range(args.seeds):
            for init in ["random"] + list(args.objectives):
                run = out / "finetune" / init / f"{fraction}pct" / f"seed{seed}"
                spec = "random" if init == "random" else f"mask3d:{out / 'pretrain' / init / 'backbone.pth'}"
                job = Job(f"finetune {init} {fraction}% seed{seed}", "finetune", "benchmark.train_net",
                          ["--config-file", C.FINETUNE_CONFIG, "--tiny", "--resume", "--init", spec, "--tag", TAG,
                           *C.finetune_overrides(preset, fraction, seed, str(run), ft_iters), *args.set_finetune],
                          logs / f"finetune_{init}_{fraction}pct_seed{seed}.log",
                          {**env, "MASK3D_RESULTS": str(run / "record.jsonl")},
                          needs=[prepare] + ([pretrains[init]] if init != "random" else []), progress_total=ft_iters)
                job.finished = lambda run=run: (run / "metrics.json").is_file()
                job.after = lambda run=run, init=init: _store_finetune(run, init, out, store)
                finetunes.append(job)
    jobs += finetunes
    return jobs, {"pretrain": list(pretrains.values()), "finetune": finetunes}


def _pretrain_result(run: Path) -> str:
    m = json.loads((run / "metrics.json").read_text())
    return f"loss {m.get('loss_start', float('nan')):.4f} -> {m.get('loss', float('nan')):.4f}, {m.get('iterations')} iterations"


def _store_finetune(run: Path, init: str, out: Path, store: Path) -> str:
    """Append the run's record (init/objective = the pre-training objective, tag repro-mini) to the store,
    unless a record of this run folder is there already; return the run's mIoU."""
    from results.store import append_record, read_records

    record = dict(json.loads((run / "metrics.json").read_text())["record"])
    record.update(init=init, tag=TAG)
    if init != "random":
        record["objective"] = init
        pretrain_dir = out / "pretrain" / init
        record["pretrain"] = {"output_dir": str(pretrain_dir),
                              "iterations": json.loads((pretrain_dir / "metrics.json").read_text()).get("iterations")}
    if not any(r.get("output_dir") == record["output_dir"] and r.get("tag") == TAG for r in read_records(store)):
        append_record(record, store)
    return f"mIoU {record['metrics'].get('sem_seg/mIoU', float('nan')):.2f}"


# --- summary --------------------------------------------------------------------------------------------
def summarize(finetunes: list[Job], out: Path) -> dict:
    """mIoU per (init, % of scenes) from the run folders: values, mean and sample std."""
    cells: dict[str, dict] = {}
    for job in finetunes:
        if not job.finished():
            continue
        record = json.loads((_run_dir(job) / "metrics.json").read_text())["record"]
        init, fraction = job.name.split()[1], job.name.split()[2].rstrip("%")
        value = record["metrics"].get("sem_seg/mIoU")
        if value is not None:
            cells.setdefault(f"{init} {fraction}%", {"init": init, "data_fraction": int(fraction), "mIoU": []})
            cells[f"{init} {fraction}%"]["mIoU"].append(value)
    for cell in cells.values():
        values = cell["mIoU"]
        cell["mean"] = statistics.fmean(values)
        cell["std"] = statistics.stdev(values) if len(values) > 1 else None
    return cells


def _run_dir(job: Job) -> Path:
    return Path(next(a.split("=", 1)[1] for a in job.argv if a.startswith("train.output_dir=")))


def _fmt_cell(cell: dict | None) -> str:
    if not cell:
        return "n/a"
    return f"{cell['mean']:.2f}" + (f"±{cell['std']:.2f}" if cell["std"] is not None else "")


def report_section(report: Path) -> list[str]:
    """The "Mini reproduction" section of REPORT.md, for the console."""
    if not report.is_file():
        return []
    lines, inside = [], False
    for line in report.read_text().splitlines():
        if line.startswith("## "):
            inside = line.strip() == "## Mini reproduction"
        elif inside:
            lines.append(line)
    return [line for line in lines if line.startswith("|")]


# --- main -----------------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m tools.repro_mini", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Settings and their reasons: tools/repro_mini_config.py")
    p.add_argument("--toy", action="store_true", help="the pipeline at a toy size (about a minute; numbers mean nothing)")
    p.add_argument("--out", default=None, help="run folders (default output/repro_mini, --toy: output/repro_mini_toy)")
    p.add_argument("--seeds", type=int, default=None, help="fine-tuning seeds per (init, split) (default: 3, --toy: 1)")
    p.add_argument("--jobs", type=int, default=None, help="runs side by side (default: min(CPUs, 4)), one thread "
                                                          "each unless CPUs > jobs")
    p.add_argument("--threads", type=int, default=None, help="torch threads per run (default: CPUs // jobs)")
    p.add_argument("--data-root", default=None, help="data root (default: $MASK3D_DATA, else $DETECTRON2_DATASETS, "
                                                     "else ./data; --toy: OUT/data)")
    p.add_argument("--store", default=None, help="results store (default: $MASK3D_RESULTS, else results/runs.jsonl)")
    p.add_argument("--report-out", default=str(REPO / "results"), help="folder of REPORT.md (default results/)")
    p.add_argument("--objectives", default=",".join(C.OBJECTIVES), help="pre-training objectives (default: all)")
    p.add_argument("--fractions", default="100,20", help="%% of training scenes to fine-tune on (100 and/or 20)")
    p.add_argument("--pretrain-iters", type=int, default=None, help="pre-training iterations (default: the preset's)")
    p.add_argument("--finetune-iters", type=int, default=None, help="fine-tuning iterations (default: the preset's)")
    p.add_argument("--set-pretrain", action="append", default=[], metavar="KEY=VALUE",
                   help="extra pre-training override for every objective (experiments), e.g. model.depth_norm=metric")
    p.add_argument("--set-finetune", action="append", default=[], metavar="KEY=VALUE",
                   help="extra fine-tuning override for every run (experiments)")
    p.add_argument("--no-report", action="store_true", help="skip regenerating REPORT.md")
    p.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    args = p.parse_args(argv)
    args.objectives = [o for o in args.objectives.split(",") if o]
    bad = [o for o in args.objectives if o not in C.OBJECTIVES]
    if bad:
        p.error(f"unknown objectives {bad}; choose from {list(C.OBJECTIVES)}")
    try:
        args.fractions = [int(f) for f in args.fractions.split(",") if f]
    except ValueError:
        p.error("--fractions takes comma-separated integers, e.g. 100,20")
    if not args.fractions or any(f not in C.TRAIN_SETS for f in args.fractions):
        p.error(f"--fractions must be some of {sorted(C.TRAIN_SETS, reverse=True)}")
    for name in ("seeds", "jobs", "threads", "pretrain_iters", "finetune_iters"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    preset = C.TOY if args.toy else C.FULL
    out = Path(args.out or ("output/repro_mini_toy" if args.toy else "output/repro_mini"))
    out = (out if out.is_absolute() else REPO / out).resolve()
    if args.data_root is None:
        if args.toy:
            args.data_root = str(out / "data")
        else:
            from datasets.builtin import data_root

            args.data_root = data_root()
    if not Path(args.data_root).is_absolute():
        args.data_root = str(REPO / args.data_root)
    from results.store import store_path

    store = store_path(args.store).resolve()
    args.seeds = args.seeds or preset["seeds"]
    cpus = os.cpu_count() or 1
    args.jobs = args.jobs or max(1, min(cpus, 4))
    threads = args.threads or max(1, cpus // args.jobs)

    jobs, groups = plan(preset, args, out, store)
    runner = Runner(args.jobs, threads, t0)
    n_pre, n_ft = len(groups["pretrain"]), len(groups["finetune"])
    runner.say(f"{preset['name']} preset: {n_pre} pre-trainings x {args.pretrain_iters or preset['pretrain_iters']} "
               f"iterations, {n_ft} fine-tunes x {args.finetune_iters or preset['finetune_iters']} iterations "
               f"({args.seeds} seeds), {args.jobs} at a time x {threads} thread(s); runs in {_rel(out)}, records in "
               f"{_rel(store)}, data under {_rel(Path(args.data_root))}")
    if args.dry_run:
        for job in jobs:
            print(f"  {job.name}: python -m {job.module} {' '.join(job.argv)}")
        return 0
    try:
        check_settings(out, settings_of(preset, args))
    except ReproError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1

    runner.say("stage 1/4 data: synthetic scenes (generated once, then reused)")
    # Finished runs are skipped (their records are stored if an earlier invocation stopped before that).
    for stage, group in groups.items():
        done = [j for j in group if j.finished()]
        for job in done:
            job.result, job.state = job.after(), "done"
        runner.say(f"stage {['data', 'pretrain', 'finetune'].index(stage) + 1}/4 {stage}: {len(group)} runs, "
                   f"{len(done)} already finished (skipped), {len(group) - len(done)} to run")
    try:
        runner.run(jobs)
    except KeyboardInterrupt:
        return 130
    failed = [j for j in jobs if j.state in ("failed", "skipped")]

    cells = summarize(groups["finetune"], out)
    report = Path(args.report_out) / "REPORT.md"
    if not args.no_report:
        runner.say(f"stage 4/4 report: python -m results.report --store {_rel(store)} --out {_rel(Path(args.report_out))}")
        job = Job("report", "report", "results.report", ["--store", str(store), "--out", str(args.report_out)],
                  out / "logs" / "report.log", {"MASK3D_RESULTS": str(store)})
        job.finished = lambda: report.is_file()
        runner.run([job])
        if job.state == "done":
            for line in report_section(report):
                print("    " + line)
        else:
            failed.append(job)

    wall = time.perf_counter() - t0
    _atomic_json(out / "summary.json", {"wall_s": wall, "cells": cells, "failed": [j.name for j in failed],
                                        "settings": settings_of(preset, args), "seeds": args.seeds})
    parts = []
    for fraction in args.fractions:
        parts.append(f"{fraction}%: " + ", ".join(f"{init} {_fmt_cell(cells.get(f'{init} {fraction}%'))}"
                                                  for init in ["random"] + args.objectives))
    status = f"{len(failed)} run(s) FAILED ({', '.join(j.name for j in failed)}); " if failed else ""
    print(f"repro-mini: {status}{n_pre} pre-trainings, {n_ft} fine-tunes in {wall / 60:.1f} min; mIoU "
          f"{'; '.join(parts)}; report {_rel(report) if not args.no_report else 'not regenerated'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
