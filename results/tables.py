"""The report's tables as plain cells: the paper's tables with our runs beside the reference rows.

A run joins a reference row when its `init` is a registered baseline whose `references` name that row's
method and the backbones match; the delta is then our mean minus the paper's value. Registered baselines
without a run still get a row (runs 0), so every table doubles as a to-do list. Paper cells keep the
source's own digits; an unverified number carries a dagger.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from core.units import number
from results.baselines import Baseline
from results.paper import PaperRow
from results.runs import CAMPAIGN_TAGS, fmt_fraction, fmt_stat, summarize

UNVERIFIED = "†"
METRIC_NAMES = {
    "sem_seg/mIoU": "mIoU",
    "bbox/AP": "box AP",
    "bbox/AP50": "box AP50",
    "segm/AP": "mask AP",
    "segm/AP50": "mask AP50",
    "depth/delta1": "δ<1.25",
    "depth/AbsRel": "AbsRel",
    "depth/RMSE": "RMSE m",
}
DEPTH_METRICS = ("depth/delta1", "depth/AbsRel", "depth/RMSE")
# Metrics shown for runs without a paper table; per-class entries (sem_seg/IoU-wall, ...) stay in the store.
SUMMARY_METRICS = (
    "sem_seg/mIoU",
    "sem_seg/fwIoU",
    "sem_seg/mACC",
    "sem_seg/pACC",
    "bbox/AP",
    "bbox/AP50",
    "bbox/AP75",
    "segm/AP",
    "segm/AP50",
    "segm/AP75",
    "depth/delta1",
    "depth/delta2",
    "depth/delta3",
    "depth/AbsRel",
    "depth/SqRel",
    "depth/RMSE",
    "depth/RMSE_log",
    "depth/log10",
)


@dataclass(frozen=True)
class Spec:
    title: str
    dataset: str
    split: str
    tasks: tuple[str, ...]
    metrics: tuple[str, ...]
    # Reference numbers of these splits are shown too, in a Split column, never set against our runs (`split`).
    other_splits: tuple[str, ...] = ()


PAPER_TABLES = (
    Spec("ScanNet semantic segmentation (val)", "scannet", "val", ("semseg",), ("sem_seg/mIoU",)),
    Spec("NYUv2 semantic segmentation (test)", "nyuv2", "test", ("semseg",), ("sem_seg/mIoU",)),
    Spec(
        "Cityscapes semantic segmentation (val; test where the Split column says so)",
        "cityscapes",
        "val",
        ("semseg",),
        ("sem_seg/mIoU",),
        other_splits=("test",),
    ),
    Spec(
        "ScanNet instance segmentation and detection (val)",
        "scannet",
        "val",
        ("insseg", "det"),
        ("bbox/AP50", "segm/AP50"),
    ),
    Spec(
        "NYUv2 instance segmentation and detection (test)",
        "nyuv2",
        "test",
        ("insseg", "det"),
        ("bbox/AP", "bbox/AP50", "segm/AP50"),
    ),
    Spec("NYUv2 monocular depth estimation (test, Eigen crop)", "nyuv2", "test", ("depth",), DEPTH_METRICS),
    Spec("ScanNet monocular depth estimation (val)", "scannet", "val", ("depth",), DEPTH_METRICS),
)
DATA_EFFICIENT = Spec(
    "Data-efficient ScanNet semantic segmentation (val, mIoU by % of training scenes)",
    "scannet",
    "val",
    ("semseg",),
    ("sem_seg/mIoU",),
)


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    footnotes: list[str] = field(default_factory=list)


@dataclass
class Series:
    """One line of a plot: `ys[i]` at `xs[i]`, `errs` the std (0 where unknown)."""

    label: str
    reference: bool
    xs: list[float]
    ys: list[float]
    errs: list[float]


class _Footnotes:
    def __init__(self):
        self.ids: dict[tuple[str, bool], int] = {}

    def cite(self, row: PaperRow) -> str:
        key = (row.source, row.verified)
        self.ids.setdefault(key, len(self.ids) + 1)
        return f"[{self.ids[key]}]"

    def lines(self) -> list[str]:
        return [
            f"[{i}] {src}" + ("" if ok else f" ({UNVERIFIED} not verified against the primary source)")
            for (src, ok), i in self.ids.items()
        ]


def paper_cell(row: PaperRow | None) -> str:
    if row is None or row.value is None:
        return ""
    return row.text + ("" if row.verified else UNVERIFIED)


def _entries(rows: list[PaperRow]) -> dict[tuple, list[PaperRow]]:
    """Reference rows grouped into one table line per (paper, method, backbone, pre-training data, split)."""
    entries: dict[tuple, list[PaperRow]] = {}
    for r in rows:
        entries.setdefault((r.paper, r.method, r.backbone, r.pretrain_data, r.split), []).append(r)
    return entries


def comparable(record: dict) -> bool:
    """Whether a run may sit beside the paper's numbers: a full-size recipe on real data, outside campaigns.
    The CPU-sized `tiny` recipe and synthetic scenes check the pipeline; they measure nothing the paper did."""
    return (
        record["kind"] == "finetune"
        and not record["tiny"]
        and record["dataset"] != "synthetic"
        and record["tag"] not in CAMPAIGN_TAGS
    )


def _matches(record: dict, spec: Spec) -> bool:
    return (
        comparable(record)
        and record["dataset"] == spec.dataset
        and record["split"] == spec.split
        and record["task"] in spec.tasks
    )


def _reference_for(init: str, backbone: str, split: str, entries, baselines: dict[str, Baseline]):
    """The reference line a baseline's runs sit beside: its method, same backbone, same split."""
    baseline = baselines.get(init)
    if baseline is None:
        return None
    for ref in baseline.references:
        for key in entries:
            if key[1] == ref and key[2] == backbone and key[4] == split:
                return key
    return None


