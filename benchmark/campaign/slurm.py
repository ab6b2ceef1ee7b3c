"""Sending campaign jobs to SLURM: a `Runner` launcher that submits each job through `core.cluster` (submitit)
and waits for it from the runner's thread, so dependencies, skipping, judging by outputs and progress lines
stay the runner's.

The submit function is `core.cluster.submit_command(command, *, name, folder, env, gpus)`: `command` is the
interpreter's arguments (`["-m", "benchmark.train_net", ...]`, run from the repository root), `folder` where
submitit keeps its logs, `env` the variables the job sets, `gpus` per job, plus the `options` given here
(partition, time limit, ...). It returns a submitit-like job: `job_id`, `done()`, `result()` (raises if the
job failed) and `cancel()`. It is imported on first use, so nothing here needs submitit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from benchmark.campaign.jobs import Job


def default_submit() -> Callable:
    from core.cluster import import_submitit, submit_command

    import_submitit()  # fails with the install command before any job is sent
    return submit_command


class SlurmLauncher:
    def __init__(
        self,
        submit: Callable | None = None,
        options: Mapping[str, object] | None = None,
        gpus: int = 1,
        poll_s: float = 30.0,
    ):
        self.submit, self.options, self.gpus, self.poll_s = submit, dict(options or {}), gpus, poll_s
        self._lock = threading.Lock()
        self._live: dict[str, object] = {}

    def __call__(self, job: Job, log: Path) -> tuple[int, str]:
        submit = self.submit or default_submit()
        folder = log.with_suffix("")  # submitit's own files, beside the job's log
        handle = submit(
            job.command(), name=job.name, folder=folder, env=dict(job.environment()), gpus=self.gpus, **self.options
        )
        with self._lock:
            self._live[job.name] = handle
        try:
            with open(log, "a") as f:
                f.write(f"submitted as SLURM job {handle.job_id}; submitit logs in {folder}\n")
            while not handle.done():
                time.sleep(self.poll_s)
            handle.result()
        except Exception as e:  # noqa: BLE001 - the job failed on the cluster: this job fails, others go on
            with open(log, "a") as f:
                f.write(f"SLURM job {handle.job_id} failed: {type(e).__name__}: {e}\n")
            last = (str(e).strip().splitlines() or [""])[-1]
            return 1, f"SLURM job {handle.job_id} failed: {type(e).__name__}: {last}"
        finally:
            with self._lock:
                self._live.pop(job.name, None)
        return 0, ""

    def stop(self) -> None:
        """Cancels the submitted jobs still running, so a rerun does not train the same folder twice."""
        with self._lock:
            live = list(self._live.values())
        for handle in live:
            handle.cancel()
