"""Typed, frozen result objects of the statistics layer.

Each holds its settings next to its numbers, so a table printed from it says how it
was computed. ``to_polars()`` gives every column; ``to_markdown()`` / ``to_latex()``
give the compact table a paper shows (rendered by :mod:`ambiguity.tables`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl

from ambiguity import tables
from ambiguity.constants import CORRECTION_NAMES
from ambiguity.errors import StatsError
from ambiguity.stats.multitest import adjust

TEST_NAMES = {
    "welch": "Welch's t-test",
    "student": "Student's t-test",
    "mannwhitney": "Mann-Whitney U test",
    "ols_cr2": "within-label regression (feature ~ group + label; CR2 errors, Bell-McCaffrey df; binary features: CMH)",
}
FAMILY_NAMES = {"pair": "each quadrant pair", "report": "every comparison of the report"}

#: Columns of :meth:`ComparisonResult.to_polars`, one row per feature.
COMPARISON_COLUMNS = (
    "feature", "n_a", "n_b", "mean_a", "mean_b", "sd_a", "sd_b", "statistic", "df", "p", "p_adj",
    "reject", "cohen_d", "d_ci_low", "d_ci_high", "hedges_g", "g_ci_low", "g_ci_high",
    "rank_biserial", "bf10", "estimate", "se", "odds_ratio", "kind", "direction", "higher", "reason",
)

_MU = re.compile(r"μ_(\S+)")


def latex_direction(text: str | None) -> str:
    """``μ_blue > μ_red`` as LaTeX math (``$\\mu_{blue} > \\mu_{red}$``); other text escaped."""
    if not text:
        return "–"
    if "μ_" in text:
        body = _MU.sub(lambda m: r"\mu_{\text{" + tables.latex_escape(m.group(1)) + "}}", text)
        return f"${body}$"
    return tables.latex_escape(text)


def _num(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True, eq=False)
class ComparisonResult:
    """Group ``a`` vs group ``b`` for every feature: one correction family.

    ``table`` has the columns in :data:`COMPARISON_COLUMNS`; see ``docs/statistics.md``.
    """

    a: str
    b: str
    test: str
    correction: str
    alpha: float
    ci: float
    family_size: int
    table: pl.DataFrame = field(repr=False)
    bayes: bool = False
    label: str | None = None
    label_counts: tuple[tuple[str, str, int], ...] = ()  # (group, class label, segments)
    group_by: str | None = None  # the column whose values cluster the errors
    n_clusters: int | None = None
    family: str = "pair"  # the correction family p_adj belongs to: this pair, or the whole report

    def __repr__(self) -> str:
        return f"ComparisonResult({self.describe()})"

    @property
    def adjusted(self) -> bool:
        return self.test == "ols_cr2"

    def label_mix(self) -> str:
        """``red n=30 (neg: 20, pos: 10); blue n=200 (...)``: each group's count per class label."""
        if not self.label_counts:
            return ""
        parts = []
        for g in (self.a, self.b):
            mine = [(lab, n) for grp, lab, n in self.label_counts if grp == g]
            inner = ", ".join(f"{lab}: {n}" for lab, n in mine)
            parts.append(f"{g} n={sum(n for _, n in mine)} ({inner or 'none'})")
        return "; ".join(parts)

    @property
    def n_features(self) -> int:
        return self.table.height

    def to_polars(self) -> pl.DataFrame:
        """Every column, one row per feature (a copy)."""
        return self.table.clone()

    def significant(self) -> pl.DataFrame:
        """Rows whose adjusted p is at or under alpha."""
        return self.table.filter(pl.col("reject"))

    def describe(self) -> str:
        """One sentence: test, groups, correction family, alpha, excluded features."""
        excluded = int(self.table["p"].fill_nan(None).null_count())
        what = f"{self.label}: " if self.label else ""
        unit = "test" if self.family == "report" else "feature"
        text = (
            f"{what}{TEST_NAMES[self.test]} (two-sided), {self.a} vs {self.b}"
            + (f", errors clustered by {self.group_by} ({self.n_clusters} clusters)" if self.group_by else "")
            + ("" if self.adjusted else ", not adjusted for the label")
            + f"; {CORRECTION_NAMES[self.correction]} correction over a family of {self.family_size} "
            f"{unit}{'s' if self.family_size != 1 else ''} ({FAMILY_NAMES[self.family]}), alpha = {_num(self.alpha)}; "
            f"effect sizes{' within label' if self.adjusted else ''} with {_num(100 * self.ci)}% CI"
        )
        if self.label_counts:
            text += f"; label mix: {self.label_mix()}"
        if excluded:
            text += f"; {excluded} feature{'s' if excluded != 1 else ''} not tested (see reason)"
        return text

    def display(self) -> pl.DataFrame:
        """The compact table: counts, means, statistic, p, adjusted p, effect size, direction."""
        t = self.table
        a, b = self.a, self.b
        stat = "U" if self.test == "mannwhitney" else "t"
        binary = self.adjusted and (t["kind"] == "binary").any()
        counted = self.adjusted and (t["kind"] != "continuous").any()
        if counted and self.group_by is None:
            stat = "t / CMH chi2"
        padj = f"p ({CORRECTION_NAMES[self.correction]}, {self.family})" if self.correction != "none" else "p (uncorrected)"
        cols = [
            pl.col("feature"),
            pl.col("n_a").alias(f"n {a}"),
            pl.col("n_b").alias(f"n {b}"),
            pl.col("mean_a").alias(f"mean {a}"),
            pl.col("mean_b").alias(f"mean {b}"),
        ]
        if self.adjusted:  # what the test is about: the difference within label, not of the raw means
            cols.append(pl.col("estimate").alias(f"{a} - {b} within label"))
        cols.append(pl.col("statistic").alias(stat))
        if self.test != "mannwhitney":
            cols.append(pl.col("df"))
        cols += [pl.col("p"), pl.col("p_adj").alias(padj)]
        level = f"{_num(100 * self.ci)}%"
        if self.test == "mannwhitney":
            cols.append(pl.col("rank_biserial").alias("r_rb"))
        cols += [
            pl.col("hedges_g").alias("g"),
            pl.col("g_ci_low").alias(f"g {level} low"),
            pl.col("g_ci_high").alias(f"g {level} high"),
        ]
        if counted:
            cols.append(pl.col("kind"))
        if binary:
            cols.append(pl.col("odds_ratio").alias("MH odds ratio"))
        if self.bayes:
            cols.append(pl.col("bf10").alias("BF10"))
        cols.append(pl.col("direction"))
        if t["reason"].is_not_null().any():
            cols.append(pl.col("reason"))
        return t.select(cols)

    def to_markdown(self, digits: int = 4) -> str:
        return tables.to_markdown(self.display(), caption=self.describe(), digits=digits)

    def to_latex(self, digits: int = 4, label: str | None = None) -> str:
        df = self.display().with_columns(pl.col("direction").map_elements(latex_direction, return_dtype=pl.String))
        return tables.to_latex(df, caption=self.describe(), label=label, digits=digits, raw_columns=("direction",))


