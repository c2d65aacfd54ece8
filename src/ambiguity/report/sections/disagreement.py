"""Table 2: pairwise disagreement of predicted labels."""

from __future__ import annotations

from ambiguity import tables as T
from ambiguity.report.context import TRAIN_HINT, Report, SectionSpec
from ambiguity.report.html import Section
from ambiguity.stats.quadrant_tables import table2


def build(rep: Report, sec: Section) -> None:
    sch = rep.scheme()
    res = table2(rep.store, splits=rep.s.splits, scheme=sch.name)
    wide = res.matrix()
    if sch.name == "crossfit":
        cap = f"Table 2: pairwise disagreement of predicted labels; {sch.caption()}; mean ± SD over the repeats."
    else:
        cap = (f"Table 2: pairwise disagreement of predicted labels; {sch.caption()}; "
               f"with {res.ci:.0%} bootstrap CIs ({res.n_boot} resamples of segments).")
    sec.files += rep.table("table2_disagreement", wide, cap)
    res.to_polars().write_csv(rep.out / "tables" / "table2_disagreement_long.csv")
    sec.markdown = T.to_markdown(wide, caption=cap)


SECTION = SectionSpec("table2", "Table 2: disagreement between models", build, TRAIN_HINT)
