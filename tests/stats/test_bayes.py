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


def test_bf10_comes_from_students_pooled_t_whatever_the_test():
    # Issue 25: 12 vs 150 with SDs 3 vs 1; Welch's t passed to the JZS formula gave a hybrid BF.
    import polars as pl
    from stats_refs import ref_bf10, ref_t_test

    from ambiguity.stats.comparisons import compare

    rng = np.random.default_rng(25)
    a, b = rng.normal(0.9, 3, 12), rng.normal(0, 1, 150)
    df = pl.DataFrame({"x": np.r_[a, b], "q": ["red"] * 12 + ["blue"] * 150})
    welch = compare(df, "q", "red", "blue", bayes=True).to_polars().row(0, named=True)
    t_student = ref_t_test(a, b, equal_var=True)[0]
    # reference: the JZS integral over delta (stats_refs.ref_bf10) at Student's pooled t, unequal sizes
    assert welch["bf10"] == pytest.approx(ref_bf10(t_student, 12, 150), rel=1e-3)
    assert welch["statistic"] != pytest.approx(t_student, rel=1e-2)  # p is still Welch's
