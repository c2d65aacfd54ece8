"""Calibration of compare(): type I error under the null, and the false discovery proportion of BH."""

from __future__ import annotations

import numpy as np
import pytest

from ambiguity.stats.comparisons import compare

pytestmark = pytest.mark.slow


def _null(seed: int, n_features=2000, n_a=40, n_b=60):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_a + n_b, n_features)) * rng.uniform(0.5, 5, n_features) + rng.normal(0, 10, n_features)
    return x, ["red"] * n_a + ["blue"] * n_b


@pytest.mark.parametrize("test", ["welch", "student", "mannwhitney"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_null_rejection_rate_is_nominal(test, seed):
    x, g = _null(seed)
    p = compare(x, g, "red", "blue", test=test, correction="none").to_polars()["p"].to_numpy()
    share = float((p < 0.05).mean())
    # 2,000 independent null features: the share has SD sqrt(0.05 * 0.95 / 2000) = 0.0049
    assert 0.04 <= share <= 0.06, share


def test_mannwhitney_null_on_skewed_data():
    rng = np.random.default_rng(3)
    x = rng.exponential(size=(90, 2000)) ** 2  # far from normal; ranks do not care
    p = compare(x, ["red"] * 30 + ["blue"] * 60, "red", "blue", test="mannwhitney", correction="none").to_polars()["p"].to_numpy()
    assert 0.04 <= float((p < 0.05).mean()) <= 0.06


def test_bh_controls_the_false_discovery_rate():
    rng = np.random.default_rng(4)
    fdp, power = [], []
    n_features, n_true = 2000, 200
    for _ in range(100):
        x = rng.standard_normal((100, n_features))
        x[:50, :n_true] += 0.6  # 10% true effects, d = 0.6
        res = compare(x, ["red"] * 50 + ["blue"] * 50, "red", "blue", correction="fdr_bh", alpha=0.1).to_polars()
        reject = res["reject"].to_numpy()
        false = reject[n_true:].sum()
        fdp.append(false / max(reject.sum(), 1))
        power.append(reject[:n_true].mean())
    # BH at q = 0.1 with independent tests: E[FDP] = q * m0 / m = 0.09
    assert np.mean(fdp) <= 0.1, np.mean(fdp)
    assert np.mean(power) > 0.3  # not vacuous: it does find the true effects
