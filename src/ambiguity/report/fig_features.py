"""Figure 5 (feature distributions per quadrant) and Figure 6 (AU activation rates per quadrant).

Input is a frame with a ``quadrant`` column and feature columns, e.g. from
:func:`ambiguity.stats.comparisons.join_quadrants`. A :class:`QuadrantComparison` may be
passed to print each pair's adjusted p in the panel titles. Built on
``matplotlib.figure.Figure`` with the Agg canvas.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ambiguity.constants import QUADRANT_COLOURS
from ambiguity.errors import StatsError
from ambiguity.report.fig_boundary import save
from ambiguity.stats.frames import select_columns
from ambiguity.stats.results import QuadrantComparison

DEFAULT_QUADRANTS = ("red", "green", "blue")


def _check(frame: pl.DataFrame, columns: Sequence[str] | str | None, quadrants: Sequence[str]) -> list[str]:
    if "quadrant" not in frame.columns:
        raise StatsError("the frame has no quadrant column: join the features with load_quadrants() first")
    unknown = [q for q in quadrants if q not in QUADRANT_COLOURS]
    if unknown:
        raise StatsError(f"unknown quadrant(s) {', '.join(unknown)}: use {', '.join(QUADRANT_COLOURS)}")
    return select_columns(frame, columns)


def _by_quadrant(frame: pl.DataFrame, quadrants: Sequence[str]) -> dict[str, pl.DataFrame]:
    """The frame's rows per quadrant, split once (a filter per feature and quadrant copied the whole frame
    36 times for Figure 5 at 10^6 segments)."""
    return {q: frame.filter(pl.col("quadrant") == q) for q in quadrants}


def _values(part: pl.DataFrame, column: str) -> np.ndarray:
    v = part[column].cast(pl.Float64).to_numpy()
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


def _wrap(text: str, width: int) -> list[str]:
    """Lines of at most ``width`` characters, broken after spaces, ``_``, ``.``, ``-`` or ``,``
    (feature names have no spaces), a token longer than a line cut where it must."""
    tokens = re.findall(r"[^ _.,\-]*[ _.,\-]?", text)
    lines, cur = [], ""
    for tok in (t for t in tokens if t):
        while len(tok) > width:  # one unbreakable run longer than a line
            if cur:
                lines.append(cur.rstrip())
                cur = ""
            lines.append(tok[:width])
            tok = tok[width:]
        if len(cur) + len(tok.rstrip()) > width and cur:
            lines.append(cur.rstrip())
            cur = ""
        cur += tok
    if cur.strip():
        lines.append(cur.rstrip())
    return lines or [""]


def _title(name: str, comparison: QuadrantComparison | None, width: int) -> str:
    """The feature's name, then each pair's adjusted p, wrapped to ``width`` characters a line."""
    lines = _wrap(name, width)
    note = _p_note(comparison, name).strip()
    if note:
        lines += _wrap(note, width)
    return "\n".join(lines)


def _fit_titles(fig: Figure, titles: dict, comparison: QuadrantComparison | None, start: int) -> None:
    """Re-wrap each panel title narrower until the renderer says it is no wider than its panel.

    The layout is solved once: a title's wrapping changes the panel's height, never its width (the width
    comes from the figure's columns and the y tick labels), so each title is then measured on its own.
    Drawing the whole figure on every round was most of a report's time for a figure of many panels."""
    fig.draw_without_rendering()  # runs the constrained layout: panel sizes are final
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]  # Agg canvas; stubs type the base class
    for ax, name in titles.items():
        room, width = ax.get_window_extent(renderer).width, start
        for _ in range(12):
            if ax.title.get_window_extent(renderer).width <= room or width == 6:
                break
            width = max(6, int(width * 0.85))
            ax.set_title(_title(name, comparison, width), fontsize=8)


