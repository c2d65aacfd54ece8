"""Table 1: accuracy and macro F1 per model."""

from __future__ import annotations

from ambiguity import tables as T
from ambiguity.report.context import TRAIN_HINT, Report, SectionSpec
from ambiguity.report.html import Section
from ambiguity.stats.quadrant_tables import table1


def build(rep: Report, sec: Section) -> None:
    sch = rep.scheme()
    df = table1(rep.store, splits=rep.s.splits, scheme=sch.name)
    extra = "; mean and SD over the repeats" if sch.name == "crossfit" else ""
    cap = f"Table 1: accuracy and macro F1 per model; {sch.caption()}{extra}."
    sec.files += rep.table("table1_performance", df, cap)
    sec.markdown = T.to_markdown(df, caption=cap, digits=3)


SECTION = SectionSpec("table1", "Table 1: performance per model", build, TRAIN_HINT)
