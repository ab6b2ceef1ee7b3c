"""Send a pre-training or benchmark run to SLURM (submitit), on one or more nodes; preempted or timed-out jobs
are resubmitted with `--resume` (core.cluster).

    python -m tools.submit [--nodes 2] [--gpus-per-node 8] [--partition P] [--time-min 4320] \
        pretrain --config pretrain/configs/scannet_vit_b.py train.output_dir=output/pretrain/vitb
    python -m tools.submit --gpus-per-node 8 bench --config-file benchmark/configs/scannet/semseg_vit_b.py \
        --init mask3d:output/pretrain/vitb/backbone.pth

Everything after `pretrain` / `bench` is passed to `python -m pretrain` / `python -m benchmark.train_net` as
is (without --num-gpus: SLURM starts one process per GPU). Needs `pip install submitit` and a SLURM cluster
(`sbatch`); `--local` runs the job's processes on this machine instead.
"""

from __future__ import annotations

import argparse
import sys

from core.cluster import ENTRY_POINTS, ClusterError, Resources, RunJob, submit


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.submit", description=__doc__.split("\n\n")[0])
    defaults = Resources()
    parser.add_argument("--nodes", type=int, default=defaults.nodes)
    parser.add_argument("--gpus-per-node", type=int, default=defaults.gpus_per_node)
    parser.add_argument("--cpus-per-task", type=int, default=defaults.cpus_per_task, help="data-loader workers + 2")
    parser.add_argument("--mem-gb", type=int, default=None)
    parser.add_argument(
        "--time-min", type=int, default=defaults.timeout_min, help="per submission; resubmitted with --resume after it"
    )
    parser.add_argument("--partition", default=None)
    parser.add_argument("--account", default=None)
    parser.add_argument("--qos", default=None)
    parser.add_argument("--constraint", default=None, help="e.g. h100")
    parser.add_argument("--max-requeues", type=int, default=defaults.max_requeues)
    parser.add_argument("--name", default=None, help="SLURM job name (default mask3d-<kind>)")
    parser.add_argument("--logs", default="output/slurm", help="submitit's folder (one sub-folder per job)")
    parser.add_argument(
        "--local", action="store_true", help="no SLURM: run the job's processes on this machine (one node)"
    )
    parser.add_argument("kind", choices=sorted(ENTRY_POINTS), help="pretrain or bench")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments of the entry point")
    return parser


def main(argv=None, submitit=None) -> int:
    args = build_parser().parse_args(argv)
    resources = Resources(
        nodes=args.nodes,
        gpus_per_node=args.gpus_per_node,
        cpus_per_task=args.cpus_per_task,
        mem_gb=args.mem_gb,
        timeout_min=args.time_min,
        partition=args.partition,
        account=args.account,
        qos=args.qos,
        constraint=args.constraint,
        max_requeues=args.max_requeues,
    )
    try:
        job = submit(
            RunJob(args.kind, list(args.args)),
            resources,
            args.logs,
            args.name or f"mask3d-{args.kind}",
            submitit=submitit,
            local=args.local,
        )
    except ClusterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.local:
        print(
            f"submit: {args.kind} job {job.job_id} started on this machine with {args.gpus_per_node} process(es) "
            f"(--local); logs in {args.logs}/{job.job_id}"
        )
        return 0
    print(
        f"submit: {args.kind} job {job.job_id} on {args.nodes} node(s) x {args.gpus_per_node} GPU(s); logs in "
        f"{args.logs}/{job.job_id}; resubmitted with --resume if preempted or out of time"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
