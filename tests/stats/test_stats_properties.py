"""Invariants of compare() and adjust() on bounded random data (hypothesis)."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose

from ambiguity.stats.comparisons import compare
from ambiguity.stats.multitest import adjust
from hypothesis_profiles import examples

FAST = settings(max_examples=examples(40), deadline=None)
VALUES = st.floats(-1000, 1000, allow_nan=False, allow_infinity=False, width=64)
TESTS = st.sampled_from(["welch", "student", "mannwhitney"])
CORRECTIONS = st.sampled_from(["holm", "fdr_bh", "fdr_by", "bonferroni", "hommel", "none"])


@st.composite
def two_groups(draw, min_n=2, max_n=25, max_p=5, elements=VALUES):
    p = draw(st.integers(1, max_p))
    n_a = draw(st.integers(min_n, max_n))
    n_b = draw(st.integers(min_n, max_n))
    xa = draw(arrays(np.float64, (n_a, p), elements=elements))
    xb = draw(arrays(np.float64, (n_b, p), elements=elements))
    return xa, xb


def _run(xa, xb, a="red", b="blue", **kw):
    x = np.vstack([xa, xb])
    g = [a] * len(xa) + [b] * len(xb)
    return compare(x, g, a, b, **kw).to_polars()


def _spread_ok(xa, xb, floor=0.1):
    return bool((xa.std(axis=0) > floor).all() and (xb.std(axis=0) > floor).all())


@FAST
@given(two_groups(), TESTS, CORRECTIONS)
def test_p_and_adjusted_p_in_unit_interval(data, test, correction):
    t = _run(*data, test=test, correction=correction)
    for col in ("p", "p_adj"):
        v = t[col].to_numpy()
        v = v[~np.isnan(v)]
        assert ((v >= 0) & (v <= 1)).all()
    # NaN p exactly where a reason is given
    assert (t["p"].is_nan() == t["reason"].is_not_null()).all()


@FAST
@given(two_groups(), TESTS)
def test_swapping_groups_flips_t_and_direction_keeps_p(data, test):
    xa, xb = data
    ab = _run(xa, xb, "red", "blue", test=test)
    ba = _run(xb, xa, "blue", "red", test=test)
    assert_allclose(ab["p"].to_numpy(), ba["p"].to_numpy(), rtol=1e-9, atol=1e-15)
    assert_allclose(ab["p_adj"].to_numpy(), ba["p_adj"].to_numpy(), rtol=1e-9, atol=1e-15)
    ab_t, ba_t = ab.filter(~pl.col("p").is_nan()), ba.filter(~pl.col("p").is_nan())
    if test == "mannwhitney":
        # U of the first group: U_ab + U_ba = n_a n_b; the rank-biserial changes sign
        assert_allclose(ab_t["statistic"].to_numpy() + ba_t["statistic"].to_numpy(), (ab_t["n_a"] * ab_t["n_b"]).to_numpy(), rtol=1e-12)
        assert_allclose(ab_t["rank_biserial"].to_numpy(), -ba_t["rank_biserial"].to_numpy(), atol=1e-12)
    else:
        assert_allclose(ab_t["statistic"].to_numpy(), -ba_t["statistic"].to_numpy(), rtol=1e-9)
    # the same claim whichever group is first; and it agrees with the sign of the statistic
    assert ab["direction"].to_list() == ba["direction"].to_list()
    assert ab["higher"].to_list() == ba["higher"].to_list()
    for row in ab.iter_rows(named=True):
        if np.isnan(row["p"]):
            continue
        sign = row["rank_biserial"] if test == "mannwhitney" else row["statistic"]
        if sign > 0:
            assert row["higher"] == "red"
        elif sign < 0:
            assert row["higher"] == "blue"


@FAST
@given(
    two_groups(elements=st.floats(-100, 100, allow_nan=False, width=64)),
    st.sampled_from(["welch", "student"]),
    st.floats(1e-3, 1e3),
    st.floats(-1e3, 1e3),
)
def test_affine_change_keeps_t_and_p(data, test, c, d):
    xa, xb = data
    assume(_spread_ok(xa, xb))
    before = _run(xa, xb, test=test)
    after = _run(c * xa + d, c * xb + d, test=test)
    assert_allclose(after["statistic"].to_numpy(), before["statistic"].to_numpy(), rtol=1e-6, atol=1e-9)
    assert_allclose(after["p"].to_numpy(), before["p"].to_numpy(), rtol=1e-6, atol=1e-12)
    assert_allclose(after["hedges_g"].to_numpy(), before["hedges_g"].to_numpy(), rtol=1e-6, atol=1e-9)


@FAST
@given(two_groups(elements=st.integers(-50, 50).map(float)), st.integers(1, 20), st.integers(-100, 100))
def test_affine_change_keeps_mannwhitney(data, c, d):
    xa, xb = data
    before = _run(xa, xb, test="mannwhitney")
    after = _run(c * xa + d, c * xb + d, test="mannwhitney")
    assert_allclose(after["statistic"].to_numpy(), before["statistic"].to_numpy(), rtol=0, equal_nan=True)
    assert_allclose(after["p"].to_numpy(), before["p"].to_numpy(), rtol=0, equal_nan=True)


@FAST
@given(st.lists(st.floats(0, 1), min_size=1, max_size=40), st.sampled_from(["holm", "fdr_bh", "fdr_by", "bonferroni", "hommel"]))
def test_adjusted_p_at_least_p_and_holm_bh_keep_order(p, method):
    p = np.array(p)
    p_adj, _ = adjust(p, method)
    assert (p_adj >= p - 1e-15).all()
    if method in ("holm", "fdr_bh"):
        order = np.argsort(p, kind="stable")
        assert (np.diff(p_adj[order]) >= -1e-15).all()


@FAST
@given(two_groups(), TESTS, CORRECTIONS)
def test_adjusted_p_from_compare_at_least_raw(data, test, correction):
    t = _run(*data, test=test, correction=correction)
    ok = ~t["p"].is_nan()
    assert (t.filter(ok)["p_adj"] >= t.filter(ok)["p"] - 1e-15).all()


@FAST
@given(two_groups(max_p=4), TESTS, st.integers(1, 5), st.data())
def test_nan_rows_leave_other_features_unchanged(data, test, extra, draw):
    xa, xb = data
    before = _run(xa, xb, test=test)
    # 1. appended rows that are NaN everywhere change nothing at all
    pad = np.full((extra, xa.shape[1]), np.nan)
    padded = _run(np.vstack([xa, pad]), np.vstack([xb, pad]), test=test)
    assert padded.equals(before)
    # 2. NaN put into feature 0 only leaves the raw results of the other features unchanged
    if xa.shape[1] < 2:
        return
    holes = draw.draw(st.lists(st.integers(0, len(xa) - 1), min_size=1, max_size=len(xa), unique=True))
    xa2 = xa.copy()
    xa2[holes, 0] = np.nan
    after = _run(xa2, xb, test=test)
    assert after["n_a"][0] == len(xa) - len(holes)
    cols = ["n_a", "n_b", "mean_a", "mean_b", "sd_a", "sd_b", "statistic", "df", "p", "hedges_g", "direction", "reason"]
    assert after.slice(1).select(cols).equals(before.slice(1).select(cols))


@FAST
@given(two_groups(), st.floats(-1e6, 1e6), TESTS)
def test_constant_feature_gives_nan_with_reason(data, value, test):
    xa, xb = data
    xa, xb = xa.copy(), xb.copy()
    xa[:, 0] = value
    xb[:, 0] = value
    t = _run(xa, xb, test=test)
    assert np.isnan(t["p"][0]) and np.isnan(t["p_adj"][0])
    assert t["reason"][0] in ("zero variance in both groups", "all values equal in both groups")


def test_frame_input_matches_array_input():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 2))
    g = ["red"] * 10 + ["blue"] * 10
    df = pl.DataFrame({"a": x[:, 0], "b": x[:, 1], "q": g})
    assert compare(df, "q", "red", "blue").to_polars()["p"].to_list() == compare(x, g, "red", "blue").to_polars()["p"].to_list()
