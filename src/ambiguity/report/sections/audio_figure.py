"""Figure 5: audio feature distributions per quadrant."""

from __future__ import annotations

import math

import polars as pl

from ambiguity.report.context import AUDIO_HINT, Report, SectionSpec
from ambiguity.report.fig_features import write_figure5
from ambiguity.report.html import Section
from ambiguity.stats.results import QuadrantComparison

#: Panels of Figure 5 when no columns are chosen: a figure of every eGeMAPS functional (88 panels, 22 rows) is
#: unreadable, and drawing it was most of a report's time; Table 7 lists every feature.
MAX_PANELS = 12


def strongest(qc: QuadrantComparison, columns: list[str], n: int = MAX_PANELS) -> list[str]:
    """The ``n`` columns with the smallest adjusted p over the compared pairs, best first (ties, such as
    adjusted p = 1, by the unadjusted p; untested ones last; then the table's order)."""
    best = {c: [math.inf, math.inf] for c in columns}
    for c in qc.comparisons:
        for feature, p_adj, p in c.table.select("feature", "p_adj", "p").iter_rows():
            for i, v in enumerate((p_adj, p)):
                if feature in best and v is not None and v == v:
                    best[feature][i] = min(best[feature][i], v)
    return sorted(columns, key=lambda f: best[f])[:n]


def build(rep: Report, sec: Section) -> None:
    compared = rep.audio_comparison()
    title = "Feature distributions per quadrant"

    def numeric(feats: pl.DataFrame) -> list[str]:
        nonlocal title
        if rep.s.audio_columns:
            return rep.s.audio_columns
        cols = [c for c, t in feats.schema.items() if t.is_numeric()]
        if len(cols) <= MAX_PANELS:
            return cols
        title = f"The {MAX_PANELS} of {len(cols)} features with the smallest adjusted p, per quadrant (all in Table 7)"
        return strongest(compared[2], cols)

    def write(frame, out, **kw):
        return write_figure5(frame, out, title=title, **kw)

    rep.feature_figure(sec, compared, numeric, write)


SECTION = SectionSpec("figure5", "Figure 5: audio feature distributions per quadrant", build, AUDIO_HINT)
