"""The report's PNGs, drawn headless (Agg); each function returns the PNG bytes for the report to write."""

from __future__ import annotations

import io

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from results.tables import Series  # noqa: E402


def _png(fig) -> bytes:
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()


NO_RUN_YET = "no run of ours yet: make reproduce TABLE=scannet_data_efficient"


def data_efficient(series: list[Series]) -> bytes:
    """The paper's curves dashed, ours solid with the std over seeds; a plot without any run of ours says so."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for s in series:
        style = dict(linestyle="--", marker="s", alpha=0.8) if s.reference else dict(marker="o", capsize=3)
        ax.errorbar(s.xs, s.ys, yerr=None if s.reference else s.errs, label=s.label, **style)
    if all(s.reference for s in series):
        ax.text(0.5, 0.06, NO_RUN_YET, transform=ax.transAxes, ha="center", fontsize=9, style="italic")
        ax.margins(y=0.25)
    ax.set_xlabel("% of ScanNet training scenes")
    ax.set_ylabel("mIoU (val)")
    ax.set_title("Data-efficient semantic segmentation: paper dashed, ours solid (± std)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def running_mean(values: list[float], window: int) -> list[float]:
    """Mean of the last `window` values at each point (fewer at the start)."""
    cumulative = np.cumsum([0.0, *values])
    return [(cumulative[i + 1] - cumulative[max(0, i + 1 - window)]) / min(window, i + 1) for i in range(len(values))]


def loss_curves(runs: list[dict]) -> bytes:
    """Each run's recorded loss (thin) and its running mean over a tenth of the run (thick, at most 100
    iterations: the window of the start and final losses that `make pretrain` prints and the table shows)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for r in runs:
        its, losses = zip(*r["loss_history"], strict=False)
        label = f"{r.get('objective') or r['init']} {r['backbone']} {r['dataset']} seed {r['seed']}"
        window_its = max(1, min(100, int(its[-1]) // 10))
        per_point = max(1.0, (its[-1] - its[0]) / max(1, len(its) - 1))  # iterations between recorded points
        (raw,) = ax.plot(its, losses, linewidth=0.8, alpha=0.35)
        smooth = running_mean(list(losses), max(1, round(window_its / per_point)))
        ax.plot(its, smooth, color=raw.get_color(), linewidth=2, label=label + (f" [{r['tag']}]" if r["tag"] else ""))
    ax.set_xlabel("iteration")
    ax.set_ylabel("pre-training loss")
    ax.set_title("Pre-training loss: thin = per iteration, thick = running mean over 10 % of the run", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def repro_curves(series: list[Series]) -> bytes:
    """Whether fine-tuning had flattened out, and where the inits part ways along the way."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for s in series:
        ax.plot(s.xs, s.ys, linestyle="--" if s.reference else "-", marker=None if s.reference else ".", label=s.label)
    ax.set_xlabel("fine-tuning iteration")
    ax.set_ylabel("mIoU (val)")
    ax.set_title("Mini reproduction: val mIoU during fine-tuning")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)
