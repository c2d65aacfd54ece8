"""Figure 3: text embeddings near the class boundary, with the nearest-neighbour tests."""

from __future__ import annotations

from ambiguity.report.context import Report, SectionSpec
from ambiguity.report.fig_boundary import write_figure3
from ambiguity.report.html import Section
from ambiguity.stats.boundary_tests import boundary


def build(rep: Report, sec: Section) -> None:
    model = rep.pick(rep.s.text_model, "text")
    group = rep.s.text_group or (list(rep.summary().get(model, {}).get("groups") or []) or [model])[0]
    res = boundary(rep.store, group, quadrants=rep.quadrants(model), umap=True,
                   quadrants_note=rep.quadrant_result(model).scheme.caption(),
                   n_permutations=rep.s.permutations)
    sec.files += write_figure3(res, rep.out / "figures")
    sec.files += rep.table("boundary_summary", res.summary, f"Nearest-neighbour boundary analysis of {group} by quadrant of {model}.")
    sec.files += rep.table("boundary_tests", res.tests, res.describe())
    sec.markdown = res.to_markdown()


SECTION = SectionSpec("figure3", "Figure 3: text embeddings near the class boundary", build,
                      "run `ambiguity extract --modality text` and train a text model")
