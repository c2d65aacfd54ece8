"""adjust(): input handling. The values are checked against their definitions (not statsmodels,
which adjust wraps) in tests/stats/test_anchors.py."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from numpy.testing import assert_allclose

import ambiguity.stats.multitest as multitest_mod
from ambiguity.errors import StatsError
from ambiguity.stats.multitest import adjust

P = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216, 0.222, 0.251, 0.269, 0.275, 0.34, 0.341, 0.384, 0.569, 0.594, 0.696, 0.762, 0.94, 0.942, 0.975, 0.986])


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
    for bad in (0, 1, 1.0, -0.1, "x"):  # alpha is in the open interval (0, 1)
        with pytest.raises(StatsError, match="alpha"):
            adjust(P, "holm", alpha=bad)
    assert adjust(P, "holm", alpha=0.999)[1].any()


def test_docstring_examples():
    assert doctest.testmod(multitest_mod).failed == 0


def test_the_bad_p_value_is_the_one_named():
    with pytest.raises(StatsError, match="got 1.2"):
        adjust([0.0, 1.0, 1.2], "holm")  # 0 and 1 are valid p-values
    with pytest.raises(StatsError, match="got -0.1"):
        adjust([0.0, -0.1], "holm")
