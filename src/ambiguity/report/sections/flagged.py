"""Share of flagged segments (e.g. planted conflicts) that land in red or green, vs the others.
Only in a report whose settings name a flag column."""

from __future__ import annotations

import polars as pl

from ambiguity import tables as T
from ambiguity.errors import AmbiguityError, StatsError
from ambiguity.report.context import Report, SectionSpec
from ambiguity.report.html import Section
from ambiguity.stats.quadrant_tables import quadrants
from ambiguity.stats.stability import wilson_interval


def build(rep: Report, sec: Section) -> None:
    s = rep.s
    if not s.flag:
        raise StatsError("no flag column configured")
    flags = rep.flags()
    rows = []
    for m in rep.models():
        res = rep.quadrant_result(m)
        runs = [(res.scheme.name, res.frame)]
        if res.scheme.name == "crossfit":  # beside it, the fixed split on its held-out segments: test (val chose the epoch)
            try:
                runs.append(("fixed", quadrants(rep.store, m, s.fusion, ("test",), s.threshold, scheme="fixed").frame))
            except AmbiguityError:
                pass
        for scheme, frame in runs:
            q = frame.with_columns(pl.col("segment_id").replace_strict(flags, default="").alias("flag"))
            for value in sorted(set(q["flag"].to_list())):
                sub = q.filter(pl.col("flag") == value)
                dis = int(sub["quadrant"].is_in(["red", "green"]).sum())
                lo, hi = wilson_interval(dis, sub.height)
                rows.append({"unimodal": m, "scheme": scheme, s.flag: value or "(none)", "n": sub.height,
                             "red_or_green": dis, "share": dis / sub.height if sub.height else float("nan"),
                             "share_lo": float(lo), "share_hi": float(hi),
                             "mean_disagreement_p": float(sub["disagreement_p"].mean()) if "disagreement_p" in sub.columns else None})
    df = pl.DataFrame(rows, infer_schema_length=None)
    with_fixed = df.height and "fixed" in df["scheme"].to_list() and rep.scheme().name == "crossfit"
    cap = (f"Share of segments in a disagreement quadrant (red or green; crossfit: modal quadrant), by metadata column "
           f"{s.flag!r}, with a 95% Wilson interval over segments; {rep.how()}"
           + ("; fixed rows: the fixed split's test segments (held out; val chose the epoch)" if with_fixed else "")
           + ". mean_disagreement_p: the mean over segments of the share of repeats in red or green.")
    sec.files += rep.table("flagged_disagreement", df, cap)
    sec.markdown = T.to_markdown(df, caption=cap, digits=3)
    rep.cache["flagged"] = df


SECTION = SectionSpec("flagged", lambda s: f"Disagreement among segments flagged by {s.flag!r}", build,
                      "set the flag column in the report settings", enabled=lambda s: bool(s.flag))
