"""The report's sections of the CPU campaigns: `make repro-mini` (the first miniature, `repro-mini`, and its
redesign, `repro-mini-2`) and the mask-ratio ablation.

Objectives are compared by paired differences (same fine-tuning seed, same pre-training seed) with a 95 %
t interval, because with a handful of seeds a gap between two means says nothing without its uncertainty,
and pairing removes the noise the runs of one seed share. Everything is derived from the records alone and
sorted, so the committed report rebuilds byte for byte.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass

from scipy import stats

from core.units import digits
from results.runs import STAGE_KINDS
from results.tables import Series, Table

ORDER = ("random", "none", "supervised", "mask3d", "mae", "multimae", "pri3d")  # then any other, by name
CONTROL, MATCHED = "supervised", "none"  # the positive control and the matched scratch baseline
FINETUNE_PAIRS = (("mask3d", "mae"), ("mask3d", "multimae"), ("mask3d", "random"))
PROBE_PAIRS = (("mask3d", "mae"), ("mask3d", "multimae"))  # mask3d−random: random is a single draw
CONVERGED_WITHIN = 1.0  # mIoU points between random's main-length run and one twice as long


@dataclass(frozen=True)
class Metric:
    """How one metric prints: `scale` turns fractions into percent."""

    key: str
    name: str
    unit: str  # for the one-line findings
    digits: int
    scale: float = 1.0

    def values(self, records: list[dict]) -> list[float]:
        return [r["metrics"][self.key] * self.scale for r in records if self.key in r["metrics"]]

    def signed(self, x: float) -> str:
        return f"{x:+.{self.digits}f}"

    def spread(self, values: list[float]) -> str:
        """`mean ± sample std`, the mean alone for one value, empty for none."""
        if not values:
            return ""
        text = f"{statistics.fmean(values):.{self.digits}f}"
        return text + (f" ± {statistics.stdev(values):.{self.digits}f}" if len(values) > 1 else "")


MIOU = Metric("sem_seg/mIoU", "mIoU", "mIoU", digits("sem_seg/mIoU"))
ABSREL = Metric("depth/AbsRel", "AbsRel", "AbsRel", digits("depth/AbsRel"))
DELTA1 = Metric("depth/delta1", "δ<1.25 %", "points of δ<1.25", digits("depth/delta1") - 2, 100.0)  # in percent
# The frozen encoder's health, which probe records carry (docs/interfaces.md)
RMS = Metric("encoder_rms", "Output rms", "", 2)
SHARED = Metric("encoder_shared_share", "Shared energy %", "points of shared energy", 1, 100.0)


@dataclass(frozen=True)
class Paired:
    """Mean of paired differences with its 95 % t interval; no interval below two pairs."""

    n: int
    mean: float
    low: float | None
    high: float | None

    @property
    def significant(self) -> bool | None:
        return None if self.low is None else self.low > 0 or self.high < 0


def paired(diffs: list[float]) -> Paired:
    n, mean = len(diffs), statistics.fmean(diffs)
    if n < 2:
        return Paired(n, mean, None, None)
    half = float(stats.t.ppf(0.975, n - 1)) * statistics.stdev(diffs) / math.sqrt(n)
    return Paired(n, mean, mean - half, mean + half)


def name(record: dict) -> str:
    """The encoder's variant (a length or remedy of an objective), else the pre-training objective, else the init
    (`random`)."""
    return record.get("variant") or record.get("objective") or record["init"]


def _rank(objective: str) -> tuple:
    return (ORDER.index(objective) if objective in ORDER else len(ORDER), objective)


def _stage(records: list[dict], stage: str) -> list[dict]:
    return [r for r in records if r["stage"] == stage]


def _by_name(records: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        groups[name(r)].append(r)
    return {k: groups[k] for k in sorted(groups, key=_rank)}


def _by_length(records: list[dict]) -> dict[int, list[dict]]:
    """{iterations: records}, shortest first."""
    groups: dict[int, list[dict]] = defaultdict(list)
    for r in records:
        groups[r["iterations"]].append(r)
    return dict(sorted(groups.items()))


def _main(records: list[dict]) -> list[dict]:
    """The main fine-tunes at the campaign's length, the longest of those stored (a campaign lengthened to
    converge keeps its shorter runs, which `length_table` shows)."""
    lengths = _by_length(_stage(records, "main"))
    return lengths[max(lengths)] if lengths else []


def _minutes(records: list[dict]) -> float:
    return math.fsum(r["wall_s"] for r in records) / 60


def fmt_lr(lr: float) -> str:
    """`1e-3`, `5e-4`: the way learning rates are written in configs."""
    mantissa, exponent = f"{lr:e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


def recipe(record: dict) -> tuple[float, float]:
    return (record["lr"], record["layer_decay"])


def fmt_recipe(key: tuple[float, float]) -> str:
    lr, decay = key
    return f"lr {fmt_lr(lr)}, " + ("ld off" if decay == 1.0 else f"ld {decay:g}")


def cost_table(records: list[dict]) -> Table:
    """Where the campaign's CPU time went, so a rerun (or a bigger one) can be budgeted."""
    table = Table("Cost per stage", ["Stage", "Records", "CPU-slot minutes", "Minutes per record"])
    for stage in STAGE_KINDS:
        lengths = _by_length(_stage(records, stage))
        for length, group in lengths.items():
            label = stage if len(lengths) == 1 else f"{stage}, {length} iterations"
            table.rows.append(_cost_row(label, group))
    table.rows.append(_cost_row("total", records))
    table.footnotes = [
        "Minutes of one CPU slot (the sum of each record's `wall_s`); the campaign runs two slots side by side "
        "on 2 cores, so its wall-clock time is about half the total. A probe writes one record per task "
        "(semantic, depth), each with its own time; every other run writes one."
    ]
    return table