def figure5(
    frame: pl.DataFrame,
    columns: Sequence[str] | str | None = None,
    quadrants: Sequence[str] = DEFAULT_QUADRANTS,
    comparison: QuadrantComparison | None = None,
    ncols: int = 4,
    title: str = "Feature distributions per quadrant",
) -> Figure:
    """One panel per feature: box plots of its values in each quadrant, means marked.

    Boxes span the quartiles, whiskers 1.5 IQR, and a white diamond marks the mean
    (the quantity the t-tests compare). NaN values are left out per feature. Panel titles
    (the feature, each pair's adjusted p) are wrapped to the panel's width, measured by the
    renderer, so that neighbouring titles never run into each other.
    """
    names = _check(frame, columns, quadrants)
    parts = _by_quadrant(frame, quadrants)
    ncols = max(1, min(ncols, len(names)))
    nrows = math.ceil(len(names) / ncols)
    fig = Figure(figsize=(3.1 * ncols, 2.9 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    titles = {}
    for ax, name in zip(axes, names, strict=False):
        data = [_values(parts[q], name) for q in quadrants]
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
        ax.set_title(_title(name, comparison, _TITLE_CHARS), fontsize=8)
        titles[ax] = name
        ax.tick_params(axis="y", labelsize=7)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    _fit_titles(fig, titles, comparison, _TITLE_CHARS)
    return fig


#: Characters of an 8 pt title line in a 3.1 in panel, the first guess that _fit_titles refines.
_TITLE_CHARS = 40
#: Figure 6: action units per row, and inches per bar.
_AUS_PER_ROW = 9
_BAR_IN = 0.27


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
    adjusted p is at or under alpha for a pair. The AUs are laid out in rows of at most
    nine (sharing the y axis), and an AU that never activates in any quadrant shown (every
    rate 0) is marked "no activations" instead of an empty slot ("no data": no values).
    """
    names = _check(frame, columns, quadrants)
    parts = _by_quadrant(frame, quadrants)
    nrows = max(1, math.ceil(len(names) / _AUS_PER_ROW))
    per_row = math.ceil(len(names) / nrows)
    width = 0.8 / len(quadrants)
    fig_w = max(6.0, _BAR_IN * per_row * len(quadrants) / 0.8 + 1.4)
    fig = Figure(figsize=(fig_w, 0.7 + 2.5 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(nrows, 1, squeeze=False, sharey=True).ravel())
    stats = {}
    for n in names:
        vals = [_values(parts[q], n) for q in quadrants]
        mean = np.array([v.mean() if len(v) else np.nan for v in vals])
        se = np.array([v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else np.nan for v in vals])
        stats[n] = (vals, mean, se)
    counts = {q: max((len(stats[n][0][i]) for n in names), default=0) for i, q in enumerate(quadrants)}
    highest = 0.0
    for r, ax in enumerate(axes):
        row = names[r * per_row : (r + 1) * per_row]
        x = np.arange(len(row))
        top = np.zeros(len(row))
        for i, q in enumerate(quadrants):
            mean = np.array([stats[n][1][i] for n in row])
            se = np.array([stats[n][2][i] for n in row])
            ax.bar(x + (i - (len(quadrants) - 1) / 2) * width, mean, width, yerr=1.96 * se, capsize=2,
                   color=QUADRANT_COLOURS[q], alpha=0.85, label=f"{q} (n={counts[q]})" if r == 0 else None,
                   error_kw={"elinewidth": 0.8})
            top = np.fmax(top, np.nan_to_num(mean + 1.96 * np.nan_to_num(se)))
        highest = max(highest, float(top.max(initial=0.0)))
        for j, n in enumerate(row):
            flat = np.concatenate(stats[n][0])
            if not len(flat) or not np.any(flat != 0):
                ax.text(j, 0.01, "no data" if not len(flat) else "no activations", rotation=90, ha="center", va="bottom",
                        fontsize=7, color="0.4", style="italic", transform=ax.get_xaxis_transform())
            elif comparison is not None and any(
                c.table.filter((pl.col("feature") == n) & pl.col("reject")).height for c in comparison.comparisons
            ):
                ax.text(j, top[j] + 0.01, "*", ha="center", va="bottom", fontsize=11)
        ax.set_xticks(x, row, rotation=45, ha="right", fontsize=8)
        ax.set_xlim(-0.6, per_row - 0.4)  # every row at the same scale, the last one too
        ax.tick_params(axis="y", labelsize=8)
    axes[0].set_ylim(0, max(highest, 0.05) * 1.15 + 0.02)  # shared: room for the stars inside every row
    fig.supylabel("activation rate (mean, 95% CI)", fontsize=9)
    fig.legend(loc="outside upper right", ncols=len(quadrants), fontsize=8, frameon=False)
    fig.suptitle("Action unit activation rates per quadrant" + (" (* adjusted p <= alpha)" if comparison is not None else ""),
                 fontsize=10, x=0.02, ha="left")
    return fig


def write_figure5(frame: pl.DataFrame, out_dir: str | Path, stem: str = "figure5_features", **kwargs) -> list[Path]:
    """Figure 5 as PNG and SVG."""
    return save(figure5(frame, **kwargs), out_dir, stem)


def write_figure6(frame: pl.DataFrame, out_dir: str | Path, stem: str = "figure6_au_rates", **kwargs) -> list[Path]:
    """Figure 6 as PNG and SVG."""
    return save(figure6(frame, **kwargs), out_dir, stem)
