"""The one runner of campaigns: each job is a process of its own running `python -m MODULE ARGS` with its own
log, up to `slots` side by side on a thread pool; a job starts once the jobs it needs are done.

What happened is read from exit codes and the files a job writes (`Job.outputs`), never from its console
output; the console only gets progress lines (a job started, finished with its result, failed with the last
lines of its log, or was not run because a job it needs failed). Finished jobs are skipped, so running a
campaign again resumes it. With `gpus`, each running job sees only the GPU of its slot. With a `launcher`
(e.g. `benchmark.campaign.slurm.SlurmLauncher`) a job runs wherever the launcher sends it; the runner still
orders, judges and reports every job the same way.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue
import re
import runpy
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import wait as wait_for_processes
from pathlib import Path
from typing import Protocol

from benchmark.campaign.jobs import Job
from core.io import write_json

REPO = Path(__file__).resolve().parents[2]
TAIL_LINES = 15
# Imported once by the server process that forks every job, so that a job starts in a fraction of a second
# instead of spending 3-8 s importing these. Third-party modules only: ours may read the environment at
# import (datasets.builtin registers the data root), and each job sets its own environment first.
PRELOAD = ["torch", "torchvision", "timm", "cv2", "detectron2.engine", "detectron2.data", "detectron2.evaluation"]


class CampaignError(RuntimeError):
    """A campaign that cannot run as asked; the message says what to change."""


@dataclass(frozen=True)
class Outcome:
    job: Job
    status: str  # "done", "failed" or "not run"
    seconds: float = 0.0
    result: str = ""  # the job's one-line result, or why it failed or was not run

    @property
    def ok(self) -> bool:
        return self.status == "done"


class Launcher(Protocol):
    """Runs one job elsewhere (a cluster) and blocks until it ends; returns (exit status, why it failed)."""

    def __call__(self, job: Job, log: Path) -> tuple[int, str]: ...

    def stop(self) -> None:
        """Cancels what is still running (Ctrl-C)."""


def check_settings(folder: Path, settings: dict) -> None:
    """A campaign folder remembers the settings that made its runs (`settings.json`), so runs made with
    other settings never mix into it."""
    path = folder / "settings.json"
    if not path.is_file():
        write_json(path, settings)
        return
    old = json.loads(path.read_text())
    if old != settings:
        diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
        raise CampaignError(
            f"{folder} holds runs made with other settings (differing: {', '.join(diff)}); "
            f"choose another output folder, or delete {folder} to start over"
        )


def local_slots(jobs: int | None, threads: int | None, gpus: int = 0) -> tuple[int, int]:
    """Runs side by side on this machine (one per GPU, else `jobs`, else min(CPUs, 4)) and torch threads per run
    (`threads`, else the CPUs shared out), so runs never oversubscribe the cores."""
    cpus = os.cpu_count() or 1
    slots = gpus or jobs or max(1, min(cpus, 4))
    return slots, threads or max(1, cpus // slots)


def failures(names: list[str]) -> str:
    """The start of a campaign's last line: which runs failed, if any."""
    return f"{len(names)} run(s) FAILED ({', '.join(names)}); " if names else ""


