"""Effect sizes for two independent groups, vectorised over features.

Formulas follow pingouin (``compute_effsize``, ``convert_effsize``, ``compute_esci``,
``mwu``), which the tests use as the oracle:

* Cohen's d with the pooled SD:  d = (m_a - m_b) / s_p,
  s_p = sqrt(((n_a - 1) s_a^2 + (n_b - 1) s_b^2) / (n_a + n_b - 2)).
* Hedges' g (small-sample correction):  g = d * (1 - 3 / (4 (n_a + n_b) - 9)).
* CI of d or g (Hedges & Olkin 1985, p. 86):  stat +- t_{1-(1-ci)/2, n_a+n_b-2} * SE,
  SE = sqrt((n_a + n_b) / (n_a n_b) + stat^2 / (2 (n_a + n_b))).
* Rank-biserial correlation (Wendt 1972):  r = 2 U_a / (n_a n_b) - 1, where U_a is the
  Mann-Whitney U of group a; r > 0 when values in a tend to be larger.
"""

from __future__ import annotations

import numpy as np

ArrayLike = np.ndarray | float | int


def cohen_d(mean_a: ArrayLike, mean_b: ArrayLike, var_a: ArrayLike, var_b: ArrayLike, n_a: ArrayLike, n_b: ArrayLike) -> np.ndarray:
    """Cohen's d with the pooled standard deviation; NaN where it is zero or undefined.

    Examples
    --------
    >>> float(cohen_d(2.0, 1.0, 1.0, 1.0, 10, 10))
    1.0
    """
    mean_a, mean_b, var_a, var_b, n_a, n_b = (np.asarray(v, dtype=np.float64) for v in (mean_a, mean_b, var_a, var_b, n_a, n_b))
    dof = n_a + n_b - 2
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        pooled = np.sqrt(((n_a - 1) * var_a + (n_b - 1) * var_b) / dof)
        d = (mean_a - mean_b) / pooled
    return np.where((pooled > 0) & np.isfinite(pooled) & (dof > 0), d, np.nan)


def hedges_correction(n_a: ArrayLike, n_b: ArrayLike) -> np.ndarray:
    """The factor J = 1 - 3 / (4 (n_a + n_b) - 9) that turns d into Hedges' g."""
    n = np.asarray(n_a, dtype=np.float64) + np.asarray(n_b, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 - 3.0 / (4.0 * n - 9.0)


def hedges_g(d: ArrayLike, n_a: ArrayLike, n_b: ArrayLike) -> np.ndarray:
    """Hedges' g from Cohen's d.

    Examples
    --------
    >>> round(float(hedges_g(0.45, 10, 10)), 6)  # pingouin.convert_effsize(0.45, "cohen", "hedges", nx=10, ny=10)
    0.430986
    """
    return np.asarray(d, dtype=np.float64) * hedges_correction(n_a, n_b)


def d_ci(stat: ArrayLike, n_a: ArrayLike, n_b: ArrayLike, ci: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper confidence bounds of a Cohen's d or Hedges' g (pingouin's ``compute_esci``)."""
    from scipy.stats import t  # 0.7 s CPU to import

    stat = np.asarray(stat, dtype=np.float64)
    n_a = np.asarray(n_a, dtype=np.float64)
    n_b = np.asarray(n_b, dtype=np.float64)
    n = n_a + n_b
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        se = np.sqrt(n / (n_a * n_b) + stat**2 / (2.0 * n))
        crit = np.abs(t.ppf((1.0 - ci) / 2.0, np.where(n > 2, n - 2, np.nan)))
    return stat - crit * se, stat + crit * se


def rank_biserial(u_a: ArrayLike, n_a: ArrayLike, n_b: ArrayLike) -> np.ndarray:
    """Rank-biserial correlation from the Mann-Whitney U of group a.

    Examples
    --------
    >>> float(rank_biserial(20.0, 5, 4))  # every value of a above every value of b
    1.0
    """
    u_a = np.asarray(u_a, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 2.0 * u_a / (np.asarray(n_a, dtype=np.float64) * np.asarray(n_b, dtype=np.float64)) - 1.0
