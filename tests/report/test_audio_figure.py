"""Figure 5 in the report: which features it shows when there are more than it has panels for (issue 24)."""

from __future__ import annotations

from types import SimpleNamespace

import polars as pl

from ambiguity.report.sections.audio_figure import MAX_PANELS, strongest


def _pair(rows: list[tuple[str, float | None, float | None]]) -> SimpleNamespace:
    return SimpleNamespace(table=pl.DataFrame(rows, schema=["feature", "p", "p_adj"], orient="row"))


def test_strongest_orders_by_the_smallest_adjusted_p_then_the_unadjusted_one():
    # Two pairs; each feature's key is (min p_adj over pairs, min p over pairs), worked out by hand:
    # a (0.01, 0.001), b (1, 0.30), c (1, 0.04), d (0.2, 0.05), e untested (inf, inf), f (0.2, 0.01)
    qc = SimpleNamespace(comparisons=[
        _pair([("a", 0.001, 0.01), ("b", 0.30, 1.0), ("c", 0.04, 1.0), ("d", 0.05, 0.2), ("e", float("nan"), float("nan")),
               ("f", 0.02, 0.3)]),
        _pair([("a", 0.5, 1.0), ("b", 0.9, 1.0), ("c", 0.6, 1.0), ("d", 0.7, 1.0), ("e", None, None), ("f", 0.01, 0.2)]),
    ])
    cols = ["e", "b", "a", "c", "d", "f"]
    assert strongest(qc, cols, n=6) == ["a", "f", "d", "c", "b", "e"]
    assert strongest(qc, cols, n=2) == ["a", "f"]


def test_strongest_keeps_a_column_the_comparison_never_saw_last():
    qc = SimpleNamespace(comparisons=[_pair([("x", 0.5, 0.5)])])
    assert strongest(qc, ["y", "x"]) == ["x", "y"]
    assert MAX_PANELS == 12  # the number docs/statistics.md states
