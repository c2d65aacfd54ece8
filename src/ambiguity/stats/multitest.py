"""Multiple-comparison correction: a thin wrapper on statsmodels' ``multipletests``.

The only thing added is how missing p-values are treated: a NaN p (a feature that
could not be tested) is left out of the family, so it neither counts towards the
number of tests nor spreads NaN to the others, and its adjusted p stays NaN.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from ambiguity.constants import CORRECTIONS
from ambiguity.errors import StatsError


def check_correction(method: str) -> str:
    if method not in CORRECTIONS:
        raise StatsError(f"unknown correction {method!r}: use one of {', '.join(CORRECTIONS)}")
    return method


def check_alpha(alpha: float, name: str = "alpha") -> float:
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise StatsError(f"{name} must be a number in (0, 1), got {alpha!r}") from None
    if not 0.0 < value < 1.0:
        raise StatsError(f"{name} must be in (0, 1), got {alpha!r}")
    return value


@contextmanager
def _frozen_heap() -> Iterator[None]:
    """Make a full ``gc.collect()`` cheap for a moment.

    statsmodels' Holm branch calls ``gc.collect()``; in a process with pandas, polars and
    scipy loaded that walks ~10^5 objects and costs 0.1-0.3 s, 100 times the correction
    itself. Frozen objects are skipped by the collector; they are unfrozen right after.
    """
    if gc.get_freeze_count():  # the caller uses gc.freeze() itself: leave its state alone
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def adjust(
    pvalues: Sequence[float] | np.ndarray, method: str = "holm", alpha: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Adjusted p-values and reject flags for one family of tests.

    Parameters
    ----------
    pvalues : raw p-values; NaN marks a test that was not run (left out of the family).
    method : ``holm`` (default), ``fdr_bh``, ``fdr_by``, ``bonferroni``, ``hommel`` or ``none``.
    alpha : family-wise error rate (Holm, Bonferroni, Hommel) or false discovery rate (BH, BY).

    Returns
    -------
    (p_adjusted, reject) : float array (NaN where p is NaN) and bool array (False where p is NaN).

    Notes
    -----
    Computed by :func:`statsmodels.stats.multitest.multipletests` on the finite p-values only.
    ``none`` returns the raw p-values and rejects where ``p <= alpha``.

    Examples
    --------
    >>> p_adj, reject = adjust([0.01, float("nan"), 0.04], "bonferroni")
    >>> [round(float(v), 2) for v in p_adj]
    [0.02, nan, 0.08]
    """
    check_correction(method)
    alpha = check_alpha(alpha)
    p = np.asarray(pvalues, dtype=np.float64).reshape(-1)
    ok = np.isfinite(p)
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        bad = p[ok][(p[ok] < 0) | (p[ok] > 1)][0]
        raise StatsError(f"p-values must lie in [0, 1]; got {float(bad)!r}")
    if np.any(np.isinf(p)):
        raise StatsError("p-values must be finite or NaN; got an infinite value")
    p_adj = np.full(p.shape, np.nan)
    reject = np.zeros(p.shape, dtype=bool)
    if not ok.any():
        return p_adj, reject
    if method == "none":
        p_adj[ok] = p[ok]
        reject[ok] = p[ok] <= alpha
        return p_adj, reject
    from statsmodels.stats.multitest import multipletests  # 1.1 s CPU to import

    with _frozen_heap():
        rej, corrected, _, _ = multipletests(p[ok], alpha=alpha, method=method)
    p_adj[ok] = corrected
    reject[ok] = rej
    return p_adj, reject
