"""Tables 4 and 8: facial activation rates between quadrants."""

from __future__ import annotations

from ambiguity.report.context import VIDEO_HINT, Report, SectionSpec
from ambiguity.report.html import Section


def build(rep: Report, sec: Section) -> None:
    model, groups, qc = rep.au_comparison()
    full = qc.wide()
    head = f"video model {model} vs {rep.s.fusion}, activation rates from {', '.join(groups)}. {qc.describe()}"
    sec.files += rep.table("table4_au_significant", rep.significant(full),
                           f"Table 4: activation rates with an adjusted p <= {rep.s.alpha}. {head}")
    sec.files += rep.table("table8_au_full", full, f"Table 8: every activation rate, red vs blue and green vs blue. {head}",
                           qc.to_latex(label="tab:table8"))
    sec.markdown = qc.to_markdown()


SECTION = SectionSpec("au", "Tables 4, 8: facial activation rates between quadrants", build, VIDEO_HINT)
