"""The report's PNGs, drawn headless (Agg); each function returns the PNG bytes for the report to write."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from results.runs import Stat, fmt_fraction  # noqa: E402
from results.tables import Series  # noqa: E402


def _png(fig) -> bytes:
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()


def data_efficient(series: list[Series]) -> bytes:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for s in series:
        style = dict(linestyle="--", marker="s", alpha=0.8) if s.reference else dict(marker="o", capsize=3)
        ax.errorbar(s.xs, s.ys, yerr=None if s.reference else s.errs, label=s.label, **style)
    ax.set_xlabel("% of ScanNet training scenes")
    ax.set_ylabel("mIoU (val)")
    ax.set_title("Data-efficient semantic segmentation")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def loss_curves(runs: list[dict]) -> bytes:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for r in runs:
        its, losses = zip(*r["loss_history"], strict=False)
        label = f"{r.get('objective') or r['init']} {r['backbone']} {r['dataset']} seed {r['seed']}"
        ax.plot(its, losses, label=label + (f" [{r['tag']}]" if r["tag"] else ""))
    ax.set_xlabel("iteration")
    ax.set_ylabel("pre-training loss")
    ax.set_title("Pre-training loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def repro_bars(bars: list[tuple[str, str, float, Stat]]) -> bytes:
    groups = list(dict.fromkeys((data, fraction) for data, _, fraction, _ in bars))
    objectives = list(dict.fromkeys(obj for _, obj, _, _ in bars))
    width = 0.8 / len(objectives)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(groups) * len(objectives) ** 0.5), 4.2))
    for i, obj in enumerate(objectives):
        cells = {(d, f): s for d, o, f, s in bars if o == obj}
        xs = [g + (i - (len(objectives) - 1) / 2) * width for g, key in enumerate(groups) if key in cells]
        stats = [cells[key] for key in groups if key in cells]
        ax.bar(xs, [s.mean for s in stats], width, yerr=[s.std or 0.0 for s in stats], capsize=3, label=obj)
    ax.set_xticks(range(len(groups)), [f"{d}\n{fmt_fraction(f)}% scenes" for d, f in groups])
    ax.set_ylabel("mIoU (mean ± std over runs)")
    ax.set_title("Mini reproduction: fine-tuned mIoU by pre-training")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)
