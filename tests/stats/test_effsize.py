"""Effect sizes against pingouin, the oracle named in the issue."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import scipy.stats
from numpy.testing import assert_allclose

import ambiguity.stats.effsize as effsize_mod
from ambiguity.stats.effsize import cohen_d, d_ci, hedges_g, rank_biserial

pingouin = pytest.importorskip("pingouin")


def _samples(seed, n_a, n_b):
    rng = np.random.default_rng(seed)
    return rng.normal(1.0, 2.0, n_a), rng.normal(0.0, 1.0, n_b)


@pytest.mark.parametrize("seed,n_a,n_b", [(0, 10, 12), (1, 5, 40), (2, 200, 150)])
def test_d_and_g_equal_pingouin(seed, n_a, n_b):
    x, y = _samples(seed, n_a, n_b)
    d = cohen_d(x.mean(), y.mean(), x.var(ddof=1), y.var(ddof=1), n_a, n_b)
    # reference: pingouin.compute_effsize(x, y, eftype="cohen") and eftype="hedges"
    assert_allclose(d, pingouin.compute_effsize(x, y, eftype="cohen"), atol=1e-10)
    assert_allclose(hedges_g(d, n_a, n_b), pingouin.compute_effsize(x, y, eftype="hedges"), atol=1e-10)


@pytest.mark.parametrize("ci", [0.95, 0.9, 0.99])
def test_ci_equals_pingouin_compute_esci(ci):
    x, y = _samples(3, 17, 23)
    g = pingouin.compute_effsize(x, y, eftype="hedges")
    lo, hi = d_ci(g, 17, 23, ci)
    # reference: pingouin.compute_esci(stat=g, nx=17, ny=23, eftype="cohen", confidence=ci, decimals=12)
    assert_allclose([lo, hi], pingouin.compute_esci(stat=g, nx=17, ny=23, eftype="cohen", confidence=ci, decimals=12), atol=1e-6)


def test_vectorised_over_features():
    rng = np.random.default_rng(4)
    xs, ys = rng.normal(size=(8, 30)), rng.normal(0.3, 1.5, size=(8, 44))
    d = cohen_d(xs.mean(1), ys.mean(1), xs.var(1, ddof=1), ys.var(1, ddof=1), 30, 44)
    g = hedges_g(d, 30, 44)
    lo, hi = d_ci(g, 30, 44)
    for i in range(8):
        # reference: pingouin.compute_effsize / compute_esci per feature
        ref = pingouin.compute_effsize(xs[i], ys[i], eftype="hedges")
        assert_allclose(g[i], ref, atol=1e-10)
        assert_allclose([lo[i], hi[i]], pingouin.compute_esci(ref, 30, 44, eftype="cohen", decimals=12), atol=1e-6)


def test_rank_biserial_equals_pingouin_mwu():
    x, y = _samples(5, 13, 9)
    u = scipy.stats.mannwhitneyu(x, y).statistic
    # reference: pingouin.mwu(x, y)["RBC"]
    assert_allclose(rank_biserial(u, 13, 9), pingouin.mwu(x, y)["RBC"].iloc[0], atol=1e-12)


def test_zero_pooled_sd_is_nan():
    assert np.isnan(cohen_d(1.0, 2.0, 0.0, 0.0, 5, 5))
    assert np.isnan(cohen_d(1.0, 2.0, 1.0, 1.0, 1, 1))  # no degrees of freedom


def test_docstring_examples():
    assert doctest.testmod(effsize_mod).failed == 0
