"""Figure 3: text embeddings near the class boundary, with the nearest-neighbour tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from ambiguity.report.context import Report, SectionSpec
from ambiguity.report.fig_boundary import write_figure3
from ambiguity.report.html import Section
from ambiguity.stats.boundary_store import boundary

#: Below this many segments Figure 3 projects with PCA: UMAP's numba compile costs ~15 s of CPU in every
#: process (measured: 15 s user for 41 points, the same on a second run; the compile is not cached), which
#: was half of a 50-segment report's time, for a picture of a few dozen points.
UMAP_MIN = 300
#: Above this many segments the section searches the neighbours of a seeded sample of QUERY_SAMPLE segments
#: per quadrant only, exactly, among ALL segments, in one streamed pass over the store (cost QUERY_SAMPLE x 4
#: x n x d multiply-adds: linear in n; at 10^6 the search takes 64 CPU s and 0.2 GB above the rest, where every
#: segment's neighbours cost ~46,000 CPU s exactly or ~5 CPU minutes by the index; docs/benchmarks.md).
#: Why this is sound: each sampled segment's other-label share and margin are exactly what the full analysis
#: gives it (its neighbours are searched among all segments, exactly), so each quadrant's sample mean is an
#: unbiased estimate of the quadrant's mean, and each test is an exact permutation test on the sample. At
#: 1,000 per quadrant the standard error of a difference in means is sd x sqrt(2 / 1000) = 0.045 sd, and a
#: two-sided test at alpha 0.0125 (Holm's first step of 4) has 80% power for a difference of 0.15 sd.
SAMPLE_ABOVE = 20_000
QUERY_SAMPLE = 1_000


def _pca_frame(rep: Report, group: str, segments: pl.DataFrame) -> pl.DataFrame:
    """The segments frame with pca_x, pca_y: the first two principal components of the (unit-length, as
    for the cosine metric) vectors."""
    from sklearn.decomposition import PCA

    ids, vecs = rep.store.vectors(group)
    keep = set(segments.filter(pl.col("other_share").is_not_null())["segment_id"].to_list())
    rows = [i for i, s in enumerate(ids) if s in keep]
    x = np.asarray(vecs[rows], dtype=np.float64)
    x /= np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)
    xy = PCA(n_components=2, random_state=0).fit_transform(x) if len(rows) >= 3 else np.full((len(rows), 2), np.nan)
    pos = pl.DataFrame({"segment_id": [ids[i] for i in rows], "pca_x": xy[:, 0], "pca_y": xy[:, 1]})
    return segments.join(pos, on="segment_id", how="left")


def build(rep: Report, sec: Section) -> None:
    model = rep.pick(rep.s.text_model, "text")
    group = rep.s.text_group or (list(rep.summary().get(model, {}).get("groups") or []) or [model])[0]
    n = rep.store.group_status(group).filter(pl.col("status") == "ok").height
    sampled: dict[str, Any] = {"query_sample": QUERY_SAMPLE} if n > SAMPLE_ABOVE else {}
    res = boundary(rep.store, group, quadrants=rep.quadrants(model), umap=n >= UMAP_MIN,
                   quadrants_note=rep.quadrant_result(model).scheme.caption(),
                   n_permutations=rep.s.permutations, **sampled)
    if sampled:
        sec.files += write_figure3(res, rep.out / "figures", title=(
            f"{group}: UMAP ({res.metric}) of a seeded sample of at most {QUERY_SAMPLE:,} segments per quadrant "
            f"({res.queried:,} of {res.searched:,}; neighbours searched among all), coloured by quadrant"))
    elif n >= UMAP_MIN:
        sec.files += write_figure3(res, rep.out / "figures")
    else:
        sec.files += write_figure3(_pca_frame(rep, group, res.segments), rep.out / "figures", x="pca_x", y="pca_y",
                                   title=f"{group}: PCA of the unit vectors (fewer than {UMAP_MIN} segments: no UMAP), "
                                         "coloured by quadrant")
    sec.files += rep.table("boundary_summary", res.summary, f"Nearest-neighbour boundary analysis of {group} by quadrant of {model}.")
    sec.files += rep.table("boundary_tests", res.tests, res.describe())
    sec.markdown = res.to_markdown()


SECTION = SectionSpec("figure3", "Figure 3: text embeddings near the class boundary", build,
                      "run `ambiguity extract --modality text` and train a text model")
