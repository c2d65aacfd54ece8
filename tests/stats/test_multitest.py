"""adjust(): statsmodels' multipletests on the finite p-values, NaN left out of the family."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from numpy.testing import assert_allclose
from statsmodels.stats.multitest import multipletests

import ambiguity.stats.multitest as multitest_mod
from ambiguity.errors import StatsError
from ambiguity.stats.multitest import CORRECTIONS, adjust

P = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216, 0.222, 0.251, 0.269, 0.275, 0.34, 0.341, 0.384, 0.569, 0.594, 0.696, 0.762, 0.94, 0.942, 0.975, 0.986])


@pytest.mark.parametrize("method", [m for m in CORRECTIONS if m != "none"])
def test_each_correction_equals_statsmodels(method):
    p_adj, reject = adjust(P, method, alpha=0.05)
    # reference: statsmodels.stats.multitest.multipletests(P, alpha=0.05, method=method)
    ref_reject, ref_adj, _, _ = multipletests(P, alpha=0.05, method=method)
    assert_allclose(p_adj, ref_adj, rtol=1e-12, atol=0)
    assert reject.tolist() == ref_reject.tolist()


@pytest.mark.parametrize("method", [m for m in CORRECTIONS if m != "none"])
def test_nan_is_left_out_of_the_family(method):
    p = P.copy()
    p[[2, 9]] = np.nan
    p_adj, reject = adjust(p, method, alpha=0.1)
    keep = ~np.isnan(p)
    # reference: multipletests on the 23 finite p-values only
    ref_reject, ref_adj, _, _ = multipletests(p[keep], alpha=0.1, method=method)
    assert_allclose(p_adj[keep], ref_adj, rtol=1e-12, atol=0)
    assert np.isnan(p_adj[~keep]).all() and not reject[~keep].any()
    assert reject[keep].tolist() == ref_reject.tolist()


def test_none_returns_raw_p():
    p_adj, reject = adjust(P, "none", alpha=0.05)
    assert_allclose(p_adj, P, rtol=0)
    assert reject.tolist() == (P <= 0.05).tolist()


def test_all_nan_and_empty():
    p_adj, reject = adjust([np.nan, np.nan], "holm")
    assert np.isnan(p_adj).all() and not reject.any()
    p_adj, reject = adjust([], "fdr_bh")
    assert p_adj.shape == (0,)


@pytest.mark.parametrize("bad,match", [([0.1, 1.2], r"\[0, 1\]"), ([-0.1], r"\[0, 1\]"), ([np.inf], "finite")])
def test_bad_p_values(bad, match):
    with pytest.raises(StatsError, match=match):
        adjust(bad, "holm")


def test_bad_method_and_alpha():
    with pytest.raises(StatsError, match="unknown correction 'bh'"):
        adjust(P, "bh")
    with pytest.raises(StatsError, match="alpha"):
        adjust(P, "holm", alpha=0)


def test_docstring_examples():
    assert doctest.testmod(multitest_mod).failed == 0
