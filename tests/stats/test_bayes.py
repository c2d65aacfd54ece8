"""The JZS Bayes factor (ambiguity.stats.bayes) against pingouin's independent implementation and its limits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ambiguity.stats.bayes import bayes_factors, bf10_ttest


@pytest.mark.parametrize("t,n_a,n_b", [(0.0, 10, 10), (1.2, 15, 20), (2.5, 30, 25), (-3.1, 8, 40), (5.0, 100, 100)])
def test_bf10_equals_pingouin(t, n_a, n_b):
    pingouin = pytest.importorskip("pingouin")
    # reference: pingouin.bayesfactor_ttest(t, nx, ny, r=0.707) (Rouder et al. 2009 eq. 1, integrated over g)
    ref = float(pingouin.bayesfactor_ttest(t, n_a, n_b, r=0.707))
    assert bf10_ttest(t, n_a, n_b) == pytest.approx(ref, rel=1e-3)


def test_bf10_is_symmetric_in_t_and_grows_with_it():
    assert bf10_ttest(2.0, 20, 20) == pytest.approx(bf10_ttest(-2.0, 20, 20), rel=1e-12)
    vals = [bf10_ttest(t, 20, 20) for t in (0.0, 1.0, 2.0, 3.0, 4.0)]
    assert all(a < b for a, b in zip(vals, vals[1:], strict=False))
    assert vals[0] < 1 / 2  # t = 0 is evidence for no effect
    assert vals[-1] > 10


def test_bayes_factors_leave_undefined_features_missing():
    out = bayes_factors(np.array([2.0, np.nan, 1.0]), np.array([10, 10, 1]), np.array([10, 10, 10]))
    assert out[0] == pytest.approx(bf10_ttest(2.0, 10, 10)) and math.isnan(out[1]) and math.isnan(out[2])