def _cost_row(label: str, records: list[dict]) -> list[str]:
    minutes = _minutes(records)
    return [label, str(len(records)), f"{minutes:.1f}", f"{minutes / len(records):.1f}"]


def _grid(records: list[dict]) -> dict[str, dict[tuple, float]]:
    """{init: {recipe: holdout mIoU}}, recipes in order, repeats averaged."""
    runs = [r for r in _stage(records, "grid") if MIOU.key in r["metrics"]]
    recipes = sorted({recipe(r) for r in runs})
    return {
        init: {k: statistics.fmean(v) for k in recipes if (v := MIOU.values([r for r in group if recipe(r) == k]))}
        for init, group in _by_name(runs).items()
    }


def _best(means: dict[tuple, float]) -> tuple:
    return max(means, key=means.get)  # the first of equal cells, in recipe order


def grid_table(records: list[dict], seeds: str = "Fine-tuning seed 0") -> Table:
    """Holdout mIoU per (init, recipe); the best cell is the recipe that init's val runs should use."""
    grid = _grid(records)
    recipes = sorted({k for means in grid.values() for k in means})
    table = Table(
        "Recipe grid (mIoU on held-out training scenes)", ["Init", *map(fmt_recipe, recipes), "Chosen", "Grid edge"]
    )
    for init, means in grid.items():
        chosen = _best(means)
        cells = [_bold(f"{means[k]:.2f}", k == chosen) if k in means else "" for k in recipes]
        table.rows.append([init, *cells, fmt_recipe(chosen), "; ".join(grid_edges(chosen, recipes))])
    table.footnotes = [
        f"{seeds}, trained on the fit part of the training scenes and scored on the held-out "
        "ones (`split` holdout), so val never chooses the recipe; bold: the best cell, the init's recipe below.",
        "Grid edge: the chosen recipe takes the highest or lowest value tried on that axis, so a better one may lie "
        "outside the grid (layer decay off, 1.0, is the end of its range and never an edge).",
    ]
    return table


def grid_edges(chosen: tuple[float, float], recipes: list[tuple[float, float]]) -> list[str]:
    """The axes on which `chosen` sits at the end of the grid, e.g. `["highest lr", "lowest ld"]`."""
    edges = []
    for axis, label in ((0, "lr"), (1, "ld")):
        values = sorted({k[axis] for k in recipes})
        value = chosen[axis]
        if len(values) < 2:
            continue
        if value == values[0]:
            edges.append(f"lowest {label}")
        elif value == values[-1] and not (label == "ld" and value >= 1.0):
            edges.append(f"highest {label}")
    return edges


def _bold(text: str, bold: bool) -> str:
    return f"**{text}**" if bold else text


def main_table(records: list[dict], labels: str = "") -> Table:
    runs = [r for r in _main(records) if MIOU.key in r["metrics"]]
    groups = _by_name(runs)
    random = MIOU.values(groups.get("random", []))
    chosen = {init: _best(means) for init, means in _grid(records).items()}
    length = f", {runs[0]['iterations']} iterations" if runs else ""
    title = f"Fine-tuning (val, {labels}chosen recipe{length})"
    table = Table(title, ["Init", "Recipe", "Runs", "mIoU", "Δ vs random"])
    for init, group in groups.items():
        values = MIOU.values(group)
        gap = statistics.fmean(values) - statistics.fmean(random) if random and init != "random" else None
        table.rows.append(
            [init, _recipes(group, chosen.get(init)), str(len(values)), MIOU.spread(values)]
            + ["" if gap is None else MIOU.signed(gap)]
        )
    table.footnotes = ["mIoU: mean ± sample std over fine-tuning seeds; Δ: difference of the means."]
    return table


