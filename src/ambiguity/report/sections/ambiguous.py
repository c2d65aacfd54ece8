"""The top of the ambiguity ranking (ambiguity.stats.score), components shown one by one."""

from __future__ import annotations

import polars as pl

from ambiguity import tables as T
from ambiguity.report.context import Report, SectionSpec
from ambiguity.report.html import Section
from ambiguity.stats.score import ambiguity_scores, default_embedding, ranked

TOP = 20


def build(rep: Report, sec: Section) -> None:
    res = ambiguity_scores(rep.store, fusion=rep.s.fusion, embedding=rep.s.text_group or default_embedding(rep.store))
    df = ranked(rep.store, res, TOP).with_columns(
        pl.col("transcript").str.replace_all(r"[|\s]+", " ").str.slice(0, 80).alias("transcript"))
    missing = ", ".join(sorted(res.missing)) or "none"
    cap = (f"The {df.height} most ambiguous segments, out of sample (only segments with every available component "
           f"are ranked): the score is the weighted mean of the components "
           f"(weights {', '.join(f'{c} {w:g}' for c, w in res.weights.items() if c in res.available)}; "
           f"unavailable: {missing}); see docs/explore.md. `ambiguity rank` lists more, `ambiguity explore` shows them.")
    sec.files += rep.table("most_ambiguous", df, cap)
    sec.markdown = T.to_markdown(df, caption=cap, digits=3)


SECTION = SectionSpec("ambiguous", "The most ambiguous segments", build,
                      "run `ambiguity train` (the score needs at least one component; see docs/explore.md)")
