"""spearman_ci above BOOTSTRAP_UP_TO segments: Fisher's z with the influence-function standard error
(spearman_se), checked against the null variance of Spearman's rho and a bootstrap written here."""

from __future__ import annotations

import numpy as np
import pytest

from ambiguity.stats import conflicts
from ambiguity.stats.conflicts import spearman_ci, spearman_se


def _mid_ranks(a: np.ndarray) -> np.ndarray:
    # average ranks from the definition: (number below) + (number equal + 1) / 2
    values, inv, counts = np.unique(a, return_inverse=True, return_counts=True)
    below = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return below[inv] + (counts[inv] + 1) / 2


def _rho(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(_mid_ranks(a), _mid_ranks(b))[0, 1])


def _bootstrap(x: np.ndarray, y: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([_rho(x[i], y[i]) for i in rng.integers(0, len(x), (n_boot, len(x)))])


def test_se_under_independence_is_the_null_sd():
    # Kendall & Gibbons (1990), Rank Correlation Methods, ch. 4: under independence (no ties) Var(rho) = 1 / (n - 1)
    rng = np.random.default_rng(0)
    n = 5000
    se = spearman_se(rng.normal(size=n), rng.normal(size=n))
    assert se == pytest.approx(1 / np.sqrt(n - 1), rel=0.05)


@pytest.mark.parametrize("ties", [False, True])
def test_se_matches_the_bootstrap_sd(ties):
    rng = np.random.default_rng(1)
    n = 2000
    x = rng.normal(size=n)
    y = 0.6 * x + rng.normal(size=n)
    if ties:  # as crossfit stability (a few values) against a margin: most pairs tied in one variable
        x, y = np.round(x), np.floor(rng.integers(0, 4, n) + 0.5 * x)
    boot = _bootstrap(x, y, 400, seed=2)
    # 400 resamples estimate the SD to about 3.5%
    assert spearman_se(x, y) == pytest.approx(boot.std(ddof=1), rel=0.12)


def test_se_matches_the_sampling_sd_where_ranks_move():
    # y = x^2 + noise: rho near 0 but far from independent, so how one point moves the others' ranks matters
    # (leaving that part out gives an SE 14% too small here). Reference: the SD of rho over fresh samples.
    rng = np.random.default_rng(7)
    n = 1000

    def sample() -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(size=n)
        return x, x**2 + 0.5 * rng.normal(size=n)

    true_sd = np.std([_rho(*sample()) for _ in range(800)], ddof=1)  # about 2.5% sampling error
    se = np.mean([spearman_se(*sample()) for _ in range(8)])
    assert se == pytest.approx(true_sd, rel=0.07)


def test_interval_above_the_bootstrap_size_agrees_with_the_bootstrap(monkeypatch):
    rng = np.random.default_rng(3)
    n = 1501
    x = rng.normal(size=n)
    y = np.round(0.4 * x + rng.normal(size=n), 1)
    monkeypatch.setattr(conflicts, "BOOTSTRAP_UP_TO", 1500)
    got = spearman_ci(x, y)
    boot = _bootstrap(x, y, 600, seed=4)
    lo, hi = np.quantile(boot, [0.025, 0.975])
    assert got["n"] == n and got["rho"] == pytest.approx(_rho(x, y), abs=1e-12)
    width = hi - lo
    assert got["ci_low"] == pytest.approx(lo, abs=0.15 * width) and got["ci_high"] == pytest.approx(hi, abs=0.15 * width)
    # at or under the size, the bootstrap as before (seeded: the same interval twice)
    monkeypatch.setattr(conflicts, "BOOTSTRAP_UP_TO", n)
    boot_ci = spearman_ci(x, y, n_boot=200)
    assert boot_ci == spearman_ci(x, y, n_boot=200) and boot_ci["ci_low"] != got["ci_low"]
