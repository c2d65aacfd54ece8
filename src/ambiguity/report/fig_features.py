"""Figure 5 (feature distributions per quadrant) and Figure 6 (AU activation rates per quadrant).

Input is a frame with a ``quadrant`` column and feature columns, e.g. from
:func:`ambiguity.stats.compare.join_quadrants`. A :class:`QuadrantComparison` may be
passed to print each pair's adjusted p in the panel titles. Built on
``matplotlib.figure.Figure`` with the Agg canvas.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ambiguity.errors import StatsError
from ambiguity.report.fig_boundary import QUADRANT_COLOURS, save
from ambiguity.stats.compare import select_columns
from ambiguity.stats.results import QuadrantComparison

DEFAULT_QUADRANTS = ("red", "green", "blue")


def _check(frame: pl.DataFrame, columns: Sequence[str] | str | None, quadrants: Sequence[str]) -> list[str]:
    if "quadrant" not in frame.columns:
        raise StatsError("the frame has no quadrant column: join the features with load_quadrants() first")
    unknown = [q for q in quadrants if q not in QUADRANT_COLOURS]
    if unknown:
        raise StatsError(f"unknown quadrant(s) {', '.join(unknown)}: use {', '.join(QUADRANT_COLOURS)}")
    return select_columns(frame, columns)


def _values(frame: pl.DataFrame, quadrant: str, column: str) -> np.ndarray:
    v = frame.filter(pl.col("quadrant") == quadrant)[column].cast(pl.Float64).to_numpy()
    return v[np.isfinite(v)]


def _p_note(comparison: QuadrantComparison | None, feature: str) -> str:
    if comparison is None:
        return ""
    parts = []
    for c in comparison.comparisons:
        row = c.table.filter(pl.col("feature") == feature)
        if row.height and np.isfinite(row["p_adj"][0]):
            p = row["p_adj"][0]
            parts.append(f"{c.a}/{c.b} p={'<0.001' if p < 0.001 else f'{p:.3f}'}")
    return ("\n" + ", ".join(parts)) if parts else ""


def figure5(
    frame: pl.DataFrame,
    columns: Sequence[str] | str | None = None,
    quadrants: Sequence[str] = DEFAULT_QUADRANTS,
    comparison: QuadrantComparison | None = None,
    ncols: int = 4,
) -> Figure:
    """One panel per feature: box plots of its values in each quadrant, means marked.

    Boxes span the quartiles, whiskers 1.5 IQR, and a white diamond marks the mean
    (the quantity the t-tests compare). NaN values are left out per feature.
    """
    names = _check(frame, columns, quadrants)
    ncols = max(1, min(ncols, len(names)))
    nrows = math.ceil(len(names) / ncols)
    fig = Figure(figsize=(3.1 * ncols, 2.9 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax, name in zip(axes, names, strict=False):
        data = [_values(frame, q, name) for q in quadrants]
        pos = [i for i, d in enumerate(data) if len(d)]
        if pos:
            box = ax.boxplot([data[i] for i in pos], positions=pos, widths=0.6, patch_artist=True, showfliers=False,
                             showmeans=True, meanprops={"marker": "D", "markerfacecolor": "white", "markeredgecolor": "black", "markersize": 4})
            for patch, i in zip(box["boxes"], pos, strict=True):
                patch.set_facecolor(QUADRANT_COLOURS[quadrants[i]])
                patch.set_alpha(0.75)
            for median in box["medians"]:
                median.set_color("black")
        ax.set_xticks(range(len(quadrants)), [f"{q}\n(n={len(d)})" for q, d in zip(quadrants, data, strict=True)], fontsize=7)
        ax.set_xlim(-0.6, len(quadrants) - 0.4)
        ax.set_title(name + _p_note(comparison, name), fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    fig.suptitle("Feature distributions per quadrant", fontsize=10)
    return fig


def figure6(
    frame: pl.DataFrame,
    columns: Sequence[str] | str | None = r"_rate$",
    quadrants: Sequence[str] = DEFAULT_QUADRANTS,
    comparison: QuadrantComparison | None = None,
) -> Figure:
    """Grouped bars: mean activation rate of each action unit per quadrant, with 95% CIs.

    The interval is mean +- 1.96 standard errors (normal approximation); rates are the
    share of a segment's frames in which the AU is active (OpenFace ``AUxx_c``) or a
    landmark cue's ``_rate`` column. With ``comparison``, a star marks each AU whose
    adjusted p is at or under alpha for a pair.
    """
    names = _check(frame, columns, quadrants)
    width = 0.8 / len(quadrants)
    fig = Figure(figsize=(max(6.0, 0.55 * len(names) * len(quadrants) + 1.5), 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    x = np.arange(len(names))
    top = np.zeros(len(names))
    for i, q in enumerate(quadrants):
        vals = [_values(frame, q, n) for n in names]
        mean = np.array([v.mean() if len(v) else np.nan for v in vals])
        se = np.array([v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else np.nan for v in vals])
        ax.bar(x + (i - (len(quadrants) - 1) / 2) * width, mean, width, yerr=1.96 * se, capsize=2,
               color=QUADRANT_COLOURS[q], alpha=0.85, label=f"{q} (n={max((len(v) for v in vals), default=0)})",
               error_kw={"elinewidth": 0.8})
        top = np.fmax(top, np.nan_to_num(mean + 1.96 * np.nan_to_num(se)))
    if comparison is not None:
        for j, name in enumerate(names):
            hits = [f"{c.a}/{c.b}" for c in comparison.comparisons
                    if c.table.filter((pl.col("feature") == name) & pl.col("reject")).height]
            if hits:
                ax.text(j, top[j] * 1.02 + 0.01, "*", ha="center", va="bottom", fontsize=11)
    ax.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("activation rate (mean, 95% CI)")
    ax.legend(fontsize=8, frameon=False)
    ax.set_title("Action unit activation rates per quadrant" + (" (* adjusted p <= alpha)" if comparison is not None else ""), fontsize=10)
    return fig


def write_figure5(frame: pl.DataFrame, out_dir: str | Path, stem: str = "figure5_features", **kwargs) -> list[Path]:
    """Figure 5 as PNG and SVG."""
    return save(figure5(frame, **kwargs), out_dir, stem)


def write_figure6(frame: pl.DataFrame, out_dir: str | Path, stem: str = "figure6_au_rates", **kwargs) -> list[Path]:
    """Figure 6 as PNG and SVG."""
    return save(figure6(frame, **kwargs), out_dir, stem)