@dataclass(frozen=True, eq=False)
class QuadrantComparison:
    """Several quadrant pairs compared on the same features; each pair is its own correction family."""

    comparisons: tuple[ComparisonResult, ...]
    n_segments: int
    unimodal: str | None = None
    fusion: str | None = None
    groups: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        pairs = ", ".join(f"{c.a} vs {c.b}" for c in self.comparisons)
        return f"QuadrantComparison({pairs}; {self.n_segments} segments)"

    def __getitem__(self, pair: tuple[str, str]) -> ComparisonResult:
        for c in self.comparisons:
            if (c.a, c.b) == tuple(pair):
                return c
        have = ", ".join(f"{c.a}/{c.b}" for c in self.comparisons)
        raise StatsError(f"no comparison {pair[0]} vs {pair[1]}; this result has {have}")

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return [(c.a, c.b) for c in self.comparisons]

    def to_polars(self) -> pl.DataFrame:
        """Long format: every column of each comparison, with ``a`` and ``b`` first."""
        frames = [
            c.table.select(pl.lit(c.a).alias("a"), pl.lit(c.b).alias("b"), pl.all()) for c in self.comparisons
        ]
        return pl.concat(frames, how="vertical") if frames else pl.DataFrame()

    def wide(self, sort: bool = True) -> pl.DataFrame:
        """The paper's layout (Tables 3, 4, 6, 7, 8): per pair, p, adjusted p and direction."""
        out: pl.DataFrame | None = None
        for c in self.comparisons:
            tag = f"{c.a} vs {c.b}"
            part = c.table.select(
                "feature",
                pl.col("n_a").alias(f"n {c.a} ({tag})"),
                pl.col("n_b").alias(f"n {c.b} ({tag})"),
                pl.col("p").alias(f"p ({tag})"),
                pl.col("p_adj").alias(f"p_adj ({tag})"),
                pl.col("hedges_g").alias(f"g ({tag})"),
                pl.col("direction").alias(f"direction ({tag})"),
                pl.col("reason").alias(f"reason ({tag})"),
            )
            if c.table["reason"].is_null().all():
                part = part.drop(f"reason ({tag})")
            out = part if out is None else out.join(part, on="feature", how="full", coalesce=True, maintain_order="left")
        if out is None:
            return pl.DataFrame()
        if sort and self.comparisons:
            first = self.comparisons[0]
            out = out.sort(f"p ({first.a} vs {first.b})", nulls_last=True, maintain_order=True)
        return out

    def describe(self) -> str:
        parts = [c.describe() for c in self.comparisons]
        fams = {c.family for c in self.comparisons}
        head = "Each comparison is one correction family." if fams == {"pair"} else "One correction family over every comparison of the report."
        if self.unimodal and self.fusion:
            head = f"Quadrants of {self.unimodal} vs {self.fusion}; {self.n_segments} segments. " + head
        return " ".join([head, *[p + "." for p in parts], *self.notes])

    def to_markdown(self, digits: int = 4, sort: bool = True) -> str:
        return tables.to_markdown(self.wide(sort), caption=self.describe(), digits=digits)

    def to_latex(self, digits: int = 4, label: str | None = None, sort: bool = True) -> str:
        df = self.wide(sort)
        raw = tuple(c for c in df.columns if c.startswith("direction"))
        df = df.with_columns([pl.col(c).map_elements(latex_direction, return_dtype=pl.String) for c in raw])
        return tables.to_latex(df, caption=self.describe(), label=label, digits=digits, raw_columns=raw)


