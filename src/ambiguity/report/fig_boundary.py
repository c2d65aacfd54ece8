"""Figure 3: a 2-D projection of an embedding space, one panel per class, points coloured by quadrant.

Built on ``matplotlib.figure.Figure`` with the Agg canvas (no pyplot state, no
display). Points are rasterised so that an SVG of many segments stays small.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ambiguity.constants import QUADRANT_COLOURS
from ambiguity.errors import StatsError
from ambiguity.stats.results import BoundaryResult

# The paper's colours, as in Figure 2.
DRAW_ORDER = ("blue", "yellow", "green", "red")  # disagreement on top
NO_QUADRANT = "#b0b0b0"


def figure3(data: BoundaryResult | pl.DataFrame, x: str = "umap_x", y: str = "umap_y", title: str | None = None) -> Figure:
    """One panel per label; each segment at its projected position, coloured by quadrant.

    ``data`` is a :class:`BoundaryResult` computed with ``umap=True`` or a frame with
    ``label``, ``quadrant`` and the two coordinate columns. Segments without a quadrant
    (e.g. training segments) are drawn small and grey behind the others.
    """
    df = data.segments if isinstance(data, BoundaryResult) else data
    missing = [c for c in ("label", "quadrant", x, y) if c not in df.columns]
    if missing:
        hint = " (compute the boundary analysis with umap=True)" if x in missing or y in missing else ""
        raise StatsError(f"figure 3 needs column(s) {', '.join(missing)}{hint}")
    df = df.filter(pl.col(x).is_not_null() & pl.col(y).is_not_null() & pl.col("label").is_not_null())
    if df.height == 0:
        raise StatsError("figure 3: no segment has a label and a projected position")
    labels = sorted(df["label"].unique().to_list())
    fig = Figure(figsize=(4.4 * len(labels), 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(labels), squeeze=False, sharex=True, sharey=True)[0]
    for ax, lab in zip(axes, labels, strict=True):
        part = df.filter(pl.col("label") == lab)
        q = np.asarray(part["quadrant"].to_list(), dtype=object)
        px, py = part[x].to_numpy(), part[y].to_numpy()
        none = np.array([v is None for v in q], dtype=bool)
        if none.any():
            ax.scatter(px[none], py[none], s=4, color=NO_QUADRANT, alpha=0.4, linewidths=0, rasterized=True, label=f"no quadrant ({int(none.sum())})")
        for quad in DRAW_ORDER:
            m = q == quad
            if m.any():
                ax.scatter(px[m], py[m], s=10, color=QUADRANT_COLOURS[quad], alpha=0.8, linewidths=0, rasterized=True, label=f"{quad} ({int(m.sum())})")
        ax.set_title(f"label {lab} (n = {part.height})", fontsize=10)
        ax.set_xlabel(x)
        ax.legend(fontsize=7, loc="best", markerscale=1.5, frameon=False)
    axes[0].set_ylabel(y)
    if title:  # wrapped to the figure's width (about 13 characters an inch at 10 pt): a long caption is not cut off
        fig.suptitle(textwrap.fill(title, width=int(13 * 4.4 * len(labels))), fontsize=10)
    return fig


def save(fig: Figure, out_dir: str | Path, stem: str, *, dpi: int = 150) -> list[Path]:
    """Write ``stem.png`` and ``stem.svg`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.png", out / f"{stem}.svg"]
    # The layout is solved once, here, and both files keep it: savefig with a layout engine draws the whole
    # figure once more just to solve it, and the SVG would solve it again (the solve was about a third of
    # each save in a report profile: Text._get_layout under the layout engine).
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.execute(fig)
    fig.set_layout_engine("none")
    try:
        fig.savefig(paths[0], dpi=dpi)
        fig.savefig(paths[1])
    finally:
        fig.set_layout_engine(engine)
    return paths


def write_figure3(data: BoundaryResult | pl.DataFrame, out_dir: str | Path, stem: str = "figure3_boundary", **kwargs) -> list[Path]:
    """Figure 3 as PNG and SVG; returns the two paths."""
    if isinstance(data, BoundaryResult) and "title" not in kwargs:
        kwargs["title"] = f"{data.group or 'embeddings'}: UMAP ({data.metric}), coloured by quadrant"
    return save(figure3(data, **kwargs), out_dir, stem)
