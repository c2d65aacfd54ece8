"""Hostile input to compare() and boundary(): a result or a StatsError, never a crash or a hang.

Strategies produce empty groups, single values, huge and tiny magnitudes, all-equal
values, NaN and Inf. Warnings are errors here, so no RuntimeWarning leaks either.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ambiguity.errors import StatsError
from ambiguity.stats.boundary_tests import boundary_arrays
from ambiguity.stats.comparisons import compare, compare_quadrant_frame
from hypothesis_profiles import examples

HOSTILE = settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
NASTY = st.sampled_from([0.0, -0.0, 1.0, 1e308, -1e308, 1.7976931348623157e308, 5e-324, -5e-324, 1e-300, 1e300, np.nan, np.inf, -np.inf])
ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True, width=64)
ELEMENTS = st.one_of(NASTY, ANY_FLOAT, st.floats(-10, 10))


@st.composite
def matrices(draw, max_rows=12, max_cols=4):
    rows = draw(st.integers(0, max_rows))
    cols = draw(st.integers(1, max_cols))
    kind = draw(st.sampled_from(["random", "constant", "nan", "scaled"]))
    if kind == "constant":
        return np.full((rows, cols), draw(NASTY))
    if kind == "nan":
        return np.full((rows, cols), np.nan)
    x = draw(arrays(np.float64, (rows, cols), elements=ELEMENTS))
    if kind == "scaled":
        with np.errstate(over="ignore"):
            x = x * draw(st.sampled_from([1e-300, 1e300, 1e-160, 1e160]))
    return x


@pytest.mark.timeout(300)
@HOSTILE
@given(matrices(), matrices(), st.sampled_from(["welch", "student", "mannwhitney"]), st.sampled_from(["holm", "fdr_bh", "hommel", "none"]))
def test_compare_never_crashes(xa, xb, test, correction):
    if xa.shape[1] != xb.shape[1]:
        xb = np.resize(xb, (xb.shape[0], xa.shape[1]))
    x = np.vstack([xa, xb])
    g = ["red"] * len(xa) + ["blue"] * len(xb)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            res = compare(x, g, "red", "blue", test=test, correction=correction)
        except StatsError:
            assert len(xa) == 0 or len(xb) == 0  # the only typed error this input can earn: an absent group
            event("StatsError")
            return
        event(f"result; {res.family_size} of {res.n_features} tested")
        t = res.to_polars()
        res.to_markdown()
        res.to_latex()
    assert t.height == x.shape[1]
    p = t["p"].to_numpy()
    ok = ~np.isnan(p)
    assert ((p[ok] >= 0) & (p[ok] <= 1)).all()
    assert (t["p_adj"].to_numpy()[ok] <= 1).all()
    assert (t["reason"].is_null().to_numpy() == ok).all()
    assert res.family_size == int(ok.sum())


@pytest.mark.timeout(300)
@HOSTILE
@given(matrices(max_rows=20), st.lists(st.sampled_from(["red", "green", "blue", "yellow"]), min_size=0, max_size=20))
def test_compare_quadrant_frame_never_crashes(x, quads):
    import polars as pl

    n = min(len(x), len(quads))
    feats = pl.DataFrame({"segment_id": [f"s{i}" for i in range(len(x))], **{f"f{j}": x[:, j] for j in range(x.shape[1])}})
    q = pl.DataFrame({"segment_id": [f"s{i}" for i in range(n)], "quadrant": quads[:n]}, schema={"segment_id": pl.String, "quadrant": pl.String})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            res = compare_quadrant_frame(feats, q)
        except StatsError:
            assert n == 0
            return
        res.to_markdown()
    assert len(res.comparisons) == 3


@st.composite
def embeddings(draw):
    rows = draw(st.integers(0, 30))
    dims = draw(st.integers(1, 5))
    kind = draw(st.sampled_from(["random", "constant", "duplicates", "scaled"]))
    if kind == "constant":
        x = np.full((rows, dims), draw(NASTY))
    elif kind == "duplicates":
        base = draw(arrays(np.float64, (2, dims), elements=st.floats(-5, 5)))
        x = base[np.arange(rows) % 2]
    else:
        x = draw(arrays(np.float64, (rows, dims), elements=ELEMENTS))
        if kind == "scaled":
            with np.errstate(over="ignore"):
                x = x * draw(st.sampled_from([1e-300, 1e300]))
    labels = draw(st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c"])), min_size=rows, max_size=rows))
    quads = draw(st.lists(st.sampled_from(["red", "green", "blue", "yellow"]), min_size=rows, max_size=rows))
    return x, labels, quads


@pytest.mark.timeout(300)
@HOSTILE
@given(embeddings(), st.integers(1, 4), st.sampled_from(["cosine", "euclidean"]))
def test_boundary_never_crashes(data, k, metric):
    x, labels, quads = data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            res = boundary_arrays(x, labels, quadrants=quads, k=k, metric=metric, n_permutations=50)
        except StatsError as exc:
            assert "usable segments" in str(exc) or "2-D" in str(exc)
            event("StatsError")
            return
        event(f"result; {res.segments['margin'].is_not_null().sum() > 0} margins")
        res.to_markdown()
    seg = res.segments
    assert seg.height == len(x)
    share = seg["other_share"].drop_nulls().to_numpy()
    assert ((share >= 0) & (share <= 1)).all()
    margin = seg["margin"].drop_nulls().to_numpy()
    assert np.isfinite(margin).all()
    p = res.tests["p"].drop_nans().drop_nulls().to_numpy()
    assert ((p > 0) & (p <= 1)).all()
