"""Running `make repro-mini` / `make repro-mini-ablation` (`python -m tools.repro_mini [--ablation]`): the
campaign of `repro_mini` through the runner, then the report, `OUT/summary.json` and a last line with the
headline numbers (fine-tuning mIoU per init, or probe mIoU per mask-ratio setting).

OUT remembers its settings (`check_settings`), so a rerun with other settings fails instead of mixing runs.
"""

from __future__ import annotations

import time
from pathlib import Path

from benchmark.campaign import repro_mini as campaign
from benchmark.campaign.jobs import CommandJob, FinetuneJob, ProbeJob
from benchmark.campaign.runner import REPO, Runner, check_settings, failures, local_slots, relative
from core.io import write_json
from results.runs import summarize as stat_of

STAGES = ("data", "pretrain", "probe", "finetune", "report")


def run(
    *,
    toy: bool = False,
    out: str | None = None,
    seeds: int | None = None,
    jobs: int | None = None,
    threads: int | None = None,
    data_root: str | None = None,
    store: str | None = None,
    report_out: str | None = None,
    objectives: tuple[str, ...] = campaign.DEFAULT_OBJECTIVES,
    fractions: tuple[int, ...] = (100, 20),
    pretrain_iters: int | None = None,
    finetune_iters: int | None = None,
    set_pretrain: tuple[str, ...] = (),
    set_finetune: tuple[str, ...] = (),
    report: bool = True,
    dry_run: bool = False,
    ablation: bool = False,
) -> int:
    """Runs (or with `dry_run` lists) the campaign; returns the exit status. Raises CampaignError for OUT made
    with other settings; Ctrl-C stops the runs and propagates."""
    t0 = time.perf_counter()
    preset = campaign.TOY if toy else campaign.FULL
    name = "repro_mini_ablation" if ablation else "repro_mini_2"
    out = (REPO / (out or f"output/{name}{'_toy' if toy else ''}")).resolve()
    if data_root is None and not toy:
        from datasets.builtin import data_root as default_root

        data_root = default_root()
    data_root = (REPO / (data_root or out / "data")).resolve()
    from results.store import campaign_path

    # a toy run's records and report stay beside its runs; a full run's are the committed ones
    store = Path(store or (out / "records.jsonl" if toy else campaign_path(name))).resolve()
    report_out = Path(report_out or (out / "report" if toy else REPO / "results"))
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
        ablation,
    )
    slots, threads = local_slots(jobs, threads)
    planned = campaign.jobs(options, out, store)
    finetunes = [job for job in planned if isinstance(job, FinetuneJob)]
    probes = [job for job in planned if isinstance(job, ProbeJob)]
    n_pre = sum(job.stage == "pretrain" for job in planned)
    runner = Runner(options.tag, out / "logs", slots, threads, stages=STAGES)
    runner.say(
        f"{preset['name']} preset: {n_pre} pre-trainings of up to {options.iters[0]} iterations, {len(probes)} probes, "
        f"{len(finetunes)} fine-tunes of {options.iters[1]} iterations (a recipe grid of {preset['grid_iters']}, "
        f"{options.seeds} seeds per init and % of labels), {slots} at a time x {threads} thread(s); "
        f"runs in {relative(out)}, records in {relative(store)}, data under {relative(data_root)}"
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
            section = "Mini ablation: mask ratios" if ablation else "Mini reproduction, redesigned"
            print("\n".join("    " + line for line in report_section(report_md, section)))
        else:
            failed.append(job.name)

    cells = summarize(finetunes, probes)
    wall = time.perf_counter() - t0
    write_json(
        out / "summary.json",
        {"wall_s": wall, "cells": cells, "failed": failed, "settings": options.settings(), "seeds": options.seeds},
    )
    report_text = relative(report_md) if report else "not regenerated"
    print(
        f"{options.tag}: {failures(failed)}{n_pre} pre-trainings, {len(probes)} probes, {len(finetunes)} fine-tunes "
        f"in {wall / 60:.1f} min; {headline(cells)}; report {report_text}",
        flush=True,
    )
    return 1 if failed else 0


def summarize(finetunes: list[FinetuneJob], probes: list[ProbeJob]) -> dict:
    """Values, mean and sample std per cell of the finished runs: val mIoU of the main fine-tunes per
    (init, % of scenes), and semantic-probe mIoU per probed encoder setting."""
    cells: dict[str, dict] = {}

    def add(key: str, value) -> None:
        if value is not None:
            cells.setdefault(key, {"mIoU": []})["mIoU"].append(value)

    for job in finetunes:
        if job.finished() and job.labels.get("stage") == "main":
            record = job.record()
            add(f"fine-tune {record['init']} {round(record['data_fraction'])}%", record["metrics"].get("sem_seg/mIoU"))
    for job in probes:
        if job.finished():
            for record in job.records():
                if record["task"] == "semseg":
                    what = record.get("objective") or "random"
                    if record.get("rgb_mask_ratio") is not None:
                        what += f" rgb{record['rgb_mask_ratio']:g} depth{record['depth_mask_ratio']:g}"
                    add(f"probe {what}", record["metrics"].get("sem_seg/mIoU"))
    for cell in cells.values():
        stat = stat_of(cell["mIoU"])
        cell["mean"], cell["std"] = stat.mean, stat.std
    return cells


def headline(cells: dict) -> str:
    """`fine-tune random 100% 9.12±0.40, ...; probe mask3d ... 10.1±0.3`: mean (± std) mIoU per cell."""
    if not cells:
        return "no finished run"

    def fmt(c):
        return f"{c['mean']:.2f}" + (f"±{c['std']:.2f}" if c["std"] is not None else "")

    return "mIoU " + ", ".join(f"{key} {fmt(c)}" for key, c in cells.items())


def report_section(report: Path, title: str) -> list[str]:
    """The table rows of REPORT.md's section `title`, for the console."""
    if not report.is_file():
        return []
    rows, inside = [], False
    for line in report.read_text().splitlines():
        if line.startswith("## "):
            inside = line.strip() == f"## {title}"
        elif inside and line.startswith("|"):
            rows.append(line)
    return rows