def one_family(results: Sequence[QuadrantComparison], correction: str, alpha: float) -> list[QuadrantComparison]:
    """``results`` with p_adj and reject recomputed over one family: every tested feature of every
    pair of every result (a report's audio and AU tables, several models). Each table then says so."""
    parts = [(i, j) for i, r in enumerate(results) for j in range(len(r.comparisons))]
    p = [results[i].comparisons[j].table["p"].to_numpy() for i, j in parts]
    if not p:
        return list(results)
    p_adj, reject = adjust(np.concatenate(p), correction, alpha)
    size = int(np.isfinite(np.concatenate(p)).sum())
    out = [list(r.comparisons) for r in results]
    start = 0
    for (i, j), pv in zip(parts, p, strict=True):
        c = results[i].comparisons[j]
        stop = start + pv.size
        table = c.table.with_columns(pl.Series("p_adj", p_adj[start:stop]), pl.Series("reject", reject[start:stop]))
        out[i][j] = replace(c, table=table, correction=correction, alpha=alpha, family="report", family_size=size)
        start = stop
    return [replace(r, comparisons=tuple(cs)) for r, cs in zip(results, out, strict=True)]


@dataclass(frozen=True, eq=False)
class BoundaryResult:
    """Nearest-neighbour boundary analysis of one embedding space.

    ``segments``: segment_id, label, quadrant, other_share (share of the k nearest
    neighbours with another label), margin (distance to the nearest other-label segment
    minus distance to the nearest same-label one), nn_same, nn_other, reason (why a
    segment has no values), and umap_x / umap_y when a projection was asked for.
    ``summary``: per quadrant n, mean and median of other_share and margin.
    ``tests``: permutation tests of each quadrant against the reference one.
    """

    segments: pl.DataFrame = field(repr=False)
    summary: pl.DataFrame = field(repr=False)
    tests: pl.DataFrame = field(repr=False)
    k: int
    metric: str
    method: str
    n_permutations: int
    seed: int
    correction: str
    group: str | None = None
    quadrants_note: str | None = None  # which quadrants: scheme, K, R, stability cut
    recall_note: str | None = None  # index search: its recall against exact search on a sample (Neighbours.describe)
    query_sample: int | None = None  # at most this many query segments per quadrant (seeded), or None: every segment
    queried: int | None = None  # segments whose neighbours were searched
    searched: int | None = None  # segments searched among (every usable one)
    memory_note: str | None = None  # how a large embedding was held (a memory-mapped temporary file)

    def __repr__(self) -> str:
        return (
            f"BoundaryResult({self.segments.height} segments, k={self.k}, metric={self.metric}, "
            f"{self.method} kNN, {self.tests.height} permutation tests)"
        )

    def to_polars(self) -> pl.DataFrame:
        """Per-segment values (a copy)."""
        return self.segments.clone()

    def describe(self) -> str:
        what = f"embedding group {self.group}: " if self.group else ""
        return (
            f"{what}{self.method} {self.k}-nearest neighbours ({self.metric} distance) over "
            + (f"{self.segments.height} segments" if self.query_sample is None else
               f"a seeded sample of at most {self.query_sample:,} segments per quadrant ({self.queried:,} in all), "
               f"searched among all {self.searched:,} segments; summary and tests are of the sample")
            + "; two-sided permutation tests of the difference in means "
            f"({self.n_permutations} permutations, seed {self.seed}), "
            f"{CORRECTION_NAMES[self.correction]} correction over the {self.tests.height} tests"
            + (f"; quadrants: {self.quadrants_note}" if self.quadrants_note else "")
            + (f"; neighbours from a {self.recall_note}" if self.recall_note else "")
        )

    def to_markdown(self, digits: int = 4) -> str:
        return (
            tables.to_markdown(self.summary, digits=digits)
            + "\n"
            + tables.to_markdown(self.tests, caption=self.describe(), digits=digits)
        )

    def to_latex(self, digits: int = 4, label: str | None = None) -> str:
        return tables.to_latex(self.summary, digits=digits) + "\n" + tables.to_latex(
            self.tests, caption=self.describe(), label=label, digits=digits
        )
