"""The report's sections, in the order of the report.

Adding a section: a module in this package that defines ``SECTION = SectionSpec(key, title, build, hint)``
(see ``report.context``), and its name as one line of ``ORDER`` below (``tests/report/test_sections.py``
fails on a module left out).
"""

from __future__ import annotations

from importlib import import_module

from ambiguity.report.context import SectionSpec

ORDER = (
    "performance",  # Table 1
    "disagreement",  # Table 2
    "quadrants",  # Figure 2 and the segments per quadrant
    "datamap",
    "audio_tables",  # Tables 3, 6, 7
    "audio_figure",  # Figure 5
    "au_tables",  # Tables 4, 8
    "au_figure",  # Figure 6
    "boundary",  # Figure 3
    "kappa",  # Table 5
    "human",  # people as predictors (imported judgments)
    "attribution",
    "conflicts",
    "ambiguous",
    "flagged",  # only with a flag column
)

SECTIONS: tuple[SectionSpec, ...] = tuple(import_module(f"{__name__}.{name}").SECTION for name in ORDER)
