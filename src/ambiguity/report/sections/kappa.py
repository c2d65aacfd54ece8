"""Table 5: annotator agreement (Cohen's kappa) per quadrant and round."""

from __future__ import annotations

from ambiguity.annotate.records import task_agreement
from ambiguity.annotate.tasks import task_names
from ambiguity.errors import StatsError
from ambiguity.report.context import Report, SectionSpec
from ambiguity.report.html import Section
from ambiguity.stores.tables import ANNOTATIONS, TASKS


def build(rep: Report, sec: Section) -> None:
    names = task_names(rep.store) if TASKS.exists(rep.store) else []
    task = rep.s.task or (names[-1] if names else None)
    if task is None or not ANNOTATIONS.exists(rep.store):
        raise StatsError("no annotations in the store")
    res = task_agreement(rep.store, task)
    sec.files += rep.table("table5_kappa", res.to_polars(), f"Table 5: Cohen's kappa per quadrant and round (task {task}).", res.to_latex())
    sec.markdown = res.to_markdown()


SECTION = SectionSpec("table5", "Table 5: annotator agreement (Cohen's kappa)", build,
                      "run `ambiguity sample`, `ambiguity annotate serve` and collect two annotators' answers")
