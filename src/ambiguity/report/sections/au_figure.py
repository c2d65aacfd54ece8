"""Figure 6: facial activation rates per quadrant."""

from __future__ import annotations

import polars as pl

from ambiguity.report.context import VIDEO_HINT, Report, SectionSpec
from ambiguity.report.fig_features import write_figure6
from ambiguity.report.html import Section
from ambiguity.stats.frames import select_columns


def build(rep: Report, sec: Section) -> None:
    def rates(feats: pl.DataFrame) -> list[str]:
        return select_columns(feats, rep.s.au_columns, exclude=("segment_id",))

    rep.feature_figure(sec, rep.au_comparison(), rates, write_figure6)


SECTION = SectionSpec("figure6", "Figure 6: activation rates per quadrant", build, VIDEO_HINT)
