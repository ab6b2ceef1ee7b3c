"""`python -m results.report` (`make tables`): regenerate REPORT.md and its PNGs from paper.csv and our runs.

Everything is derived: the paper's numbers from `results/paper.csv`, ours from the committed campaign
records (`results/runs/*.jsonl`), baselines from `results/baselines.yaml`, so a fresh clone rebuilds the
committed report byte for byte. The scratch store of ordinary runs joins only when asked (`--scratch`,
`--store`). A malformed record, row or entry stops the report with its file and line instead of quietly
thinning a table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.io import write_bytes, write_text
from results import mini, plots
from results.baselines import BaselineError, check_references, load_baselines
from results.paper import PaperError, load_paper
from results.runs import ABLATION_TAG, CAMPAIGN_TAGS, REPRO2_TAG, REPRO_TAG, load_runs
from results.store import CAMPAIGNS_DIR, REPO_ROOT, RecordError, campaign_files, store_path
from results.tables import (
    DATA_EFFICIENT,
    PAPER_TABLES,
    UNVERIFIED,
    Table,
    data_efficient_table,
    headline_lines,
    paper_table,
    runs_table,
)

RESULTS_DIR = Path(__file__).resolve().parent
NEXT_STEPS = "`make pretrain && make bench-scannet && make tables ARGS=--scratch` (report in `output/report/`)"
SCRATCH_REPORT_DIR = REPO_ROOT / "output" / "report"  # a report with uncommitted runs never replaces results/
PLOTS = ("data_efficient.png", "pretrain_loss.png", "repro_mini_curves.png")


class StoreError(ValueError):
    """A store the user named does not exist."""


def display(path: Path) -> str:
    """A path as the report prints it: relative to the repository when inside it, so no machine's layout
    ends up in a committed report."""
    try:
        return Path(path).resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


def render_table(table: Table, level: str = "###") -> list[str]:
    def row(cells):
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    lines = [f"{level} {table.title}", "", row(table.header), row(["---"] * len(table.header))]
    lines += [row(r) for r in table.rows]
    if table.footnotes:
        lines += [""] + [f"{n}  " for n in table.footnotes]
    return lines + [""]


def pretrain_table(runs: list[dict]) -> Table:
    final = "Final loss (mean, last 10 %)"  # the window `make pretrain` prints; the plot's thick curve
    table = Table("Pre-training runs", ["Objective", "Backbone", "Dataset", "Seed", "Iterations", final, "Tag", "Date"])
    for r in runs:
        loss = r["metrics"].get("loss", r["loss_history"][-1][1] if r.get("loss_history") else None)
        table.rows.append(
            [
                r.get("objective") or r["init"],
                r["backbone"],
                r["dataset"],
                str(r["seed"]),
                str(r.get("iterations", "")),
                "" if loss is None else f"{loss:.4f}",
                r["tag"],
                r["date"],
            ]
        )
    return table


def repro_section(records: list[dict], plot) -> list[str]:
    """The `make repro-mini` campaign: cost, recipe grid, fine-tuning, probes, paired differences, curves."""
    md = [
        "## Mini reproduction",
        "",
        f"Runs tagged `{REPRO_TAG}` (`make repro-mini`): one small ViT pre-trained with each objective on the "
        "same synthetic scenes and budget; per init a fine-tuning recipe chosen on held-out training scenes, "
        "then fine-tuning on val over several seeds, and linear probes of the frozen encoders per "
        "pre-training seed. mIoU in points (0-100), δ<1.25 in % of pixels; ± is the sample std.",
        "",
    ]
    if not records:
        return md + [
            f"No `{REPRO_TAG}` record yet: `make repro-mini` runs the campaign; its records are committed "
            "under `results/runs/`.",
            "",
        ]
    for table in mini.repro_tables(records):
        md += render_table(table)
    if series := mini.curves(records):
        plot("repro_mini_curves.png", plots.repro_curves(series))
        md += ["![val mIoU during fine-tuning, per init](repro_mini_curves.png)", ""]
    return md


def repro2_section(records: list[dict]) -> list[str]:
    """The redesigned miniature (`repro-mini-2`), when its records exist."""
    if not records:
        return []
    md = [
        "## Mini reproduction, redesigned",
        "",
        f"Runs tagged `{REPRO2_TAG}` (`make repro-mini`): self-supervised objectives pre-trained on a pool of "
        "unlabelled scenes over 4x the labelled ones, `none` (the pre-training model's own initialisation, "
        "exported the same way: the matched scratch baseline) beside `random` (Detectron2's ViT init; the two "
        "differ only in how the weights start: scale, and fixed sin-cos against learned positions), and "
        "`supervised`, the positive control pre-trained with labels on separate scenes. Fine-tuned at 100 % and "
        "20 % of the labelled scenes; mIoU in points (0-100); ± is the sample std.",
        "",
    ]
    md += [f"- {line}" for line in mini.control_findings(records)] + [""]
    for table in mini.repro2_tables(records):
        md += render_table(table)
    return md


def ablation_section(records: list[dict]) -> list[str]:
    """The mask-ratio ablation of mask3d (`repro-mini-ablation`), when its records exist."""
    if not records:
        return []
    md = [
        "## Mini ablation: mask ratios",
        "",
        f"Runs tagged `{ABLATION_TAG}`: mask3d pre-trained with other RGB and depth mask ratios, each encoder "
        "scored by the same frozen linear probes as above.",
        "",
    ]
    return md + render_table(mini.ablation_table(records))


def build(sources: list[Path], out: Path, paper_path=None, baselines_path=None) -> str:
    """Write REPORT.md and its plots under `out` from the run stores `sources`; return the markdown."""
    paper = load_paper(paper_path)
    baselines = load_baselines(baselines_path)
    check_references(baselines, {r.method for r in paper})
    runs = load_runs(sources)
    placed: set[int] = set()
    plotted: set[str] = set()
    finetune = [r for r in runs if r["kind"] == "finetune"]

    def plot(name: str, png: bytes) -> None:
        write_bytes(out / name, png)
        plotted.add(name)

    if sources:
        origin = f"{len(runs)} run record(s) in " + ", ".join(f"`{display(p)}`" for p in sources)
    else:
        origin = f"no run records (no campaign records are committed under `{display(CAMPAIGNS_DIR)}/` yet)"
    md = [
        "# mask3d-bench report",
        "",
        f"Regenerated by `make tables` (`python -m results.report`) from {origin}, the reference numbers in "
        "`results/paper.csv` and the baselines in `results/baselines.yaml`. "
        "Ours: mean ± sample std over runs (seeds and repeats); Δ: our mean minus the paper's value, same "
        "backbone only; runs of the CPU-sized `tiny` recipe and on synthetic scenes never enter the paper's "
        f"tables. mIoU, pixel accuracies and AP are percentages (0-100, as Detectron2 reports them); depth "
        "errors (RMSE, SqRel) are metres, δ thresholds fractions of pixels. "
        f"{UNVERIFIED}: the number was not verified against its primary source. Empty cells are "
        "unknown, never guessed; `Runs` 0 marks a baseline with no run yet. Ordinary runs append to a scratch "
        "store that joins only when asked: `make tables ARGS=--scratch` writes that report to `output/report/`.",
        "",
        "## The paper's tables",
        "",
    ]
    for spec in PAPER_TABLES:
        md += render_table(paper_table(spec, paper, runs, baselines, placed))

    md += ["## Headline claims", ""] + headline_lines(paper, runs, baselines) + [""]

    table, series = data_efficient_table(DATA_EFFICIENT, paper, runs, baselines, placed)
    md += render_table(table, "##")
    if series:
        plot("data_efficient.png", plots.data_efficient(series))
        md += ["![mIoU against % of ScanNet training scenes](data_efficient.png)", ""]
        if all(s.reference for s in series):
            md += [f"The plot holds the paper's curve only: {plots.NO_RUN_YET.replace('make ', '`make ')}`.", ""]

    md += ["## Pre-training", ""]
    pretrain = [r for r in runs if r["kind"] == "pretrain" and r["tag"] not in CAMPAIGN_TAGS]
    if pretrain:
        md += render_table(pretrain_table(pretrain))
        curves = [r for r in pretrain if r.get("loss_history")]
        if curves:
            plot("pretrain_loss.png", plots.loss_curves(curves))
            md += ["![pre-training loss curves](pretrain_loss.png)", ""]
    else:
        md += [f"No pre-training run yet: {NEXT_STEPS}.", ""]

    probes = [dict(r, objective=mini.name(r)) for r in runs if r["kind"] == "probe" and r["tag"] not in CAMPAIGN_TAGS]
    if probes:
        md += [
            "## Frozen-encoder linear probes",
            "",
            "`python -m benchmark.probe`: a linear head on frozen tokens, trained with one fixed recipe, so the "
            "numbers compare encoders without a fine-tuning recipe in between; `objective` is the export's "
            "pre-training objective, else the init.",
            "",
        ]
        md += render_table(
            runs_table("linear probes", probes, ("dataset", "split", "task", "objective", "init", "backbone", "tag"))
        )

    md += [
        "## Synthetic data (CPU smoke benchmark)",
        "",
        "Procedural scenes in ScanNet's layout: a check that the pipeline runs end to end, not a "
        "measurement comparable with the paper.",
        "",
    ]
    synthetic = [r for r in finetune if r["dataset"] == "synthetic" and r["tag"] not in CAMPAIGN_TAGS]
    placed.update(id(r) for r in synthetic)
    for task in dict.fromkeys(r["task"] for r in synthetic):
        rows = [r for r in synthetic if r["task"] == task]
        md += render_table(runs_table(f"synthetic {task}", rows, ("split", "init", "backbone", "data_fraction")))
    if not synthetic:
        md += [f"No synthetic run yet: {NEXT_STEPS}.", ""]

    placed.update(id(r) for r in finetune if r["tag"] in CAMPAIGN_TAGS)
    md += repro2_section([r for r in runs if r["tag"] == REPRO2_TAG])
    md += repro_section([r for r in runs if r["tag"] == REPRO_TAG], plot)
    md += ablation_section([r for r in runs if r["tag"] == ABLATION_TAG])

    others = [r for r in finetune if id(r) not in placed]
    if others:
        md += ["## Other runs", "", "Fine-tuning runs outside the tables above (`tiny`: the CPU-sized recipe).", ""]
        md += render_table(
            runs_table(
                "other fine-tuning runs",
                others,
                ("dataset", "split", "task", "init", "backbone", "data_fraction", "tiny"),
            )
        )
    text = "\n".join(md).rstrip() + "\n"
    write_text(out / "REPORT.md", text)
    for name in set(PLOTS) - plotted:  # a plot no record backs any more
        (out / name).unlink(missing_ok=True)
    return text


def sources_of(args) -> list[Path]:
    """Committed campaign stores, then the stores the user named; a named store must exist."""
    if args.campaigns and not Path(args.campaigns).is_dir():
        raise StoreError(f"--campaigns {args.campaigns} is not a folder of campaign records (*.jsonl)")
    named = [Path(p) for p in args.store] + ([store_path()] if args.scratch else [])
    for path in named:
        if not path.is_file():
            raise StoreError(
                f"no run store at {path}: ordinary runs (`make pretrain`, `make bench-*`) create the "
                f"scratch store when they finish; check --store / $MASK3D_RESULTS"
            )
    return list({p.resolve(): p for p in campaign_files(args.campaigns) + named}.values())  # each file once


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Regenerate REPORT.md (tables and plots) from the paper's numbers and our runs."
    )
    parser.add_argument(
        "--campaigns",
        default=None,
        help=f"folder of committed campaign records (default {display(CAMPAIGNS_DIR)}/; may be empty)",
    )
    parser.add_argument(
        "--scratch",
        action="store_true",
        help="also read the scratch store of ordinary runs ($MASK3D_RESULTS, else output/runs.jsonl)",
    )
    parser.add_argument("--store", action="append", default=[], help="also read this runs file (repeatable)")
    parser.add_argument(
        "--out",
        default=None,
        help="folder for REPORT.md and PNGs (default results/, the "
        f"committed report; {display(SCRATCH_REPORT_DIR)}/ with --scratch or --store)",
    )
    parser.add_argument("--paper", default=None, help="reference numbers (default results/paper.csv)")
    parser.add_argument("--baselines", default=None, help="baseline registry (default results/baselines.yaml)")
    args = parser.parse_args(argv)
    args.out = args.out or str(SCRATCH_REPORT_DIR if args.scratch or args.store else RESULTS_DIR)
    out = Path(args.out)
    before = {name: (out / name).read_bytes() if (out / name).is_file() else None for name in ("REPORT.md", *PLOTS)}
    try:
        text = build(sources_of(args), out, args.paper, args.baselines)
    except (StoreError, RecordError, PaperError, BaselineError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(changes(out, before, text))
    return 0


def sections(text: str) -> dict[str, str]:
    """The report's text by heading (`## ...` or `### ...`), to say which parts a rebuild changed."""
    parts: dict[str, str] = {}
    title = "introduction"
    for line in text.splitlines():
        if line.startswith(("## ", "### ")):
            title = line.lstrip("#").strip()
        parts[title] = parts.get(title, "") + line + "\n"
    return parts


def changes(out: Path, before: dict[str, bytes | None], text: str) -> str:
    """One line: where the report is and what this rebuild changed in it and its plots (the report itself is
    the file, not the console's business)."""
    where = f"tables: {display(out / 'REPORT.md')} ({len(text.splitlines())} lines)"
    old = before["REPORT.md"]
    if old is None:
        said = ["new"]
    else:
        was, now = sections(old.decode("utf-8", errors="replace")), sections(text)
        said = [
            f"{verb} {', '.join(repr(t) for t in titles)}"
            for verb, titles in (
                ("changed", [t for t in now if t in was and now[t] != was[t]]),
                ("added", [t for t in now if t not in was]),
                ("removed", [t for t in was if t not in now]),
            )
            if titles
        ]
    plots = [
        f"{name} {'removed' if now is None else 'new' if was is None else 'redrawn'}"
        for name in PLOTS
        if (was := before[name]) != (now := (out / name).read_bytes() if (out / name).is_file() else None)
    ]
    if not said and not plots:
        return f"{where}: unchanged"
    return f"{where}: " + "; ".join(said + (["plots: " + ", ".join(plots)] if plots else []))


if __name__ == "__main__":
    sys.exit(main())