def paper_table(
    spec: Spec, paper: list[PaperRow], runs: list[dict], baselines: dict[str, Baseline], placed: set[int]
) -> Table:
    refs = [
        r
        for r in paper
        if r.dataset == spec.dataset
        and r.split in (spec.split, *spec.other_splits)
        and r.task in spec.tasks
        and r.metric in spec.metrics
        and r.data_fraction == 100
        and not r.relative_to
    ]
    entries = _entries(refs)
    mine = [r for r in runs if _matches(r, spec) and r["data_fraction"] == 100]
    placed.update(id(r) for r in mine)
    groups: dict[tuple, list[dict]] = {}
    for r in mine:
        groups.setdefault((r["init"], r["backbone"], r["task"]), []).append(r)
    for b in baselines.values():  # registered baselines without a run: a row each, runs 0
        if not any(k[0] == b.name and k[1] == b.backbone for k in groups):
            groups[(b.name, b.backbone, "")] = []
    attached: dict[tuple, list[tuple]] = defaultdict(list)
    alone = []
    for key in groups:
        ref = _reference_for(key[0], key[1], spec.split, entries, baselines)
        (attached[ref] if ref else alone).append(key)

    multi_task = len(spec.tasks) > 1
    header = ["Reference", "Ours", "Backbone", "Pre-training data"]
    header += (["Split"] if spec.other_splits else []) + (["Task"] if multi_task else [])
    for m in spec.metrics:
        name = METRIC_NAMES.get(m, m)
        header += [f"{name} paper", f"{name} ours", f"Δ {name}"]
    table = Table(spec.title, header + ["Runs", "Source"])
    notes = _Footnotes()

    def line(entry_key, group_key):
        ref_rows = {r.metric: r for r in entries.get(entry_key, [])}
        records = groups.get(group_key, [])
        baseline = baselines.get(group_key[0]) if group_key else None
        if entry_key:
            pretrain = entry_key[3]
        else:
            pretrain = baseline.pretrain_data if baseline and baseline.backbone == group_key[1] else ""
        cells = [
            entry_key[1] if entry_key else "",
            f"`{group_key[0]}`" if group_key else "",
            entry_key[2] if entry_key else group_key[1],
            pretrain,
        ]
        if spec.other_splits:
            cells.append(entry_key[4] if entry_key else spec.split)
        if multi_task:
            ref_tasks = "/".join(sorted({r.task for r in ref_rows.values()}))
            cells.append(group_key[2] if group_key and group_key[2] else ref_tasks)
        for m in spec.metrics:
            ref = ref_rows.get(m)
            stat = summarize([r["metrics"][m] for r in records if m in r["metrics"]])
            delta = number(m, stat.mean - ref.value, sign=True) if stat.n and ref and ref.value is not None else ""
            cells += [paper_cell(ref), fmt_stat(stat, m), delta]
        cells.append(str(len(records)) if group_key else "")
        cells.append("".join(dict.fromkeys(notes.cite(r) for r in ref_rows.values())))
        table.rows.append(cells)

    for entry_key in entries:
        for group_key in attached.get(entry_key) or [None]:
            line(entry_key, group_key)
    for group_key in alone:
        line(None, group_key)
    table.footnotes = notes.lines()
    if spec.other_splits:
        table.footnotes.append(
            f"Split: where the number was measured; our runs are on {spec.split}, and Δ only sets a run beside a "
            f"reference of the same split."
        )
    return table


