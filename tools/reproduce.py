"""`make reproduce TABLE=...`: fill one table of the paper with one command.

    python -m tools.reproduce TABLE [--inits mask3d:PATH,imagenet_mae_vitb,random] [--seeds 3] [--dry-run]
                              [--tiny] [--slurm [--slurm-option KEY=VALUE ...]] [--gpus 0,1] [--jobs N]

TABLE is a campaign of benchmark/campaign/tables.py (`--list`), or `repro_mini` (`make repro-mini`'s
campaign, same runner; options of `python -m tools.repro_mini` pass through). Each (init, split, seed) is one
fine-tune in OUT/<init>/<pct>pct/seed<k>; its record goes to the campaign's store, results/runs/<TABLE>.jsonl,
which `make tables` reads into the report.

`--dry-run` lists every run (finished ones are skipped), what stops any of them from starting (an init that
does not resolve, a dataset that is not prepared), and the GPU-hours of the runs left, with where that figure
comes from. A run with a problem stops the whole command before anything starts. Runs go one per GPU here
(one per CPU slot with `--tiny`), or each to SLURM with `--slurm`. Running the same command again skips
finished runs and resumes interrupted ones. `--tiny` runs the campaign with the CPU-sized recipe on the
synthetic tree, a check of the whole path in minutes; its records go to a scratch store and never into the
paper's tables.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from benchmark.campaign import tables
from benchmark.campaign.runner import REPO, CampaignError, Runner, check_settings, relative
from results.store import campaign_path

TINY_OUT = REPO / "output" / "reproduce_tiny"


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m tools.reproduce", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Campaigns: benchmark/campaign/tables.py; cost: benchmark/campaign/cost.py")
    p.add_argument("table", nargs="?", help="the campaign to run (--list names them)")
    p.add_argument("--list", action="store_true", help="print the campaigns and the tables they fill, then exit")
    p.add_argument("--inits", default=",".join(tables.DEFAULT_INITS),
                   help="comma-separated init specs (random, KIND:PATH or a results/baselines.yaml name) "
                        "[%(default)s]")
    p.add_argument("--seeds", type=int, default=None, help=f"seeds per (init, split) [{tables.DEFAULT_SEEDS}]")
    p.add_argument("--tiny", "--toy", action="store_true", help="CPU-sized recipe on the synthetic tree (minutes)")
    p.add_argument("--iters", type=int, default=None, help="training iterations of every run (default: the config's)")
    p.add_argument("--dry-run", action="store_true", help="list the runs, their problems and their cost, then exit")
    p.add_argument("--out", default=None, help="run folders (default output/reproduce/TABLE, --tiny: "
                                               "output/reproduce_tiny/TABLE)")
    p.add_argument("--campaigns", default=None, help="folder of the campaign store TABLE.jsonl (default results/runs, "
                                                     "--tiny: output/reproduce_tiny/runs)")
    p.add_argument("--data-root", default=None, help="data root (default $MASK3D_DATA, else $DETECTRON2_DATASETS, "
                                                     "else ./data)")
    p.add_argument("--gpus", default=None, help="GPU ids to use, one run each (default: every visible GPU)")
    p.add_argument("--jobs", type=int, default=None, help="runs side by side without GPUs (default min(CPUs, 4))")
    p.add_argument("--threads", type=int, default=None, help="torch threads per run (default CPUs // runs)")
    p.add_argument("--slurm", action="store_true", help="send each run to SLURM (tools.submit, submitit)")
    p.add_argument("--slurm-option", action="append", default=[], metavar="KEY=VALUE",
                   help="passed to the submitter, e.g. partition=gpu, timeout_min=2880")
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


def _repro_mini(args) -> int:
    """`repro_mini` is run by its own command line, which drives the same runner; its records go to its
    campaign store (a scratch one with --tiny, whose report goes to output/ too), its inits are `random` and
    the pre-training objectives it trains itself."""
    from benchmark.campaign.repro_mini import OBJECTIVES
    from tools import repro_mini

    store = (Path(args.campaigns) / "repro_mini.jsonl" if args.campaigns
             else TINY_OUT / "runs" / "repro_mini.jsonl" if args.tiny else campaign_path("repro_mini"))
    argv = (["--toy", "--report-out", str(TINY_OUT / "report")] if args.tiny else []) + ["--store", str(store)]
    argv += ["--dry-run"] if args.dry_run else []
    if args.inits != list(tables.DEFAULT_INITS):
        objectives = [i for i in args.inits if i != "random"]
        if not objectives or set(objectives) - set(OBJECTIVES):
            print(f"error: repro_mini's inits are random and its objectives {', '.join(OBJECTIVES)}; got "
                  f"{', '.join(args.inits)}", file=sys.stderr)
            return 1
        argv.append("--objectives=" + ",".join(objectives))
    argv += [f"--{k}={v}" for k, v in (("seeds", args.seeds), ("jobs", args.jobs), ("threads", args.threads),
                                       ("out", args.out), ("data-root", args.data_root)) if v is not None]
    return repro_mini.main(argv + args.passed)


def visible_gpus(requested: str | None) -> list[str]:
    if requested:
        return [g.strip() for g in requested.split(",") if g.strip()]
    from benchmark.speed import cuda_present

    if not cuda_present():
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        return [g for g in visible.split(",") if g]
    import subprocess

    listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout
    return [str(i) for i, line in enumerate(listing.splitlines()) if line.startswith("GPU")]


def cells(runs: list[tables.Run], metric: str) -> list[str]:
    """One line per (init, split): finished runs of planned ones, and mean (± std) of the table's metric."""
    lines, groups = [], {}
    for run in runs:
        groups.setdefault((run.init, run.fraction), []).append(run)
    for (init, pct), group in groups.items():
        values = [r.job.record()["metrics"].get(metric) for r in group if r.job.finished()]
        values = [v for v in values if v is not None]
        stat = ("" if not values else f", {metric} {statistics.fmean(values):.2f}"
                + (f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else ""))
        lines.append(f"  {init} {pct}%: {len(values)}/{len(group)} runs{stat}")
    return lines


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.list:
        for c in tables.CAMPAIGNS.values():
            print(f"{c.name:24s} {c.spec.title}")
        print(f"{'repro_mini':24s} Mini reproduction (make repro-mini)")
        return 0
    if args.table == "repro_mini":
        return _repro_mini(args)
    campaign = tables.CAMPAIGNS.get(args.table)
    if campaign is None:
        print(f"error: no campaign for table {args.table!r}; campaigns: {', '.join([*tables.CAMPAIGNS, 'repro_mini'])}",
              file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    out = Path(args.out or (TINY_OUT if args.tiny else REPO / "output" / "reproduce") / args.table).resolve()
    store = (Path(args.campaigns) / f"{args.table}.jsonl" if args.campaigns
             else TINY_OUT / "runs" / f"{args.table}.jsonl" if args.tiny else campaign_path(args.table)).resolve()
    import datasets.builtin as builtin

    data_root = str(Path(args.data_root or builtin.data_root()).resolve())
    os.environ["MASK3D_DATA"] = data_root  # what this process registers, and every run reads
    builtin.register_all(data_root)
    seeds = args.seeds or tables.DEFAULT_SEEDS
    runs = tables.plan(campaign, args.inits, seeds, out, store, args.tiny, args.iters, env={"MASK3D_DATA": data_root})
    todo = [r for r in runs if not r.job.finished()]
    bad = [r for r in runs if r.problems]
    mode = "tiny (CPU-sized recipe, synthetic tree)" if args.tiny else "full recipes"
    print(f"reproduce {args.table}: '{campaign.spec.title}', {mode}: {len(args.inits)} init(s) x "
          f"{len(campaign.splits(args.tiny))} split(s) x {seeds} seed(s) = {len(runs)} runs, "
          f"{len(runs) - len(todo)} finished, {len(todo)} to run; runs in {relative(out)}, records in "
          f"{relative(store)}, data under {relative(data_root)}")
    notes: dict[str, int] = {}  # each distinct problem once, runs point at it
    for run in runs:
        if run.problems:
            refs = "".join(f"[{notes.setdefault(p, len(notes) + 1)}]" for p in run.problems)
            print(f"  {run.job.name}: CANNOT START {refs}")
        elif run.job.finished():
            print(f"  {run.job.name}: finished, skipped")
        elif args.dry_run:
            print(f"  {run.job.name}: python {' '.join(run.job.command())}")
    for problem, number in notes.items():
        print(f"  [{number}] {problem}")
    if args.tiny:
        print("cost: CPU-sized runs (seconds to minutes each); no GPU-hours to estimate")
    else:
        from benchmark.campaign.cost import DEFAULT_MFU, H100_BF16_TFLOPS, estimate

        rate = dict(mfu=args.mfu or DEFAULT_MFU, peak_tflops=args.peak_tflops or H100_BF16_TFLOPS)
        left, total = estimate(todo, args.iters, **rate), estimate(runs, args.iters, **rate)
        print(f"cost: {left.gpu_hours:.1f} GPU-hours for the {len(todo)} runs left ({total.gpu_hours:.1f} for all "
              f"{len(runs)}); {left.source}")
    if bad:
        print(f"error: {len(bad)} of {len(runs)} runs cannot start (listed above); nothing was started",
              file=sys.stderr)
        return 1
    if args.dry_run:
        return 0

    launcher, gpus = None, []
    if args.slurm:
        from benchmark.campaign.slurm import SlurmLauncher

        launcher = SlurmLauncher(options=args.slurm_options)
        slots, threads = args.slurm_jobs, None
    else:
        gpus = [] if args.tiny else visible_gpus(args.gpus)
        if not args.tiny and not gpus:
            print("error: the full recipes need a GPU and none is visible here: use --slurm, or --tiny for the "
                  "CPU-sized check", file=sys.stderr)
            return 1
        cpus = os.cpu_count() or 1
        slots = len(gpus) or args.jobs or max(1, min(cpus, 4))
        threads = args.threads or max(1, cpus // slots)
    runner = Runner(args.table, out / "logs", slots, threads, gpus or None, stages=("finetune",), launcher=launcher)
    try:
        check_settings(out, {"tiny": args.tiny, "iters": args.iters, "data_root": data_root})
        outcomes = runner.run([r.job for r in runs])
    except CampaignError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    failed = [r.job.name for r in runs if not outcomes[r.job.name].ok]
    print("\n".join(cells(runs, campaign.spec.metrics[0])))
    shown = ("`make tables`" if store.parent == campaign_path(args.table).parent
             else f"`python -m results.report --campaigns {relative(store.parent)} --out output/report`")
    status = f"{len(failed)} run(s) FAILED ({', '.join(failed)}); " if failed else ""
    print(f"reproduce {args.table}: {status}{len(runs) - len(failed)}/{len(runs)} runs finished in "
          f"{(time.perf_counter() - t0) / 60:.1f} min; {shown} shows '{campaign.spec.title}'"
          + (" (tiny runs show under 'Synthetic data', never in the paper's tables)" if args.tiny else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
