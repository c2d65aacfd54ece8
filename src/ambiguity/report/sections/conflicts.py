"""Conflict scores of the unimodal models: the conflict test set's size and the correlations."""

from __future__ import annotations

import polars as pl

from ambiguity import tables as T
from ambiguity.report.context import TRAIN_HINT, Report, SectionSpec
from ambiguity.report.html import Section
from ambiguity.stats.conflicts import DEFAULT_THRESHOLD, INTERVALS, conflict_correlations, conflict_scores


def _stability(rep: Report) -> dict[str, pl.DataFrame] | None:
    """The report's cross-fitted quadrant frames, when they are what conflict_correlations would compute itself
    (every labelled segment, threshold 0.5, no stability cut): each is 3 x N prediction rows read and joined."""
    s = rep.s
    if rep.scheme().name != "crossfit" or s.splits or s.min_stability or s.threshold != 0.5:
        return None
    return {m: rep.quadrants(m).select("segment_id", "stability", "disagreement_p") for m in rep.models()}


def build(rep: Report, sec: Section) -> None:
    s = rep.s
    # what this section uses: the conflict pair and "predicted" of every segment were a third of its memory at 10^6
    sc = conflict_scores(rep.store, rep.models(), s.splits, scheme=rep.scheme().name).select("segment_id", "jsd", "margin", "scheme")
    if s.flag:
        flags = rep.flags()
        sc = sc.with_columns(pl.col("segment_id").replace_strict(flags, default="").alias(s.flag))
    by = [s.flag] if s.flag else []
    agg = [pl.len().alias("n"), pl.col("jsd").mean().alias("mean_jsd"), pl.col("margin").mean().alias("mean_margin"),
           (pl.col("margin") >= DEFAULT_THRESHOLD).sum().alias("in_conflict_set")]
    summary = (sc.group_by(by).agg(agg).sort(by) if by else sc.select(agg))
    where = ("crossfit scheme: every labelled segment, each model's out-of-fold class distribution averaged over the repeats"
             if sc["scheme"][0] == "crossfit" else f"fixed scheme: the {'+'.join(s.splits or ('test',))} segments only")
    cap = (f"Conflict scores of {', '.join(rep.models())} ({where}): jsd = Jensen-Shannon divergence of their predicted "
           f"class distributions (bits), margin = the most confident opposing pair; the conflict test set "
           f"(`ambiguity conflicts`) has margin >= {DEFAULT_THRESHOLD}.")
    sec.files += rep.table("conflict_summary", summary, cap)
    corr = conflict_correlations(rep.store, sc.drop(by) if by else sc, stability=_stability(rep), unimodal=rep.models(),
                                 fusion=s.fusion)
    cap2 = f"Spearman correlation of the conflict scores with crossfit stability and annotator disagreement ({INTERVALS})."
    sec.files += rep.table("conflict_correlations", corr, cap2)
    sec.markdown = T.to_markdown(summary, caption=cap, digits=3) + "\n" + T.to_markdown(corr, caption=cap2, digits=3)


SECTION = SectionSpec("conflicts", "Conflict score: how confidently the unimodal models disagree", build, TRAIN_HINT)