def _recipes(group: list[dict], chosen: tuple | None) -> str:
    """The recipes the runs used, flagged when they are not the one the grid chose."""
    used = sorted({recipe(r) for r in group})
    text = "; ".join(map(fmt_recipe, used))
    return text if chosen is None or used == [chosen] else f"{text} (grid chose {fmt_recipe(chosen)})"


def _per_seed(records: list[dict], metric: Metric, seed_key: str) -> dict[str, dict]:
    """{objective: {seed: value}}, repeats of one seed averaged."""
    return {
        objective: {
            seed: statistics.fmean(values)
            for seed in sorted({r.get(seed_key) for r in group}, key=str)
            if (values := metric.values([r for r in group if r.get(seed_key) == seed]))
        }
        for objective, group in _by_name(records).items()
    }


def _pair(values: dict[str, dict], a: str, b: str) -> Paired | None:
    common = sorted(set(values.get(a, {})) & set(values.get(b, {})), key=str)
    return paired([values[a][s] - values[b][s] for s in common]) if common else None


def length_table(records: list[dict]) -> Table:
    """Each init's val mIoU at every main length stored: does the ranking hold as fine-tuning converges?"""
    runs = [r for r in _stage(records, "main") if MIOU.key in r["metrics"]]
    lengths = list(_by_length(runs))
    table = Table("Fine-tuning length (val mIoU, chosen recipe)", ["Init", *(f"{n} iterations" for n in lengths)])
    if len(lengths) > 1:
        for init, group in _by_name(runs).items():
            by_length = _by_length(group)
            table.rows.append([init, *(MIOU.spread(MIOU.values(by_length.get(n, []))) for n in lengths)])
        table.footnotes = ["Mean ± sample std over fine-tuning seeds; the longest length is the campaign's."]
    return table


def finetune_pairs(records: list[dict], pairs=FINETUNE_PAIRS, labels: str = "") -> Table:
    values = _per_seed(_main(records), MIOU, "seed")
    rows = [(f"{a}−{b}", MIOU, p) for a, b in pairs if (p := _pair(values, a, b))]
    return _paired_table(
        f"Paired differences, fine-tuning ({labels}val mIoU, paired by fine-tuning seed)",
        rows,
        "Same fine-tuning seed on both sides; 95 % CI: t interval of the mean difference (n−1 degrees of freedom).",
    )


def probe_pairs(records: list[dict]) -> Table:
    rows = []
    for metric in (MIOU, DELTA1):
        values = _per_seed(_stage(records, "probe"), metric, "pretrain_seed")
        rows += [(f"{a}−{b}", metric, p) for a, b in PROBE_PAIRS if (p := _pair(values, a, b))]
        if values.get("mask3d") and values.get("random"):
            draw = statistics.fmean(values["random"].values())
            rows.append(("mask3d−random", metric, paired([v - draw for v in values["mask3d"].values()])))
    return _paired_table(
        "Paired differences, linear probes (paired by pre-training seed)",
        rows,
        "Same pre-training seed on both sides; mask3d−random sets each mask3d seed against the one random "
        "draw, so its interval covers the spread of pre-training seeds, not that of random inits.",
    )


def _paired_table(title: str, rows: list[tuple[str, Metric, Paired]], note: str) -> Table:
    table = Table(title, ["Pair", "Metric", "n", "Mean difference", "95 % CI", "Significant at 95 %"])
    for label, metric, p in rows:
        ci = "n/a" if p.low is None else f"{metric.signed(p.low)} … {metric.signed(p.high)}"
        significant = "n/a" if p.significant is None else ("yes" if p.significant else "no")
        table.rows.append([label, metric.name, str(p.n), metric.signed(p.mean), ci, significant])
    table.footnotes = [note] + [finding(label, metric, p) for label, metric, p in rows]
    return table


def finding(label: str, metric: Metric, p: Paired) -> str:
    """`mask3d−mae: +0.42 mIoU (95 % CI -0.80 … +1.64), not significant`: the table read out."""
    head = f"{label}: {metric.signed(p.mean)} {metric.unit}"
    if p.low is None:
        return f"{head} (n = {p.n}: no interval)."
    verdict = "significant" if p.significant else "not significant"
    return f"{head} (95 % CI {metric.signed(p.low)} … {metric.signed(p.high)}), {verdict}."


