"""Attribution figures: mean Shapley value per modality and quadrant (bars with intervals), and
per-segment waterfalls from v(∅) to v(all modalities)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ambiguity.constants import QUADRANT_COLOURS, QUADRANTS
from ambiguity.errors import StatsError
from ambiguity.report.fig_boundary import save

_MODALITY_COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")


def quadrant_bars(means: Mapping[str, pl.DataFrame], modalities: Sequence[str], *, target: str = "p_correct",
                  fusion: str = "fusion") -> Figure:
    """One panel per unimodal model: per quadrant, one bar per modality (mean phi) with its interval."""
    if not means:
        raise StatsError("no attribution summary to plot")
    k = len(means)
    fig = Figure(figsize=(4.8 * k, 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, k, squeeze=False)[0]
    width = 0.8 / max(len(modalities), 1)
    for ax, (name, df) in zip(axes, means.items(), strict=True):
        for j, m in enumerate(modalities):
            sub = df.filter(pl.col("modality") == m)
            rows = {r["quadrant"]: r for r in sub.iter_rows(named=True)}
            x = np.arange(len(QUADRANTS)) + (j - (len(modalities) - 1) / 2) * width
            y = np.array([rows.get(q, {}).get("mean_phi", np.nan) for q in QUADRANTS], dtype=float)
            lo = np.array([rows.get(q, {}).get("ci_low", np.nan) for q in QUADRANTS], dtype=float)
            hi = np.array([rows.get(q, {}).get("ci_high", np.nan) for q in QUADRANTS], dtype=float)
            err = np.vstack([np.nan_to_num(y - lo), np.nan_to_num(hi - y)])
            ax.bar(x, np.nan_to_num(y), width, yerr=err, capsize=2, label=m, color=_MODALITY_COLOURS[j % len(_MODALITY_COLOURS)])
        ax.axhline(0, color="0.3", lw=0.8)
        ns = {r["quadrant"]: r["n"] for r in df.iter_rows(named=True)}
        ax.set_xticks(np.arange(len(QUADRANTS)), [f"{q}\nn={ns.get(q, 0)}" for q in QUADRANTS])
        for lab, q in zip(ax.get_xticklabels(), QUADRANTS, strict=True):
            lab.set_color(QUADRANT_COLOURS[q])
        ax.set_title(f"quadrants of {name} vs {fusion}", fontsize=9)
        ax.set_ylabel(f"mean Shapley value of {target}")
    axes[0].legend(fontsize=8, title="modality", title_fontsize=8)
    fig.suptitle(f"Which modality moved {fusion}'s {target}, per quadrant (mean, 95% t interval)", fontsize=10)
    return fig


def waterfalls(rows: Sequence[Mapping], modalities: Sequence[str], *, target: str = "p_correct") -> Figure:
    """One panel per segment: from v(∅) through each modality's phi (largest |phi| first) to v(all)."""
    if not rows:
        raise StatsError("no segment to draw a waterfall for")
    fig = Figure(figsize=(3.6 * len(rows), 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(rows), squeeze=False)[0]
    for ax, r in zip(axes, rows, strict=True):
        # an absent player (its input missing for this segment) is no player: not in its waterfall
        order = sorted((m for m in modalities if r[f"phi_{m}"] is not None and r[f"phi_{m}"] == r[f"phi_{m}"]),
                       key=lambda m: -abs(r[f"phi_{m}"]))
        level = r["v_empty"]
        levels = [0.0, level]
        ax.bar(0, level, color="0.75", width=0.6)
        for i, m in enumerate(order, start=1):
            phi = r[f"phi_{m}"]
            ax.bar(i, phi, bottom=level, width=0.6, color="#2ca02c" if phi >= 0 else "#d62728")
            ax.text(i, level + phi / 2, f"{phi:+.3f}", ha="center", va="center", fontsize=7, color="white")
            level += phi
            levels.append(level)
        ax.bar(len(order) + 1, r["v_all"], color="0.45", width=0.6)
        # Partial sums of an order need not lie in [0, 1]: the axis covers all of them.
        lo, hi = min(levels), max([*levels, 1.0 if target.startswith("p") else r["v_all"]])
        pad = 0.05 * (hi - lo or 1.0)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_xticks(range(len(order) + 2), ["v(∅)", *order, "v(all)"], fontsize=8)
        q = r.get("quadrant")
        ax.set_title(f"{r['segment_id']}" + (f" ({q})" if q else ""), fontsize=8, color=QUADRANT_COLOURS.get(q or "", "black"))
        ax.axhline(0, color="0.3", lw=0.6)
        if target.startswith("p"):
            ax.axhline(0.5, color="0.5", lw=0.6, ls="--")
    axes[0].set_ylabel(target)
    fig.suptitle("Per-segment attribution: v(∅) + sum of Shapley values = v(all modalities)", fontsize=10)
    return fig


def pick_examples(frame: pl.DataFrame, modalities: Sequence[str], per_quadrant: int = 1) -> list[dict]:
    """The segment with the largest sum of |phi| in each of red, green, blue (and yellow)."""
    out = []
    score = pl.sum_horizontal([pl.col(f"phi_{m}").abs() for m in modalities]).alias("_s")
    for q in QUADRANTS:
        sub = frame.filter(pl.col("quadrant") == q).with_columns(score).sort(["_s", "segment_id"], descending=[True, False])
        out += sub.head(per_quadrant).drop("_s").to_dicts()
    return out


def write_attribution_figures(means: Mapping[str, pl.DataFrame], frame: pl.DataFrame, modalities: Sequence[str],
                              out_dir: str | Path, *, target: str = "p_correct", fusion: str = "fusion") -> list[Path]:
    files = save(quadrant_bars(means, modalities, target=target, fusion=fusion), out_dir, "attribution_quadrants")
    ex = pick_examples(frame, modalities)
    if ex:
        files += save(waterfalls(ex, modalities, target=target), out_dir, "attribution_waterfall")
    return files