def data_efficient_table(
    spec: Spec, paper: list[PaperRow], runs: list[dict], baselines: dict[str, Baseline], placed: set[int]
) -> tuple[Table, list[Series]]:
    metric = spec.metrics[0]
    refs = [
        r
        for r in paper
        if r.dataset == spec.dataset
        and r.split == spec.split
        and r.task in spec.tasks
        and r.metric == metric
        and not r.relative_to
        and r.value is not None
    ]
    entries = {k: v for k, v in _entries(refs).items() if any(r.data_fraction < 100 for r in v)}
    mine = [r for r in runs if _matches(r, spec) and metric in r["metrics"]]
    placed.update(id(r) for r in mine)
    groups: dict[tuple, dict[float, list[float]]] = {}
    for r in mine:
        groups.setdefault((r["init"], r["backbone"]), defaultdict(list))[r["data_fraction"]].append(
            r["metrics"][metric]
        )
    for b in baselines.values():
        groups.setdefault((b.name, b.backbone), defaultdict(list))
    fractions = sorted(
        {float(r.data_fraction) for rows in entries.values() for r in rows} | {f for g in groups.values() for f in g}
    )
    table = Table(spec.title, ["Row", "Backbone"] + [f"{fmt_fraction(f)}%" for f in fractions] + ["Source"])
    notes = _Footnotes()
    series: list[Series] = []
    attached: dict[tuple, list[tuple]] = defaultdict(list)
    alone = []
    for key in groups:
        ref = _reference_for(key[0], key[1], spec.split, entries, baselines)
        (attached[ref] if ref else alone).append(key)

    def ours(key):
        stats = {f: summarize(v) for f, v in groups[key].items()}
        cells = [fmt_stat(stats[f], metric) + f" (n={stats[f].n})" if f in stats else "" for f in fractions]
        table.rows.append([f"`{key[0]}` (ours)", key[1]] + cells + [""])
        if stats:
            xs = sorted(stats)
            series.append(
                Series(
                    f"{key[0]} ({key[1]}, ours)",
                    False,
                    xs,
                    [stats[x].mean for x in xs],
                    [stats[x].std or 0.0 for x in xs],
                )
            )
        return stats

    for entry_key, rows in entries.items():
        by_fraction = {float(r.data_fraction): r for r in rows}
        table.rows.append(
            [f"{entry_key[1]} (paper)", entry_key[2]]
            + [paper_cell(by_fraction.get(f)) for f in fractions]
            + ["".join(dict.fromkeys(notes.cite(r) for r in rows))]
        )
        xs = sorted(by_fraction)
        series.append(
            Series(
                f"{entry_key[1]} ({entry_key[2]}, paper)", True, xs, [by_fraction[x].value for x in xs], [0.0] * len(xs)
            )
        )
        for key in attached.get(entry_key, []):
            stats = ours(key)
            deltas = [
                number(metric, stats[f].mean - by_fraction[f].value, sign=True)
                if f in stats and f in by_fraction
                else ""
                for f in fractions
            ]
            if any(deltas):
                table.rows.append([f"Δ `{key[0]}` − {entry_key[1]}", key[1]] + deltas + [""])
    for key in alone:
        ours(key)
    table.footnotes = notes.lines()
    return table, series


def headline_lines(paper: list[PaperRow], runs: list[dict], baselines: dict[str, Baseline]) -> list[str]:
    """Claims stated as gains (`relative_to`), each beside our gaps between the same runs."""
    lines = []
    for claim in (r for r in paper if r.relative_to):
        mark = "" if claim.verified else f" {UNVERIFIED}"
        lines.append(
            f"- {claim.paper}: {claim.method} **{claim.value:+g}** {claim.metric} over "
            f"{claim.relative_to} on {claim.dataset} {claim.split}{mark} ({claim.source})."
        )
        spec = Spec("", claim.dataset, claim.split, (claim.task,), (claim.metric,))
        values: dict[tuple, list[float]] = {}
        for r in runs:
            if _matches(r, spec) and r["data_fraction"] == claim.data_fraction and claim.metric in r["metrics"]:
                values.setdefault((r["init"], r["backbone"]), []).append(r["metrics"][claim.metric])
        stats = {k: summarize(v) for k, v in values.items()}
        ours = [k for k in stats if claim.method in getattr(baselines.get(k[0]), "references", ())]
        if not ours:
            names = ", ".join(f"`{b.name}`" for b in baselines.values() if claim.method in b.references)
            lines.append(
                f"  - ours: no run yet of {names or 'a baseline referencing ' + claim.method} "
                f"on {claim.dataset} {claim.split}."
            )
        for k in ours:
            gaps = [
                f"− `{o[0]}` ({o[1]}) = {number(claim.metric, stats[k].mean - stats[o].mean, sign=True)}"
                for o in stats
                if o != k
            ]
            lines.append(
                f"  - ours: `{k[0]}` ({k[1]}) {fmt_stat(stats[k], claim.metric)} (n={stats[k].n})"
                + (f"; {'; '.join(gaps)}" if gaps else "; no other run to compare with yet")
                + "."
            )
    return lines


def runs_table(title: str, records: list[dict], keys: tuple[str, ...]) -> Table:
    """Our runs grouped by `keys`, with every summary metric any of them reports."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    metrics = [m for m in SUMMARY_METRICS if any(m in r["metrics"] for r in records)]
    table = Table(title, [k.replace("_", " ") for k in keys] + metrics + ["Runs"])
    for key, rs in groups.items():
        cells = [fmt_fraction(v) if k == "data_fraction" else str(v) for k, v in zip(keys, key, strict=False)]
        cells += [fmt_stat(summarize([r["metrics"][m] for r in rs if m in r["metrics"]]), m) for m in metrics]
        table.rows.append(cells + [str(len(rs))])
    return table
