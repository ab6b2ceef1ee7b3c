"""`make repro-mini`: the paper's claim in miniature on a CPU, end to end, in 1 h 34 min on 2 cores from an
empty store (measured, one restart included);
`make repro-mini-ablation` (`--ablation`): mask3d's RGB and depth mask ratios, probed, in about 30 minutes.

    python -m tools.repro_mini [--ablation] [--toy] [--out output/repro_mini_2] [--seeds 3] [--dry-run] ...

1. data: generates (or reuses) three synthetic trees: the labelled scenes of `make data-synthetic` (seed 0), an
   unlabelled pre-training pool (seed 1) and the positive control's labelled scenes (seed 2);
2. pretrain: the same small ViT with the same budget for each objective (`mask3d`, `mae`; `multimae`, `pri3d`
   with --objectives) on the pool at three lengths, `none` (the matched scratch baseline) and `supervised` (the
   positive control, on the control scenes) (`python -m pretrain`);
3. probe: linear semantic and depth probes of every export and of the random encoder (`benchmark.probe`);
4. finetune: semantic segmentation (`benchmark.train_net --tiny`): a learning-rate x layer-decay grid per init
   on held-out training scenes (2 seeds a cell), then random, none, supervised and each objective with its
   best recipe on 3 seeds at 100 % and 20 % of the labelled scenes, evaluated on val (seed 0 also along the run);
5. report: every record goes to the campaign's store (default results/runs/repro_mini_2.jsonl, or
   repro_mini_ablation.jsonl; a scratch one with --toy), then `python -m results.report` regenerates
   results/REPORT.md.

The campaign (its runs, settings and their reasons) is benchmark/campaign/repro_mini.py, run by the campaign
runner (benchmark/campaign/runner.py): up to `--jobs` runs side by side, each in its own process and run
folder with its console output in OUT/logs/; a fine-tune starts as soon as its export exists. Re-running
skips finished runs and resumes interrupted ones; OUT remembers its settings so that other settings cannot
mix into it (choose another --out). `--toy` checks the pipeline in about a minute; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import sys

from benchmark.campaign import repro_mini as campaign
from benchmark.campaign.repro_mini_run import run
from benchmark.campaign.runner import CampaignError
from core import cli


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m tools.repro_mini",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Campaign and settings: benchmark/campaign/repro_mini.py",
    )
    p.add_argument("--ablation", action="store_true", help="the mask-ratio ablation (pre-training + probes only)")
    p.add_argument("--toy", action="store_true", help="the pipeline at a toy size (a minute; its numbers mean nothing)")
    p.add_argument("--out", default=None, help="run folders (default output/repro_mini, --toy: output/repro_mini_toy)")
    p.add_argument("--seeds", type=int, default=None, help="fine-tuning seeds per (init, split) (default: 3, --toy: 1)")
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="runs side by side (default: min(CPUs, 4)), one thread each unless CPUs > jobs",
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads per run (default: CPUs // jobs)")
    p.add_argument(
        "--data-root",
        default=None,
        help="data root (default: $MASK3D_DATA, else $DETECTRON2_DATASETS, else ./data; --toy: OUT/data)",
    )
    p.add_argument(
        "--store",
        default=None,
        help="records (default results/runs/repro_mini.jsonl or repro_mini_ablation.jsonl; --toy: OUT/records.jsonl)",
    )
    p.add_argument("--report-out", default=None, help="folder of REPORT.md (default results/, --toy: OUT/report)")
    p.add_argument(
        "--objectives",
        default=",".join(campaign.DEFAULT_OBJECTIVES),
        help=f"pre-training objectives, some of {','.join(campaign.OBJECTIVES)} (default: %(default)s)",
    )
    p.add_argument(
        "--fractions", default="100,20", help="%% of training scenes to fine-tune on: 100 and/or 20 [100,20]"
    )
    p.add_argument("--pretrain-iters", type=int, default=None, help="pre-training iterations (default: the preset's)")
    p.add_argument("--finetune-iters", type=int, default=None, help="fine-tuning iterations (default: the preset's)")
    p.add_argument(
        "--set-pretrain",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra pre-training override for every objective (experiments), e.g. model.depth_norm=metric",
    )
    p.add_argument(
        "--set-finetune",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra fine-tuning override for every run (experiments)",
    )
    p.add_argument("--no-report", action="store_true", help="skip regenerating REPORT.md")
    p.add_argument("--dry-run", action="store_true", help="list the runs (finished ones are skipped) and exit")
    args = p.parse_args(argv)
    args.objectives = [o for o in args.objectives.split(",") if o]
    bad = [o for o in args.objectives if o not in campaign.OBJECTIVES]
    if bad:
        p.error(f"unknown objectives {bad}; choose from {list(campaign.OBJECTIVES)}")
    try:
        args.fractions = [int(f) for f in args.fractions.split(",") if f]
    except ValueError:
        p.error("--fractions takes comma-separated integers, e.g. 100,20")
    if not args.fractions or any(f not in campaign.TRAIN_SETS for f in args.fractions):
        p.error(f"--fractions must be some of {sorted(campaign.TRAIN_SETS, reverse=True)}")
    for name in ("seeds", "jobs", "threads", "pretrain_iters", "finetune_iters"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    return cli.run(
        lambda: run(
            toy=args.toy,
            out=args.out,
            seeds=args.seeds,
            jobs=args.jobs,
            threads=args.threads,
            data_root=args.data_root,
            store=args.store,
            report_out=args.report_out,
            objectives=tuple(args.objectives),
            fractions=tuple(args.fractions),
            pretrain_iters=args.pretrain_iters,
            finetune_iters=args.finetune_iters,
            set_pretrain=tuple(args.set_pretrain),
            set_finetune=tuple(args.set_finetune),
            report=not args.no_report,
            dry_run=args.dry_run,
            ablation=args.ablation,
        ),
        (CampaignError,),
        cli.RERUN_ADVICE,
        interrupted=cli.RERUN_HINT,
    )


if __name__ == "__main__":
    sys.exit(main())
