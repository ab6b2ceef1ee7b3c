"""Running `make repro-mini` (`python -m tools.repro_mini`): the campaign of `repro_mini` through the runner,
then the report, `OUT/summary.json` and a last line with mean (± std) mIoU per split and init.

OUT remembers its settings (`check_settings`), so a rerun with other settings fails instead of mixing runs.
"""

from __future__ import annotations

import time
from pathlib import Path

from benchmark.campaign import repro_mini as campaign
from benchmark.campaign.jobs import CommandJob, FinetuneJob
from benchmark.campaign.runner import REPO, Runner, check_settings, failures, local_slots, relative
from core.io import write_json
from results.runs import summarize as stat_of

STAGES = ("data", "pretrain", "finetune", "report")


def run(
    *,
    toy: bool = False,
    out: str | None = None,
    seeds: int | None = None,
    jobs: int | None = None,
    threads: int | None = None,
    data_root: str | None = None,
    store: str | None = None,
    report_out: str = str(REPO / "results"),
    objectives: tuple[str, ...] = campaign.OBJECTIVES,
    fractions: tuple[int, ...] = tuple(campaign.TRAIN_SETS),
    pretrain_iters: int | None = None,
    finetune_iters: int | None = None,
    set_pretrain: tuple[str, ...] = (),
    set_finetune: tuple[str, ...] = (),
    report: bool = True,
    dry_run: bool = False,
) -> int:
    """Runs (or with `dry_run` lists) the campaign; returns the exit status. Raises CampaignError for OUT made
    with other settings; Ctrl-C stops the runs and propagates."""
    t0 = time.perf_counter()
    preset = campaign.TOY if toy else campaign.FULL
    out = (REPO / (out or ("output/repro_mini_toy" if toy else "output/repro_mini"))).resolve()
    if data_root is None and not toy:
        from datasets.builtin import data_root as default_root

        data_root = default_root()
    data_root = (REPO / (data_root or out / "data")).resolve()
    from results.store import store_path

    store = store_path(store).resolve()
    options = campaign.Options(
        preset,
        data_root,
        seeds or preset["seeds"],
        tuple(objectives),
        tuple(fractions),
        pretrain_iters,
        finetune_iters,
        tuple(set_pretrain),
        tuple(set_finetune),
    )
    slots, threads = local_slots(jobs, threads)
    planned = campaign.jobs(options, out, store)
    finetunes = [job for job in planned if isinstance(job, FinetuneJob)]
    n_pre = len(options.objectives)
    runner = Runner("repro-mini", out / "logs", slots, threads, stages=STAGES)
    runner.say(
        f"{preset['name']} preset: {n_pre} pre-trainings x {options.iters[0]} iterations, {len(finetunes)} "
        f"fine-tunes x {options.iters[1]} iterations ({options.seeds} seeds), {slots} at a time x {threads} "
        f"thread(s); runs in {relative(out)}, records in {relative(store)}, data under {relative(data_root)}"
    )
    if dry_run:
        print("\n".join("  " + line for line in runner.plan_lines(planned)))
        return 0
    check_settings(out, options.settings())
    outcomes = runner.run(planned)
    failed = [job.name for job in planned if not outcomes[job.name].ok]

    report_md = Path(report_out) / "REPORT.md"
    if report:
        job = CommandJob(
            name="report",
            stage="report",
            module="results.report",
            env={"MASK3D_RESULTS": str(store)},
            args=("--store", str(store), "--out", str(report_out)),
        )
        if runner.run([job])["report"].ok:
            print("\n".join("    " + line for line in report_section(report_md)))
        else:
            failed.append(job.name)

    cells = summarize(finetunes)
    wall = time.perf_counter() - t0
    write_json(
        out / "summary.json",
        {"wall_s": wall, "cells": cells, "failed": failed, "settings": options.settings(), "seeds": options.seeds},
    )
    report_text = relative(report_md) if report else "not regenerated"
    print(
        f"repro-mini: {failures(failed)}{n_pre} pre-trainings, {len(finetunes)} fine-tunes in {wall / 60:.1f} min; "
        f"mIoU {headline(cells, options)}; report {report_text}",
        flush=True,
    )
    return 1 if failed else 0


def summarize(finetunes: list[FinetuneJob]) -> dict:
    """mIoU per (init, % of scenes) of the finished fine-tunes: values, mean and sample std."""
    cells: dict[str, dict] = {}
    for job in finetunes:
        if not job.finished():
            continue
        record = job.record()
        value = record["metrics"].get("sem_seg/mIoU")
        if value is not None:
            fraction = round(record["data_fraction"])
            cell = cells.setdefault(
                f"{record['init']} {fraction}%", {"init": record["init"], "data_fraction": fraction, "mIoU": []}
            )
            cell["mIoU"].append(value)
    for cell in cells.values():
        stat = stat_of(cell["mIoU"])
        cell["mean"], cell["std"] = stat.mean, stat.std
    return cells


def headline(cells: dict, options: campaign.Options) -> str:
    """`100%: random 9.12±0.40, mask3d ...; 20%: ...`: mean (± std) mIoU per split and init."""

    def cell(init, fraction):
        c = cells.get(f"{init} {fraction}%")
        return "n/a" if not c else f"{c['mean']:.2f}" + (f"±{c['std']:.2f}" if c["std"] is not None else "")

    inits = ("random", *options.objectives)
    return "; ".join(
        f"{fraction}%: " + ", ".join(f"{init} {cell(init, fraction)}" for init in inits)
        for fraction in options.fractions
    )


def report_section(report: Path) -> list[str]:
    """The table rows of REPORT.md's "Mini reproduction" section, for the console."""
    if not report.is_file():
        return []
    rows, inside = [], False
    for line in report.read_text().splitlines():
        if line.startswith("## "):
            inside = line.strip() == "## Mini reproduction"
        elif inside and line.startswith("|"):
            rows.append(line)
    return rows
