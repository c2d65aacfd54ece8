"""Tables 3, 6 and 7: audio features between quadrants."""

from __future__ import annotations

from ambiguity.report.context import AUDIO_HINT, Report, SectionSpec
from ambiguity.report.html import Section


def build(rep: Report, sec: Section) -> None:
    model, groups, qc = rep.audio_comparison()
    full = qc.wide()
    sig = rep.significant(full)
    head = f"audio model {model} vs {rep.s.fusion}, features of {', '.join(groups)}. {qc.describe()}"
    kept = [c for c in sig.columns if "green vs blue" in c or "red vs blue" in c or c == "feature"]
    sec.files += rep.table("table3_audio_significant", sig.select(kept) if sig.height else sig,
                           f"Table 3: audio features with an adjusted p <= {rep.s.alpha} (red vs blue or green vs blue). {head}")
    sec.files += rep.table("table7_audio_full", full, f"Table 7: every audio feature, red vs blue and green vs blue. {head}",
                           qc.to_latex(label="tab:table7"))
    rg = qc[("red", "green")]
    sec.files += rep.table("table6_red_vs_green", rg.display(), f"Table 6: red vs green. {rg.describe()}", rg.to_latex(label="tab:table6"))
    sec.markdown = qc.to_markdown()


SECTION = SectionSpec("audio", "Tables 3, 6, 7: audio features between quadrants", build, AUDIO_HINT)
