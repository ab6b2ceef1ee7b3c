"""`make reproduce TABLE=...` (`python -m tools.reproduce`): one table's campaign planned, checked, costed, run
and summarised, and the options it hands over to `repro_mini`'s own command line.

A run with a problem (an init that does not resolve, a dataset that is not prepared) stops the whole command
before anything starts, so a campaign never half-runs for a reason known in advance. A dry run is a plan: it
says how many runs are blocked and why and succeeds, unless `check` makes blocked runs an error (for scripts).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

from benchmark.campaign import tables
from benchmark.campaign.runner import REPO, CampaignError, Runner, check_settings, failures, local_slots, relative
from results.runs import fmt_stat, summarize
from results.store import campaign_path

TINY_OUT = REPO / "output" / "reproduce_tiny"


def listing() -> list[str]:
    """The campaigns and the tables they fill, `repro_mini` last."""
    return [f"{c.name:24s} {c.spec.title}" for c in tables.CAMPAIGNS.values()] + [
        f"{'repro_mini':24s} Mini reproduction (make repro-mini)"
    ]


def repro_mini_argv(
    inits: list[str],
    *,
    tiny: bool = False,
    dry_run: bool = False,
    campaigns: str | None = None,
    seeds: int | None = None,
    jobs: int | None = None,
    threads: int | None = None,
    out: str | None = None,
    data_root: str | None = None,
) -> list[str]:
    """`python -m tools.repro_mini`'s arguments for these options of `reproduce repro_mini`: records go to its
    campaign store (a scratch one with `tiny`, whose report goes to output/ too), its inits are `random` and the
    pre-training objectives it trains itself."""
    from benchmark.campaign.repro_mini import BASELINES, OBJECTIVES

    store = (
        Path(campaigns) / "repro_mini_2.jsonl"
        if campaigns
        else TINY_OUT / "runs" / "repro_mini_2.jsonl"
        if tiny
        else campaign_path("repro_mini_2")
    )
    argv = (["--toy", "--report-out", str(TINY_OUT / "report")] if tiny else []) + ["--store", str(store)]
    argv += ["--dry-run"] if dry_run else []
    if inits != list(tables.DEFAULT_INITS):
        objectives = [i for i in inits if i not in BASELINES]
        if not objectives or set(objectives) - set(OBJECTIVES):
            raise CampaignError(
                f"repro_mini's inits are {', '.join(BASELINES)} and its objectives {', '.join(OBJECTIVES)}; "
                f"got {', '.join(inits)}"
            )
        argv.append("--objectives=" + ",".join(objectives))
    return argv + [
        f"--{k}={v}"
        for k, v in (("seeds", seeds), ("jobs", jobs), ("threads", threads), ("out", out), ("data-root", data_root))
        if v is not None
    ]


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
        stat = f", {metric} {fmt_stat(summarize(values), metric)}" if values else ""
        lines.append(f"  {init} {pct}%: {len(values)}/{len(group)} runs{stat}")
    return lines


def run(
    table: str,
    inits: list[str],
    *,
    seeds: int | None = None,
    tiny: bool = False,
    iters: int | None = None,
    dry_run: bool = False,
    check: bool = False,
    out: str | None = None,
    campaigns: str | None = None,
    data_root: str | None = None,
    gpus: str | None = None,
    jobs: int | None = None,
    threads: int | None = None,
    slurm: bool = False,
    slurm_options: Mapping[str, object] | None = None,
    slurm_jobs: int = 64,
    mfu: float | None = None,
    peak_tflops: float | None = None,
) -> int:
    """Plans `table`'s campaign, prints every run, its problems and the cost, then runs it (unless `dry_run`):
    one run per GPU here (per CPU slot with `tiny`), or each to SLURM with `slurm_options`. Returns the exit
    status (a dry run's is 0 even with blocked runs, unless `check`); raises CampaignError for a campaign that
    cannot run as asked."""
    campaign = tables.CAMPAIGNS.get(table)
    if campaign is None:
        names = ", ".join([*tables.CAMPAIGNS, "repro_mini"])
        raise CampaignError(f"no campaign for table {table!r}; campaigns: {names}")
    t0 = time.perf_counter()
    out = Path(out or (TINY_OUT if tiny else REPO / "output" / "reproduce") / table).resolve()
    store = (
        Path(campaigns) / f"{table}.jsonl"
        if campaigns
        else TINY_OUT / "runs" / f"{table}.jsonl"
        if tiny
        else campaign_path(table)
    ).resolve()
    import datasets.builtin as builtin

    data_root = str(Path(data_root or builtin.data_root()).resolve())
    os.environ["MASK3D_DATA"] = data_root  # what this process registers, and every run reads
    builtin.register_all(data_root)
    seeds = seeds or tables.DEFAULT_SEEDS
    runs = tables.plan(campaign, inits, seeds, out, store, tiny, iters, env={"MASK3D_DATA": data_root})
    todo = [r for r in runs if not r.job.finished()]
    mode = "tiny (CPU-sized recipe, synthetic tree)" if tiny else "full recipes"
    print(
        f"reproduce {table}: '{campaign.spec.title}', {mode}: {len(inits)} init(s) x "
        f"{len(campaign.splits(tiny))} split(s) x {seeds} seed(s) = {len(runs)} runs, "
        f"{len(runs) - len(todo)} finished, {len(todo)} to run; runs in {relative(out)}, records in "
        f"{relative(store)}, data under {relative(data_root)}"
    )
    for line in _run_lines(runs, dry_run):
        print(line)
    print(_cost_line(runs, todo, tiny, iters, mfu, peak_tflops))
    bad = [r for r in runs if r.problems]
    if dry_run:
        print(_blocked_line(table, runs, bad, check))
        return 1 if bad and check else 0
    if bad:
        raise CampaignError(f"{len(bad)} of {len(runs)} runs cannot start (listed above); nothing was started")

    launcher, gpu_ids = None, []
    if slurm:
        from benchmark.campaign.slurm import SlurmLauncher

        launcher = SlurmLauncher(options=slurm_options)
        slots, threads = slurm_jobs, None
    else:
        gpu_ids = [] if tiny else visible_gpus(gpus)
        if not tiny and not gpu_ids:
            raise CampaignError(
                "the full recipes need a GPU and none is visible here: use --slurm, or --tiny for the CPU-sized check"
            )
        slots, threads = local_slots(jobs, threads, len(gpu_ids))
    runner = Runner(table, out / "logs", slots, threads, gpu_ids or None, stages=("finetune",), launcher=launcher)
    check_settings(out, {"tiny": tiny, "iters": iters, "data_root": data_root})
    outcomes = runner.run([r.job for r in runs])
    failed = [r.job.name for r in runs if not outcomes[r.job.name].ok]
    print("\n".join(cells(runs, campaign.spec.metrics[0])))
    shown = (
        "`make tables`"
        if store.parent == campaign_path(table).parent
        else f"`python -m results.report --campaigns {relative(store.parent)} --out output/report`"
    )
    print(
        f"reproduce {table}: {failures(failed)}{len(runs) - len(failed)}/{len(runs)} runs finished in "
        f"{(time.perf_counter() - t0) / 60:.1f} min; {shown} shows '{campaign.spec.title}'"
        + (" (tiny runs show under 'Synthetic data', never in the paper's tables)" if tiny else ""),
        flush=True,
    )
    return 1 if failed else 0


def _run_lines(runs: list[tables.Run], dry_run: bool) -> list[str]:
    """A line per run that cannot start, is finished or (dry run) would start, then each distinct problem once,
    numbered, with the runs pointing at it."""
    lines, notes = [], {}
    for run in runs:
        if run.problems:
            refs = "".join(f"[{notes.setdefault(p, len(notes) + 1)}]" for p in run.problems)
            lines.append(f"  {run.job.name}: CANNOT START {refs}")
        elif run.job.finished():
            lines.append(f"  {run.job.name}: finished, skipped")
        elif dry_run:
            lines.append(f"  {run.job.name}: python {' '.join(run.job.command())}")
    return lines + [f"  [{number}] {problem}" for problem, number in notes.items()]


# What stops a run, by the opening words of its problem (benchmark.campaign.tables.plan words them).
BLOCKERS = (("init ", "an init that does not resolve"), ("no config ", "no config"), ("Dataset ", "data not prepared"))


def _blocked_line(table: str, runs: list[tables.Run], bad: list[tables.Run], check: bool) -> str:
    """The dry run's last line: how many runs are blocked, and by what kind of problem (numbered above)."""
    if not bad:
        return f"reproduce {table}: planned {len(runs)} runs, none blocked"
    numbers: dict[str, int] = {}
    kinds: dict[str, tuple[set, set]] = {}
    for run in bad:
        for problem in run.problems:
            number = numbers.setdefault(problem, len(numbers) + 1)
            kind = next((text for start, text in BLOCKERS if problem.startswith(start)), "other problems")
            blocked, notes = kinds.setdefault(kind, (set(), set()))
            blocked.add(run.job.name)
            notes.add(number)
    why = ", ".join(
        f"{len(blocked)} by {kind} ({', '.join(f'[{n}]' for n in sorted(notes))})"
        for kind, (blocked, notes) in kinds.items()
    )
    then = "exit 1 (--check)" if check else "nothing runs until they are fixed (--check makes this exit 1)"
    return f"reproduce {table}: planned {len(runs)} runs, {len(bad)} blocked: {why}; {then}"


def _cost_line(
    runs: list[tables.Run],
    todo: list[tables.Run],
    tiny: bool,
    iters: int | None,
    mfu: float | None,
    peak_tflops: float | None,
) -> str:
    if tiny:
        return "cost: CPU-sized runs (seconds to minutes each); no GPU-hours to estimate"
    from benchmark.campaign.cost import DEFAULT_MFU, H100_BF16_TFLOPS, estimate

    rate = dict(mfu=mfu or DEFAULT_MFU, peak_tflops=peak_tflops or H100_BF16_TFLOPS)
    left, total = estimate(todo, iters, **rate), estimate(runs, iters, **rate)
    return (
        f"cost: {left.gpu_hours:.1f} GPU-hours for the {len(todo)} runs left ({total.gpu_hours:.1f} for all "
        f"{len(runs)}); {left.source}"
    )
