"""`make reproduce TABLE=...`: fill one table of the paper with one command.

    python -m tools.reproduce TABLE [--inits mask3d:PATH,imagenet_mae_vitb,random] [--seeds 3] [--dry-run [--check]]
                              [--tiny] [--slurm [--slurm-option KEY=VALUE ...]] [--gpus 0,1] [--jobs N]

TABLE is a campaign of benchmark/campaign/tables.py (`--list`), or `repro_mini` (`make repro-mini`'s
campaign, same runner; options of `python -m tools.repro_mini` pass through). Each (init, split, seed) is one
fine-tune in OUT/<init>/<pct>pct/seed<k>; its record goes to the campaign's store, results/runs/<TABLE>.jsonl,
which `make tables` reads into the report.

`--dry-run` lists every run (finished ones are skipped), what stops any of them from starting (an init that
does not resolve, a dataset that is not prepared), and the GPU-hours of the runs left, with where that figure
comes from; it exits 0 once planned and ends with how many runs are blocked and why. `--check` is the same
dry run for scripts: it exits 1 when any run is blocked. Without them, a run with a problem stops the whole
command before anything starts. Runs go one per GPU here (one per CPU slot with `--tiny`), or each to SLURM
with `--slurm`. Running the same command again skips finished runs and resumes interrupted ones. `--tiny` runs
the campaign with the CPU-sized recipe on the synthetic tree, a check of the whole path in minutes; its records
go to a scratch store and never into the paper's tables.
"""

from __future__ import annotations

import argparse
import sys

from benchmark.campaign import reproduce, tables
from benchmark.campaign.runner import CampaignError
from core import cli


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m tools.reproduce",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Campaigns: benchmark/campaign/tables.py; cost: benchmark/campaign/cost.py",
    )
    p.add_argument("table", nargs="?", help="the campaign to run (--list names them)")
    p.add_argument("--list", action="store_true", help="print the campaigns and the tables they fill, then exit")
    p.add_argument(
        "--inits",
        default=",".join(tables.DEFAULT_INITS),
        help="comma-separated init specs (random, KIND:PATH or a results/baselines.yaml name) [%(default)s]",
    )
    p.add_argument("--seeds", type=int, default=None, help=f"seeds per (init, split) [{tables.DEFAULT_SEEDS}]")
    p.add_argument("--tiny", "--toy", action="store_true", help="CPU-sized recipe on the synthetic tree (minutes)")
    p.add_argument("--iters", type=int, default=None, help="training iterations of every run (default: the config's)")
    p.add_argument("--dry-run", action="store_true", help="list the runs, their problems and their cost, then exit")
    p.add_argument("--check", action="store_true", help="a dry run that exits 1 when any run is blocked")
    p.add_argument(
        "--out", default=None, help="run folders (default output/reproduce/TABLE, --tiny: output/reproduce_tiny/TABLE)"
    )
    p.add_argument(
        "--campaigns",
        default=None,
        help="folder of the campaign store TABLE.jsonl (default results/runs, --tiny: output/reproduce_tiny/runs)",
    )
    p.add_argument(
        "--data-root", default=None, help="data root (default $MASK3D_DATA, else $DETECTRON2_DATASETS, else ./data)"
    )
    p.add_argument("--gpus", default=None, help="GPU ids to use, one run each (default: every visible GPU)")
    p.add_argument("--jobs", type=int, default=None, help="runs side by side without GPUs (default min(CPUs, 4))")
    p.add_argument("--threads", type=int, default=None, help="torch threads per run (default CPUs // runs)")
    p.add_argument("--slurm", action="store_true", help="send each run to SLURM (tools.submit, submitit)")
    p.add_argument(
        "--slurm-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="passed to the submitter, e.g. partition=gpu, timeout_min=2880",
    )
    p.add_argument("--slurm-jobs", type=int, default=64, help="SLURM jobs in flight at once [%(default)s]")
    p.add_argument("--mfu", type=float, default=None, help="model FLOPs utilisation of the estimate [0.45]")
    p.add_argument("--peak-tflops", type=float, default=None, help="peak FLOP/s of the estimate's GPU [989, H100]")
    args, passed = p.parse_known_args(argv)
    args.passed = passed
    if args.passed and args.table != "repro_mini":
        p.error(f"unrecognized arguments: {' '.join(args.passed)} (only repro_mini takes its own options)")
    if not args.list and not args.table:
        p.error("name a TABLE (--list shows them)")
    for name in ("seeds", "iters", "jobs", "threads", "slurm_jobs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    args.inits = list(dict.fromkeys(i.strip() for i in args.inits.split(",") if i.strip()))  # each once
    if not args.inits:
        p.error("--inits names no init")
    try:
        args.slurm_options = dict(_key_value(o) for o in args.slurm_option)
    except ValueError as e:
        p.error(str(e))
    return args


def _key_value(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--slurm-option takes KEY=VALUE, got {text!r}")
    return key, int(value) if value.isdigit() else value


def main(argv=None) -> int:
    args = parse_args(argv)
    return cli.run(lambda: _reproduce(args), (CampaignError,), cli.RERUN_ADVICE, interrupted=cli.RERUN_HINT)


def _reproduce(args) -> int:
    shared = dict(seeds=args.seeds, jobs=args.jobs, threads=args.threads, out=args.out, data_root=args.data_root)
    if args.list:
        print("\n".join(reproduce.listing()))
        return 0
    if args.table == "repro_mini":  # its own command line, which drives the same runner
        from tools import repro_mini

        return repro_mini.main(
            reproduce.repro_mini_argv(
                args.inits, tiny=args.tiny, dry_run=args.dry_run or args.check, campaigns=args.campaigns, **shared
            )
            + args.passed
        )
    return reproduce.run(
        args.table,
        args.inits,
        tiny=args.tiny,
        iters=args.iters,
        dry_run=args.dry_run or args.check,
        check=args.check,
        campaigns=args.campaigns,
        gpus=args.gpus,
        slurm=args.slurm,
        slurm_options=args.slurm_options,
        slurm_jobs=args.slurm_jobs,
        mfu=args.mfu,
        peak_tflops=args.peak_tflops,
        **shared,
    )


if __name__ == "__main__":
    sys.exit(main())
