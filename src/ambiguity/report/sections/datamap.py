"""Training dynamics: the data map."""

from __future__ import annotations

from ambiguity.report.context import TRAIN_HINT, Report, SectionSpec
from ambiguity.report.fig_quadrants import write_datamap
from ambiguity.report.html import Section


def build(rep: Report, sec: Section) -> None:
    sec.files += write_datamap(rep.store, rep.out / "figures")


SECTION = SectionSpec("datamap", "Training dynamics (data map)", build, TRAIN_HINT)
