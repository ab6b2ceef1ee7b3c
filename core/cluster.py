"""SLURM runs of `pretrain` and `benchmark.train_net` through submitit (tools/submit.py is the command line).

SLURM starts one task per GPU on every node; each task runs the entry point's `main` in-process with the
environment torchrun would give it (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR/PORT), so
`core.distributed.launch` builds the same process group as under torchrun. When SLURM preempts the job or
its time runs out, submitit calls `RunJob.checkpoint`, which resubmits the same command with `--resume`:
the run continues from its last periodic checkpoint (the run folder must stay the same, which it does: it
is either given or derived from the config). submitit is imported only here, only when submitting.
"""

from __future__ import annotations

import importlib
import os
import shutil
from dataclasses import dataclass, field, fields, replace

ENTRY_POINTS = {"pretrain": "pretrain.train", "bench": "benchmark.train_net"}
MODULE_KINDS = {"pretrain": "pretrain", "pretrain.train": "pretrain", "benchmark.train_net": "bench"}  # python -m X
RESUME = "--resume"


class ClusterError(RuntimeError):
    """A launch that cannot be made as asked; the message says what to do."""


def import_submitit():
    try:
        return importlib.import_module("submitit")
    except ImportError:
        raise ClusterError(
            "submitit is not installed: `.venv/bin/pip install submitit` (1.5.x), or launch with "
            "torchrun on an allocation you hold"
        ) from None


def with_resume(argv: list[str]) -> list[str]:
    """`argv` with `--resume` first (before any key=value override, where every entry point accepts it)."""
    return argv if RESUME in argv else [RESUME, *argv]


def distributed_env(job_env, port_base: int = 20000) -> dict[str, str]:
    """torchrun's variables from submitit's JobEnvironment; the port derives from the job id so that two jobs
    sharing a node do not collide."""
    tasks_per_node = job_env.num_tasks // job_env.num_nodes
    digits = "".join(c for c in str(job_env.job_id) if c.isdigit()) or "0"
    return {
        "RANK": str(job_env.global_rank),
        "WORLD_SIZE": str(job_env.num_tasks),
        "LOCAL_RANK": str(job_env.local_rank),
        "LOCAL_WORLD_SIZE": str(tasks_per_node),
        "MASTER_ADDR": job_env.hostnames[0],
        "MASTER_PORT": str(port_base + int(digits[-4:]) % 10000),
    }


@dataclass(frozen=True)
class RunJob:
    """What each SLURM task runs: `<entry point>.main(argv)`; picklable, so submitit can send it and resubmit it."""

    kind: str
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # variables the run needs beyond SLURM's (data root, store)

    def __post_init__(self):
        if self.kind not in ENTRY_POINTS:
            raise ClusterError(f"unknown run kind {self.kind!r}: one of {', '.join(ENTRY_POINTS)}")
        if any(a in ("--num-gpus", "--num-machines", "--machine-rank", "--dist-url") for a in self.argv):
            raise ClusterError(
                "--num-gpus/--num-machines/--machine-rank/--dist-url come from SLURM here: "
                "pass --nodes and --gpus-per-node to tools.submit instead"
            )

    def __call__(self) -> int:
        submitit = import_submitit()
        os.environ.update(self.env)
        os.environ.update(distributed_env(submitit.JobEnvironment()))
        rc = importlib.import_module(ENTRY_POINTS[self.kind]).main(list(self.argv))
        if rc != 0:
            raise RuntimeError(f"python -m {ENTRY_POINTS[self.kind]} {' '.join(self.argv)} exited with {rc}")
        return rc

    def resumed(self) -> RunJob:
        return replace(self, argv=with_resume(self.argv))

    def checkpoint(self, *args, **kwargs):
        """submitit's hook on preemption or timeout: the same run again, resuming from its last checkpoint."""
        return import_submitit().helpers.DelayedSubmission(self.resumed())


@dataclass(frozen=True)
class Resources:
    nodes: int = 1
    gpus_per_node: int = 8
    cpus_per_task: int = 10
    mem_gb: int | None = None
    timeout_min: int = 24 * 60
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    max_requeues: int = 20  # resubmissions after a timeout (preemptions do not count)

    def executor_parameters(self, name: str) -> dict:
        if self.nodes < 1 or self.gpus_per_node < 1:
            raise ClusterError("--nodes and --gpus-per-node must be >= 1")
        extra = {k: v for k, v in (("account", self.account), ("qos", self.qos), ("constraint", self.constraint)) if v}
        params = {
            "name": name,
            "nodes": self.nodes,
            "tasks_per_node": self.gpus_per_node,
            "gpus_per_node": self.gpus_per_node,
            "cpus_per_task": self.cpus_per_task,
            "timeout_min": self.timeout_min,
            "slurm_signal_delay_s": 120,
        }
        if self.partition:
            params["slurm_partition"] = self.partition
        if self.mem_gb:
            params["mem_gb"] = self.mem_gb
        if extra:
            params["slurm_additional_parameters"] = extra
        return params


def submit(job: RunJob, resources: Resources, folder: str, name: str, submitit=None, local: bool = False):
    """Submits `job` with `resources` to SLURM, or runs it on this machine when `local`; logs go to `folder/%j`.
    Returns submitit's Job. Without SLURM (no `sbatch`) submitit would quietly run every task here instead, so
    that is an error unless `local` asks for it."""
    submitit = submitit or import_submitit()
    if local and resources.nodes != 1:
        raise ClusterError(f"--local runs on this machine only: --nodes {resources.nodes} needs a SLURM cluster")
    if not local and shutil.which("sbatch") is None:
        raise ClusterError(
            "no SLURM cluster here (`sbatch` is not on PATH): submit from a SLURM login node, or pass --local "
            "to run the job's processes on this machine"
        )
    params = resources.executor_parameters(name)
    executor = submitit.AutoExecutor(
        folder=os.path.join(folder, "%j"),
        cluster="local" if local else "slurm",
        slurm_max_num_timeout=resources.max_requeues,
    )
    try:
        executor.update_parameters(**params)
    except ValueError as e:  # submitit's own check of a request its executor cannot run
        raise ClusterError(f"submitit refused the request: {e}") from None
    return executor.submit(job)


def submit_command(
    command: list[str], *, name: str, folder, env: dict[str, str], gpus: int = 1, submitit=None, **options
):
    """The campaign runner's submitter (`benchmark.campaign.slurm`): `command` is `["-m", MODULE, *argv]` of an
    entry point, run on one node with `gpus` GPUs; `options` are `Resources` fields (`partition`, `timeout_min`,
    ...), given as text on the command line."""
    if len(command) < 2 or command[0] != "-m" or command[1] not in MODULE_KINDS:
        raise ClusterError(
            f"cannot send {' '.join(command)} to SLURM: only python -m {' / '.join(sorted(MODULE_KINDS))} runs there"
        )
    allowed = {f.name: f for f in fields(Resources) if f.name not in ("nodes", "gpus_per_node")}  # one node, `gpus`
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ClusterError(f"unknown SLURM option(s) {', '.join(unknown)}: campaign runs take {', '.join(allowed)}")
    typed = {k: int(v) if "int" in str(allowed[k].type) else v for k, v in options.items()}
    job = RunJob(MODULE_KINDS[command[1]], list(command[2:]), env=dict(env))
    return submit(job, Resources(nodes=1, gpus_per_node=gpus, **typed), str(folder), name, submitit)
