"""Figure 2 (confidence quadrants) and the segments per quadrant."""

from __future__ import annotations

import polars as pl

from ambiguity import tables as T
from ambiguity.constants import QUADRANTS
from ambiguity.report.context import TRAIN_HINT, Report, SectionSpec
from ambiguity.report.fig_quadrants import write_figure2
from ambiguity.report.html import Section
from ambiguity.stats.assign import rule
from ambiguity.stats.quadrant_tables import model_classes


def quadrant_counts(rep: Report, sec: Section) -> None:
    rows = []
    for m in rep.models():
        q = rep.quadrants(m)
        counts: dict[str, float] = {c: int((q["quadrant"] == c).sum()) for c in QUADRANTS}
        if "share_red" in q.columns:  # crossfit: each segment's share of repeats in a quadrant, summed
            counts |= {f"{c}_per_repeat": round(float(q[f"share_{c}"].sum()), 1) for c in QUADRANTS}
        rows.append({"unimodal": m, **counts, "n": q.height})
    df = pl.DataFrame(rows)
    cap = f"Segments per quadrant (unimodal vs {rep.s.fusion}; {rule(model_classes(rep.store, rep.s.fusion), rep.s.threshold)}); {rep.how()}."
    if "red_per_repeat" in df.columns:
        cap += (" red .. yellow count each segment once, by its modal quadrant; *_per_repeat: the mean count per "
                "repeat (each repeat places every segment once, as one fixed-split fit does).")
    sec.files += rep.table("quadrant_counts", df, cap)
    sec.markdown = T.to_markdown(df, caption=cap)


def build(rep: Report, sec: Section) -> None:
    sec.files += write_figure2(rep.store, rep.out / "figures", rep.s.fusion, rep.models(), rep.s.splits, rep.s.threshold,
                               scheme=rep.s.scheme, min_stability=rep.s.min_stability,
                               results={m: rep.quadrant_result(m) for m in rep.models()})  # computed once for the report
    quadrant_counts(rep, sec)


SECTION = SectionSpec("figure2", "Figure 2: confidence quadrants", build, TRAIN_HINT)
