"""Figure 5: audio feature distributions per quadrant."""

from __future__ import annotations

import polars as pl

from ambiguity.report.context import AUDIO_HINT, Report, SectionSpec
from ambiguity.report.fig_features import write_figure5
from ambiguity.report.html import Section


def build(rep: Report, sec: Section) -> None:
    def numeric(feats: pl.DataFrame) -> list[str]:
        return rep.s.audio_columns or [c for c, t in feats.schema.items() if t.is_numeric()]

    rep.feature_figure(sec, rep.audio_comparison(), numeric, write_figure5)


SECTION = SectionSpec("figure5", "Figure 5: audio feature distributions per quadrant", build, AUDIO_HINT)
