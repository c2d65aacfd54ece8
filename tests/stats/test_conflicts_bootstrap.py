"""spearman_ci's bootstrap, computed in arrays of resamples (issue 24: the report's conflicts section called
scipy once per resample), against the per-resample definition written here."""

from __future__ import annotations

import numpy as np

from ambiguity.stats.conflicts import spearman_ci


def _rho_no_ties(a: np.ndarray, b: np.ndarray) -> float:
    # Spearman (1904) without ties: 1 - 6 sum d^2 / (n (n^2 - 1)), d the difference of the ranks
    ra, rb = a.argsort().argsort(), b.argsort().argsort()
    n = len(a)
    return 1 - 6 * float(((ra - rb) ** 2).sum()) / (n * (n * n - 1))


def test_bootstrap_interval_is_the_percentiles_of_per_resample_rhos():
    rng = np.random.default_rng(3)
    x = rng.normal(size=40)
    y = x + rng.normal(size=40)
    got = spearman_ci(x, y, n_boot=700, seed=5)
    # the same resamples, drawn as spearman_ci draws them (chunks of at most 500 rows of indices)
    g = np.random.default_rng(5)
    idx = np.vstack([g.integers(0, 40, (500, 40)), g.integers(0, 40, (200, 40))])
    rhos = []
    for i in idx:
        xs, ys = x[i], y[i]
        # a resample repeats values: break no tie here, use the average-rank definition through pairs instead
        rx = np.array([(xs < v).sum() + ((xs == v).sum() + 1) / 2 for v in xs])
        ry = np.array([(ys < v).sum() + ((ys == v).sum() + 1) / 2 for v in ys])
        rhos.append(np.corrcoef(rx, ry)[0, 1])
    lo, hi = np.quantile(rhos, [0.025, 0.975])
    assert got["n"] == 40
    assert abs(got["rho"] - _rho_no_ties(x, y)) < 1e-12
    assert abs(got["ci_low"] - lo) < 1e-12 and abs(got["ci_high"] - hi) < 1e-12
