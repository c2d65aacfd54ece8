"""Figure 2 (confidence quadrants) and the training-dynamics data map, as PNG and SVG.

Built on ``matplotlib.figure.Figure`` with the Agg canvas: no pyplot state, no
display needed. Scatter points are rasterised so that an SVG of 100k points
stays small; above DENSITY_ABOVE points a panel is a density (Figure 2) or a hexbin (the data map), with
the counts unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ambiguity.constants import QUADRANT_COLOURS, QUADRANTS
from ambiguity.errors import StatsError
from ambiguity.report.fig_boundary import save
from ambiguity.stats.assign import rule
from ambiguity.stats.quadrant_tables import quadrant_counts

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore


_BINS = np.linspace(0, 1, 21)
#: Above this many points a panel is a density (a scatter of 10^6 points is a blot): see _density.
DENSITY_ABOVE = 20_000
#: Bins per axis of the density.
DENSITY_BINS = 200


def _codes(q: pl.Series) -> np.ndarray:
    """The quadrant column as codes into QUADRANTS (-1: none), with no Python string per point."""
    return q.replace_strict(list(QUADRANTS), list(range(len(QUADRANTS))), default=-1, return_dtype=pl.Int8).to_numpy()


def _density(ax, x: np.ndarray, y: np.ndarray, code: np.ndarray) -> None:
    """One cell per bin, coloured by the quadrant with most points in it, as opaque as the log of its count."""
    ok = np.isfinite(x) & np.isfinite(y) & (code >= 0)
    bx = np.clip((x[ok] * DENSITY_BINS).astype(np.int64), 0, DENSITY_BINS - 1)
    by = np.clip((y[ok] * DENSITY_BINS).astype(np.int64), 0, DENSITY_BINS - 1)
    cells = (code[ok].astype(np.int64) * DENSITY_BINS + by) * DENSITY_BINS + bx
    counts = np.bincount(cells, minlength=len(QUADRANTS) * DENSITY_BINS**2).reshape(len(QUADRANTS), DENSITY_BINS, DENSITY_BINS)
    total = counts.sum(axis=0)
    best = counts.argmax(axis=0)
    rgba = np.zeros((DENSITY_BINS, DENSITY_BINS, 4))
    colours = np.array([to_rgba(QUADRANT_COLOURS[v]) for v in QUADRANTS])
    rgba[...] = colours[best]
    top = max(int(total.max()), 1)
    rgba[..., 3] = np.where(total > 0, 0.3 + 0.7 * np.log1p(total) / np.log1p(top), 0.0)
    ax.imshow(rgba, origin="lower", extent=(0, 1, 0, 1), interpolation="nearest", aspect="auto", zorder=2)


def stability_alpha(stability) -> np.ndarray:
    """Point opacity for a stability in [0, 1]: 0.15 + 0.75 * stability."""
    return 0.15 + 0.75 * np.clip(np.asarray(stability, dtype=np.float64), 0, 1)


def figure2(frames: Mapping[str, pl.DataFrame], fusion: str, threshold: float = 0.5, caption: str | None = None,
            n_classes: int = 2) -> Figure:
    """One panel per unimodal model: its confidence in the correct label (x) against the fusion model's (y).

    ``frames`` maps a unimodal model's name to its :func:`load_quadrants`
    frame. Each panel shows the quadrants in their colours, the threshold
    lines, the diagonal, stacked marginal histograms and the count per
    quadrant. A cross-fitted frame (with ``stability``) places each segment at
    its mean probabilities, coloured by its modal quadrant, with opacity
    growing with its stability (0.15 at the least stable, 0.9 at 1).
    ``caption`` (the scheme) is added to the title. With more than two classes a model is right when its
    argmax is the true label, so there are no threshold lines and the title and axes say so.
    """
    if not frames:
        raise StatsError("figure 2 needs at least one unimodal model")
    k = len(frames)
    fig = Figure(figsize=(4.6 * k, 5.4), layout="constrained")
    FigureCanvasAgg(fig)
    outer = fig.add_gridspec(1, k)
    for i, (name, df) in enumerate(frames.items()):
        g = outer[i].subgridspec(2, 2, width_ratios=[4, 1], height_ratios=[1, 4], wspace=0.04, hspace=0.04)
        ax = fig.add_subplot(g[1, 0])
        top = fig.add_subplot(g[0, 0], sharex=ax)
        right = fig.add_subplot(g[1, 1], sharey=ax)
        _panel(ax, top, right, df, name, fusion, threshold if n_classes <= 2 else None)
    title = f"Unimodal vs fusion ({fusion}) confidence in the correct label; {rule(n_classes, threshold)}"
    if any("stability" in df.columns for df in frames.values()):
        title += "\nmean p over the repeats; colour: modal quadrant; opacity: stability"
    fig.suptitle(title + (f"\n{caption}" if caption else ""), fontsize=9)
    return fig


def _panel(ax, top, right, df: pl.DataFrame, name: str, fusion: str, t: float | None) -> None:
    x, y, code = df["p_unimodal"].to_numpy(), df["p_fusion"].to_numpy(), _codes(df["quadrant"])
    if t is not None:  # two classes: unimodal right is x > t, fusion right is y > t (quadrant backgrounds)
        spans = {"yellow": (0, t, 0, t), "red": (t, 1, 0, t), "green": (0, t, t, 1), "blue": (t, 1, t, 1)}
        for quad, (x0, x1, y0, y1) in spans.items():
            ax.fill_between([x0, x1], y0, y1, color=QUADRANT_COLOURS[quad], alpha=0.08, linewidth=0)
        ax.axvline(t, color="0.4", lw=0.8)
        ax.axhline(t, color="0.4", lw=0.8)
    ax.plot([0, 1], [0, 1], ls="--", color="0.3", lw=0.8, label="diagonal")
    stab = df["stability"].to_numpy() if "stability" in df.columns else None
    n = len(code)
    if n > DENSITY_ABOVE:
        _density(ax, x, y, code)
    for i, quad in enumerate(QUADRANTS if n <= DENSITY_ABOVE else ()):
        m = code == i
        if m.any():
            if stab is None:
                ax.scatter(x[m], y[m], s=9, color=QUADRANT_COLOURS[quad], alpha=0.75, linewidths=0, rasterized=True)
            else:  # opacity per point: how often the segment lands in its modal quadrant
                rgba = np.tile(to_rgba(QUADRANT_COLOURS[quad]), (int(m.sum()), 1))
                rgba[:, 3] = stability_alpha(stab[m])
                ax.scatter(x[m], y[m], s=9, c=rgba, linewidths=0, rasterized=True)
    counts = quadrant_counts(df["quadrant"])
    # Counts go in a legend under the panel, where they cannot hide points.
    handles = [Patch(color=QUADRANT_COLOURS[quad], alpha=0.8, label=f"{quad} {counts[quad]} ({counts[quad] / max(n, 1):.0%})")
               for quad in QUADRANTS]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8,
              frameon=False, handlelength=1.0, columnspacing=1.0)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    how = "" if t is not None else " (right: argmax)"
    ax.set_xlabel(f"{name}: p(correct label){how}")
    ax.set_ylabel(f"{fusion}: p(correct label){how}")
    # Stacked marginal histograms, coloured by quadrant.
    xs = [x[code == i] for i in range(len(QUADRANTS))]
    ys = [y[code == i] for i in range(len(QUADRANTS))]
    cols = [QUADRANT_COLOURS[quad] for quad in QUADRANTS]
    top.hist(xs, bins=_BINS, stacked=True, color=cols, alpha=0.8)
    right.hist(ys, bins=_BINS, stacked=True, color=cols, alpha=0.8, orientation="horizontal")
    top.set_title(f"{name} (n = {n})", fontsize=10)
    top.tick_params(labelbottom=False, labelsize=7)
    right.tick_params(labelleft=False, labelsize=7)
    for a in (top, right):
        for s in ("top", "right"):
            a.spines[s].set_visible(False)


def datamap(dynamics: pl.DataFrame, models: Sequence[str] | None = None) -> Figure:
    """Dataset cartography (Swayamdipta et al. 2020): per model, variability (x) vs confidence (y), coloured by correctness.
    Above DENSITY_ABOVE segments a panel is a hexbin, each hexagon coloured by the mean correctness of its
    segments (a scatter of 10^6 points is a blot); the title's n counts every segment either way."""
    present = list(dict.fromkeys(dynamics["model"].to_list()))
    models = list(models) if models else present
    missing = [m for m in models if m not in present]
    if missing or not models:
        raise StatsError(f"no training dynamics for model(s) {', '.join(missing) or '(none)'}; have: {', '.join(present) or 'none'}")
    k = len(models)
    fig = Figure(figsize=(4.2 * k + 0.8, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, k, squeeze=False, sharey=True)[0]
    sc, dense = None, False
    for ax, m in zip(axes, models, strict=True):
        d = dynamics.filter(pl.col("model") == m)
        x, y, c = d["variability"].to_numpy(), d["confidence"].to_numpy(), d["correctness"].to_numpy()
        right = max(0.5, float(cast("float | None", d["variability"].max()) or 0) * 1.05)
        if d.height > DENSITY_ABOVE:
            dense = True
            sc = ax.hexbin(x, y, C=c, reduce_C_function=np.mean, gridsize=DENSITY_BINS // 4, extent=(0, right, 0, 1),
                           cmap="RdYlBu", vmin=0, vmax=1, mincnt=1, linewidths=0)
        else:
            sc = ax.scatter(x, y, c=c, cmap="RdYlBu", vmin=0, vmax=1, s=8, alpha=0.8, linewidths=0, rasterized=True)
        epochs = d["epochs"][0] if d.height else 0
        ax.set_title(f"{m} (n = {d.height}, {epochs} epochs)", fontsize=10)
        ax.set_xlabel("variability (SD of p(correct) over epochs)")
        ax.set_xlim(0, right)
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("confidence (mean p(correct) over epochs)")
    assert sc is not None  # one scatter per model, at least one model
    label = "correctness (share of epochs right)" + ("; hexagons: mean of their segments" if dense else "")
    fig.colorbar(sc, ax=list(axes), label=label, shrink=0.9)
    fig.suptitle("Training dynamics data map (train split): top left easy to learn, bottom left hard to learn, "
                 "high variability ambiguous", fontsize=10)
    return fig


def write_figure2(store: FeatureStore, out_dir: str | Path, fusion: str = "fusion", unimodal: Sequence[str] | None = None,
                  splits=None, threshold: float = 0.5, *, scheme: str = "auto", min_stability: float | None = None,
                  results: Mapping[str, Any] | None = None) -> list[Path]:
    """Figure 2 from the store's predictions (``scheme`` as in :func:`ambiguity.stats.quadrant_tables.quadrants`).
    ``results``: the quadrants of each unimodal model, already computed with these settings (the report's),
    so that they are not read and assigned again."""
    from ambiguity.stats.quadrant_tables import quadrants, resolve_model, unimodal_models

    if results:
        res = dict(results)
    else:
        names = [resolve_model(store, u) for u in unimodal] if unimodal else sorted(unimodal_models(store))
        if not names:
            raise StatsError("no unimodal model in the predictions table: run `ambiguity train` first")
        res = {u: quadrants(store, u, fusion, splits, threshold, scheme=scheme, min_stability=min_stability) for u in names}
    first = next(iter(res.values()))
    cap = first.scheme.caption()
    return save(figure2({u: r.frame for u, r in res.items()}, resolve_model(store, fusion), threshold, caption=cap,
                        n_classes=first.n_classes),
                out_dir, "figure2_quadrants")


def write_datamap(store: FeatureStore, out_dir: str | Path, models: Sequence[str] | None = None) -> list[Path]:
    from ambiguity.models.predictions import read_dynamics
    from ambiguity.stats.quadrant_tables import ordered_models, resolve_model

    dyn = read_dynamics(store, [resolve_model(store, m) for m in models] if models else None)
    order = [m for m in ordered_models(store) if m in set(dyn["model"].to_list())] if not models else [resolve_model(store, m) for m in models]
    return save(datamap(dyn, order), out_dir, "datamap")


__all__ = ["datamap", "figure2", "save", "write_datamap", "write_figure2"]