def relative(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


class Runner:
    def __init__(
        self,
        label: str,
        logs: Path,
        slots: int = 1,
        threads: int | None = None,
        gpus: list[str] | None = None,
        stages: tuple[str, ...] = (),
        heartbeat_s: float = 60.0,
        launcher: Launcher | None = None,
    ):
        """`threads`: OMP_NUM_THREADS of every job; `stages`: the campaign's stages in order, to number
        the progress lines; `launcher`: runs the jobs instead of local processes, `slots` at a time."""
        self.label, self.logs, self.threads, self.stages, self.heartbeat_s = label, logs, threads, stages, heartbeat_s
        self.launcher = launcher
        self.slots = len(gpus) if gpus else slots
        self._free = queue.Queue()
        for slot in gpus or [None] * slots:
            self._free.put(slot)
        self._t0 = time.perf_counter()
        self._lock = threading.Lock()
        self._running: dict[str, tuple[float, mp.process.BaseProcess]] = {}
        # multiprocessing's bookkeeping of children is not thread-safe: Process.start() polls every other
        # child, and two threads reading one child's exit status concurrently leave it at 255.
        self._mp_lock = threading.Lock()
        if "forkserver" in mp.get_all_start_methods():
            self._mp = mp.get_context("forkserver")
            self._mp.set_forkserver_preload(PRELOAD)
        else:
            self._mp = mp.get_context("spawn")

    def say(self, text: str) -> None:
        elapsed = int(time.perf_counter() - self._t0)
        with self._lock:
            print(f"[{self.label} {elapsed // 60:02d}:{elapsed % 60:02d}] {text}", flush=True)

    def log_of(self, job: Job) -> Path:
        return self.logs / (re.sub(r"[^\w.-]+", "_", job.name).strip("_") + ".log")

    def plan_lines(self, jobs: list[Job]) -> list[str]:
        """What `run` would do, one line per job (a dry run)."""
        return [
            f"{job.name}: {'finished, skipped' if job.finished() else 'python ' + ' '.join(job.command())}"
            for job in jobs
        ]

    def run(self, jobs: list[Job]) -> dict[str, Outcome]:
        """Runs the jobs that are not finished; returns every job's outcome by name. Ctrl-C (or SIGTERM, SIGHUP)
        stops the running jobs and raises KeyboardInterrupt (a rerun resumes)."""
        names = {job.name for job in jobs}
        missing = sorted({n for job in jobs for n in job.requires} - names)
        if missing or len(names) < len(jobs):
            raise CampaignError(
                f"jobs need jobs that are not in the campaign: {missing}" if missing else "job names must be unique"
            )
        outcomes = self._skip_finished(jobs)
        todo = [job for job in jobs if job.name not in outcomes]
        with _terminate_as_interrupt(), ThreadPoolExecutor(self.slots, thread_name_prefix=self.label) as pool:
            running, ended, total = {}, 0, len(todo)
            try:
                while todo or running:
                    for job in self._ready(todo, outcomes):
                        running[pool.submit(self._execute, job)] = job
                    if not running:
                        if todo:
                            raise CampaignError(f"jobs that need each other: {[j.name for j in todo]}")
                        break
                    done, _ = wait(running, timeout=self.heartbeat_s, return_when=FIRST_COMPLETED)
                    for future in done:
                        job = running.pop(future)
                        try:
                            outcome = future.result()
                        except Exception as e:  # noqa: BLE001 - e.g. its log cannot be written: this job fails
                            outcome = Outcome(job, "failed", result=f"{type(e).__name__}: {e}")
                        outcomes[job.name] = outcome
                        ended += 1
                        self._report(outcome, f"[{ended}/{total}] ")
                    if not done:
                        self._heartbeat()
            except KeyboardInterrupt:
                pool.shutdown(wait=False, cancel_futures=True)
                self._stop()
                self.say("interrupted; run the same command again to resume (finished runs are kept)")
                raise
        return outcomes

    def _ready(self, todo: list[Job], outcomes: dict[str, Outcome]) -> list[Job]:
        """Takes from `todo` the jobs whose needs are done (returned) and those that need a job that failed
        or was not run (their outcome: not run), until nothing changes."""
        ready, changed = [], True
        while changed:
            changed = False
            for job in list(todo):
                needed = [outcomes.get(n) for n in job.requires]
                bad = next((o for o in needed if o and not o.ok), None)
                if bad or all(needed):
                    todo.remove(job)
                    changed = True
                if bad:
                    outcomes[job.name] = Outcome(job, "not run", result=f"{bad.job.name} failed")
                    self.say(f"{job.name}: not run, because {bad.job.name} failed")
                elif all(needed):
                    ready.append(job)
        return ready

    def _skip_finished(self, jobs: list[Job]) -> dict[str, Outcome]:
        """Outcomes of the jobs already finished (their results are collected in case an earlier invocation
        stopped before that), with a line per stage."""
        outcomes = {job.name: self._collect(job, 0.0) for job in jobs if job.finished()}
        for stage in dict.fromkeys(job.stage for job in jobs):
            group = [job for job in jobs if job.stage == stage]
            done = sum(job.name in outcomes for job in group)
            number = f" {self.stages.index(stage) + 1}/{len(self.stages)}" if stage in self.stages else ""
            self.say(
                f"stage{number} {stage}: {len(group)} runs, {done} already finished (skipped), "
                f"{len(group) - done} to run"
            )
        for outcome in outcomes.values():
            if not outcome.ok:
                self._report(outcome)
        return outcomes

    def _execute(self, job: Job) -> Outcome:
        """Runs one job in a process of its own (from a pool thread) and judges it by its exit code and
        outputs."""
        slot = self._free.get()
        try:
            env = dict(os.environ, **job.environment())
            if self.threads:
                env["OMP_NUM_THREADS"] = str(self.threads)
            if slot is not None:
                env["CUDA_VISIBLE_DEVICES"] = slot
            log = self.log_of(job)
            log.parent.mkdir(parents=True, exist_ok=True)
            self.say(f"{job.name}: started (log {relative(log)})")
            t0 = time.perf_counter()
            try:
                if self.launcher:
                    self._running[job.name] = (t0, None)
                    rc, why = self.launcher(job, log)
                else:
                    rc, why = self._local(job, env, log, t0), ""
            finally:
                self._running.pop(job.name, None)
            seconds = time.perf_counter() - t0
            if rc:
                return Outcome(job, "failed", seconds, why or f"exit code {rc}")
            missing = [relative(p) for p in job.outputs() if not p.is_file()]
            if missing:
                return Outcome(job, "failed", seconds, f"exited without writing {', '.join(missing)}")
            return self._collect(job, seconds)
        finally:
            self._free.put(slot)

    def _local(self, job: Job, env: dict, log: Path, t0: float) -> int:
        proc = self._mp.Process(target=_python, args=(job.command(), env, str(log), self.threads), name=job.name)
        with self._mp_lock:
            proc.start()
        self._running[job.name] = (t0, proc)
        wait_for_processes([proc.sentinel])  # until it ends, without reading its status
        with self._mp_lock:
            proc.join()
        return proc.exitcode

    @staticmethod
    def _collect(job: Job, seconds: float) -> Outcome:
        try:
            return Outcome(job, "done", seconds, job.collect())
        except Exception as e:  # noqa: BLE001 - a result that cannot be read or stored fails this job only
            return Outcome(job, "failed", seconds, f"{type(e).__name__}: {e}")

    def _report(self, outcome: Outcome, count: str = "") -> None:
        """A progress line; `count`: how many of the jobs to run have ended."""
        name, seconds = outcome.job.name, outcome.seconds
        if outcome.ok:
            self.say(f"{count}{name}: done in {seconds:.0f} s" + (f": {outcome.result}" if outcome.result else ""))
            return
        log = self.log_of(outcome.job)
        self.say(
            f"{count}{name}: FAILED after {seconds:.0f} s ({outcome.result}); last lines of {relative(log)}:\n"
            + "\n".join("    " + line for line in _tail(log, TAIL_LINES))
        )

    def _heartbeat(self) -> None:
        now = time.perf_counter()
        self.say(
            "running: "
            + "; ".join(f"{name} ({(now - t0) / 60:.0f} min)" for name, (t0, _) in list(self._running.items()))
        )

    def _stop(self) -> None:
        if self.launcher:
            self.launcher.stop()
        procs = [proc for _, proc in list(self._running.values()) if proc is not None]
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.join()


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP (`kill`, a closed terminal, a scheduler's stop) end a campaign the way Ctrl-C does.
    Its jobs are children of the forkserver, not of the campaign's process: without this they outlive it,
    still holding their run folders, and the rerun finds every one of them in use."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _python(command: list[str], env: dict, log: str, threads: int | None) -> None:
    """`python -m MODULE ARGS` or `python SCRIPT ARGS` in a forked child, its output going to `log`."""
    os.chdir(REPO)
    os.environ.clear()
    os.environ.update(env)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(fd, f"$ python {' '.join(command)}\n".encode())
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    if threads:
        import torch  # the server imported it, and read OMP_NUM_THREADS before this job set it

        torch.set_num_threads(threads)
    if command[0] == "-m":
        sys.argv = command[1:]
        runpy.run_module(command[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(command)
        runpy.run_path(command[0], run_name="__main__")


def _tail(path: Path, n: int) -> list[str]:
    """The last `n` non-blank lines of a log, progress bars reduced to their last state."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    lines = [line.split("\r")[-1] for line in text.splitlines()]
    return [line for line in lines if line.strip()][-n:]
