"""The top of the ambiguity ranking (ambiguity.stats.score), components shown one by one."""

from __future__ import annotations

import polars as pl

from ambiguity import tables as T
from ambiguity.errors import AmbiguityError
from ambiguity.report.context import Report, SectionSpec
from ambiguity.report.html import Section
from ambiguity.stats.score import ambiguity_scores, default_embedding, ranked
from ambiguity.stores.tables import SEGMENTS

TOP = 20
#: Above this many segments the ranking leaves out its kNN component: it needs the neighbours of *every*
#: segment (n^1.5 d through the index, about 30x its 10^5 cost at 10^6; docs/scaling.md), which would be most
#: of the report's time. The caption says so, and `ambiguity rank --embedding GROUP` computes it.
KNN_UP_TO = 200_000


def build(rep: Report, sec: Section) -> None:
    n = rep.store.count(SEGMENTS)
    embedding = rep.s.text_group or default_embedding(rep.store)
    knn_note = ""
    if embedding and n > KNN_UP_TO:
        knn_note = (f" The kNN component is left out above {KNN_UP_TO:,} segments ({n:,} here: it needs the "
                    f"neighbours of every segment); `ambiguity rank --embedding {embedding}` includes it.")
        embedding = None
    # the report's own cross-fitted quadrants, when they are the ones the score uses (every labelled segment)
    same = rep.scheme().name == "crossfit" and not rep.s.splits and not rep.s.min_stability and rep.s.threshold == 0.5
    stability = _frames(rep) if same else None
    res = ambiguity_scores(rep.store, fusion=rep.s.fusion, embedding=embedding, stability=stability)
    df = ranked(rep.store, res, TOP).with_columns(
        pl.col("transcript").str.replace_all(r"[|\s]+", " ").str.slice(0, 80).alias("transcript"))
    missing = ", ".join(sorted(res.missing)) or "none"
    cap = (f"The {df.height} most ambiguous segments, out of sample (only segments with every available component "
           f"are ranked): the score is the weighted mean of the components "
           f"(weights {', '.join(f'{c} {w:g}' for c, w in res.weights.items() if c in res.available)}; "
           f"unavailable: {missing}); see docs/explore.md. `ambiguity rank` lists more, `ambiguity explore` shows them."
           + knn_note)
    sec.files += rep.table("most_ambiguous", df, cap)
    sec.markdown = T.to_markdown(df, caption=cap, digits=3)


def _frames(rep: Report) -> dict[str, pl.DataFrame]:
    out = {}
    for m in rep.models():
        try:
            out[m] = rep.quadrants(m)
        except AmbiguityError:  # the score computes (or reports missing) what the report could not
            continue
    return out


SECTION = SectionSpec("ambiguous", "The most ambiguous segments", build,
                      "run `ambiguity train` (the score needs at least one component; see docs/explore.md)")
