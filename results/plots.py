"""The report's PNGs, drawn headless (Agg); each function returns the PNG bytes for the report to write."""

from __future__ import annotations

import io

import matplotlib

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