def convergence_table(records: list[dict]) -> Table:
    """Random init's seed-0 val mIoU at every length run (main and long), each against half its length:
    fine-tuning has converged at a length once doubling it moves mIoU by less than `CONVERGED_WITHIN`."""
    runs = [r for r in _stage(records, "main") + _stage(records, "long") if name(r) == "random" and r["seed"] == 0]
    values = {n: v for n, group in _by_length(runs).items() if (v := MIOU.values(group))}
    at = {n: statistics.fmean(v) for n, v in values.items()}
    table = Table(
        "Convergence (random init, fine-tuning seed 0, val)",
        ["Iterations", "mIoU", "Change from half as many", "Half as many converged (<1 point)"],
    )
    for n, miou in at.items():
        half = at.get(n // 2) if n % 2 == 0 else None
        gap = None if half is None else miou - half
        verdict = "" if gap is None else ("yes" if abs(gap) < CONVERGED_WITHIN else "no")
        table.rows.append([str(n), f"{miou:.{MIOU.digits}f}", "" if gap is None else MIOU.signed(gap), verdict])
    if any(len(v) > 1 for v in values.values()):
        table.footnotes = ["Several runs of one length (a main run and an earlier campaign's long run) are averaged."]
    return table


def probe_table(records: list[dict]) -> Table:
    probes = _stage(records, "probe")
    health = [m for m in (RMS, SHARED) if m.values(probes)]  # only records since the health was recorded have it
    table = Table(
        "Linear probes (frozen encoders, val)",
        [
            "Objective",
            "Pre-training seeds",
            "Semantic mIoU",
            "Depth AbsRel",
            "Depth δ<1.25 %",
            *(m.name for m in health),
        ],
    )
    per_seed = {m.key: _per_seed(probes, m, "pretrain_seed") for m in health}
    for objective, group in _by_name(probes).items():
        table.rows.append(
            [objective, *_probe_cells(group)] + [m.spread(list(per_seed[m.key][objective].values())) for m in health]
        )
    table.footnotes = ["Mean ± sample std over pre-training seeds; random is one fixed draw."]
    if health:
        table.footnotes.append(
            "Output rms and shared energy: the frozen encoder's output tokens on the probe's train frames, as the "
            "benchmark receives them; shared energy is the share of their energy in the mean token, the one "
            "component every token of every frame carries (docs/interfaces.md)."
        )
    return table


def _probe_cells(group: list[dict]) -> list[str]:
    seeds = len({r.get("pretrain_seed") for r in group})
    return [
        str(seeds),
        MIOU.spread(MIOU.values(group)),
        ABSREL.spread(ABSREL.values(group)),
        DELTA1.spread(DELTA1.values(group)),
    ]


def repro_tables(records: list[dict]) -> list[Table]:
    """The `repro-mini` section's tables in reading order, those without a row left out."""
    tables = [
        cost_table(records),
        grid_table(records),
        main_table(records),
        length_table(records),
        finetune_pairs(records),
        convergence_table(records),
        probe_table(records),
        probe_pairs(records),
    ]
    return [t for t in tables if t.rows]


def curves(records: list[dict]) -> list[Series]:
    """Val mIoU during fine-tuning: each init's seed-0 main run, then random's long run (dashed)."""
    series = []
    main = _main(records)
    for init, group in _by_name(r for r in main if r["seed"] == 0 and r.get("curve")).items():
        series.append(_series(f"{init} (seed 0)", False, group[0]["curve"]))
    longest = 2 * main[0]["iterations"] if main else None
    longs = [r for r in _stage(records, "long") if r["iterations"] == longest and r["seed"] == 0 and r.get("curve")]
    for r in longs[:1]:
        series.append(_series(f"{name(r)}, twice as long (seed 0)", True, r["curve"]))
    return series


def _series(label: str, reference: bool, curve: list) -> Series:
    xs, ys = [float(x) for x, _ in curve], [float(y) for _, y in curve]
    return Series(label, reference, xs, ys, [0.0] * len(xs))


def ablation_table(records: list[dict]) -> Table:
    """Probe quality per (RGB, depth) mask ratio of mask3d, beside the random encoder."""
    probes = _stage(records, "probe")
    header = ["Pre-training", "RGB mask ratio", "Depth mask ratio", "Pre-training seeds", "Semantic mIoU"]
    table = Table("Linear probes by mask ratio (val)", header + ["Depth AbsRel", "Depth δ<1.25 %"])
    random = [r for r in probes if name(r) == "random"]
    if random:
        table.rows.append(["random (reference)", "", "", *_probe_cells(random)])
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in probes:
        if name(r) != "random":
            groups[(r["rgb_mask_ratio"], r["depth_mask_ratio"], _rank(name(r)))].append(r)
    for (rgb, depth, (_, objective)), group in sorted(groups.items(), key=lambda kv: kv[0]):
        table.rows.append([objective, f"{rgb:g}", f"{depth:g}", *_probe_cells(group)])
    table.footnotes = [
        "Mean ± sample std over pre-training seeds. Cost: "
        f"{len(records)} records (a probe writes one per task), {_minutes(records):.1f} CPU-slot minutes "
        "(sum of `wall_s`)."
    ]
    return table


# --- the redesigned miniature (`repro-mini-2`) ----------------------------------------------------------------
def _fractions(records: list[dict]) -> list[float]:
    """The % of labelled scenes the main fine-tunes used, most first."""
    return sorted({r["data_fraction"] for r in _stage(records, "main")}, reverse=True)


def _at_fraction(records: list[dict], fraction: float) -> list[dict]:
    """The campaign's records with only the main fine-tunes of one label fraction (the grid chose for all)."""
    return [r for r in records if r["stage"] != "main" or r["data_fraction"] == fraction]


def matched_pairs(records: list[dict]) -> list[tuple[str, str]]:
    """Every encoder against the matched baseline and against random, and the two baselines against each other."""
    inits = [n for n in _by_name(_main(records)) if n not in ("random", MATCHED)]
    return [(MATCHED, "random")] + [(init, base) for init in inits for base in (MATCHED, "random")]


def control_finding(records: list[dict], fraction: float) -> str:
    """Whether the positive control shows that this protocol can detect a pre-training benefit."""
    values = _per_seed(_main(records), MIOU, "seed")
    p = _pair(values, CONTROL, MATCHED)
    at = f"at {fraction:g} % of the labelled scenes"
    if p is None or p.low is None:
        return f"Positive control {at}: not enough paired runs of `{CONTROL}` and `{MATCHED}` to tell."
    ci = f"{MIOU.signed(p.mean)} mIoU, 95 % CI {MIOU.signed(p.low)} … {MIOU.signed(p.high)}"
    if p.low > 0:
        return f"Positive control {at}: `{CONTROL}` beats `{MATCHED}` ({ci}), so this protocol can detect a benefit."
    return (
        f"Positive control {at}: `{CONTROL}` does not beat `{MATCHED}` ({ci}), so this protocol cannot detect a "
        "pre-training benefit here, and no other difference at this fraction is evidence either way."
    )


def length_probe_table(records: list[dict]) -> Table:
    """Probe quality against pre-training length, per objective: is the longest length still improving?"""
    probes = [r for r in _stage(records, "probe") if r.get("pretrain_iters") is not None]
    lengths = sorted({int(r["pretrain_iters"]) for r in probes})
    table = Table(
        "Linear probes by pre-training length (semantic mIoU / depth AbsRel)",
        ["Objective", *(f"{n} iterations" for n in lengths)],
    )
    objectives: dict[str, list[dict]] = defaultdict(list)
    for r in probes:
        objectives[lengthless(r)].append(r)
    for objective in sorted(objectives, key=_rank):
        group = objectives[objective]
        cells = []
        for n in lengths:
            at = [r for r in group if int(r["pretrain_iters"]) == n]
            cells.append(f"{MIOU.spread(MIOU.values(at))} / {ABSREL.spread(ABSREL.values(at))}" if at else "")
        table.rows.append([objective, *cells])
    table.footnotes = ["Mean ± sample std over pre-training seeds; `none` exports its initialisation at any length."]
    return table


def lengthless(record: dict) -> str:
    """The encoder a probe record belongs to, whatever its length: `mask3d 500it` is `mask3d`, while a remedy
    (`mask3d_centred_d2init`, objective mask3d) stays itself."""
    variant, objective = name(record), record.get("objective")
    return objective if objective and variant.startswith(objective + " ") else variant


def repro2_tables(records: list[dict]) -> list[Table]:
    """The redesigned miniature's tables in reading order, those without a row left out."""
    tables = [cost_table(records), grid_table(records, "Each cell the mean of its fine-tuning seeds")]
    for fraction in _fractions(records):
        at = _at_fraction(records, fraction)
        labels = f"{fraction:g} % of labelled scenes, "
        tables += [main_table(at, labels), finetune_pairs(at, matched_pairs(at), labels)]
    tables += [probe_table(records), length_probe_table(records)]  # the probe table carries encoder health
    return [t for t in tables if t.rows]


def control_findings(records: list[dict]) -> list[str]:
    return [control_finding(_at_fraction(records, f), f) for f in _fractions(records)]
