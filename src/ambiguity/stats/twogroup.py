"""The vectorised core of the unadjusted two-group tests: moments and t / U statistics over many features.

The hot path has no per-feature Python loop: moments are numpy reductions over the
(rows x features) matrix, and scipy runs the test once per distinct pair of group sizes
(features that lost the same number of rows to NaN share one call).
"""

from __future__ import annotations

import numpy as np


def _columns(packed: np.ndarray, n: int, cols: np.ndarray) -> np.ndarray:
    """The first ``n`` rows of ``cols`` as a row-major block of at least two columns.

    numpy reduces such a block down each column in row order whatever its width (a lone
    contiguous column would be summed pairwise instead), so a feature's result never
    depends on which other features share its call. A single column is doubled.
    """
    if len(cols) == packed.shape[1] > 1:
        return packed[:n]  # already row-major: no copy
    block = packed[:n, cols] if len(cols) > 1 else packed[:n, np.r_[cols, cols]]
    return np.ascontiguousarray(block)


def moments(x: np.ndarray) -> tuple[np.ndarray, ...]:
    """packed values, n, mean, variance (ddof=1; exactly 0 for a constant column), min, max per column.

    NaN are missing: each column's other values are moved to the top ("packed"), in order.
    """
    rows, p = x.shape
    nan = np.isnan(x)
    if nan.any():
        n = rows - nan.sum(axis=0)
        packed = np.take_along_axis(x, np.argsort(nan, axis=0, kind="stable"), axis=0)
        lo = np.fmin.reduce(x, axis=0, initial=np.inf)
        hi = np.fmax.reduce(x, axis=0, initial=-np.inf)
    else:
        n = np.full(p, rows)
        packed = x
        lo = x.min(axis=0, initial=np.inf)
        hi = x.max(axis=0, initial=-np.inf)
    mean = np.full(p, np.nan)
    var = np.full(p, np.nan)
    with np.errstate(invalid="ignore", over="ignore"):
        for m in np.unique(n[n >= 1]):
            cols = np.flatnonzero(n == m)
            block = _columns(packed, int(m), cols)
            mu = block.mean(axis=0)
            if m >= 2:
                dev = block - mu
                var[cols] = np.einsum("ij,ij->j", dev, dev)[: len(cols)] / (m - 1)
            mean[cols] = mu[: len(cols)]
    const = (n >= 1) & (lo == hi)
    # The two-pass variance of identical values can come out as a tiny positive number.
    var[const & (n >= 2)] = 0.0
    return packed, n, mean, var, lo, hi, const


def _has_ties(xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
    both = np.sort(np.concatenate([xa, xb], axis=0), axis=0)
    return (np.diff(both, axis=0) == 0).any(axis=0)


def run_tests(
    pa: np.ndarray, pb: np.ndarray, mom_a: tuple[np.ndarray, ...], mom_b: tuple[np.ndarray, ...], cols: np.ndarray, test: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """statistic, df, p for the columns ``cols``.

    t-tests: :func:`scipy.stats.ttest_ind_from_stats` on the per-feature n, mean and SD, in
    one call. Mann-Whitney: :func:`scipy.stats.mannwhitneyu`, once per distinct (n_a, n_b).
    """
    from scipy import stats  # scipy.stats: 0.7 s CPU to import, only here

    k = len(cols)
    stat, df, p = np.full(k, np.nan), np.full(k, np.nan), np.full(k, np.nan)
    if k == 0:
        return stat, df, p
    n_a, mean_a, var_a = mom_a
    n_b, mean_b, var_b = mom_b
    if test != "mannwhitney":
        na, nb, va, vb = n_a[cols].astype(np.float64), n_b[cols].astype(np.float64), var_a[cols], var_b[cols]
        r = stats.ttest_ind_from_stats(mean_a[cols], np.sqrt(va), na, mean_b[cols], np.sqrt(vb), nb, equal_var=test == "student")
        if test == "student":
            df = na + nb - 2
        else:  # Welch-Satterthwaite, as scipy computes it inside ttest_ind
            vna, vnb = va / na, vb / nb
            df = (vna + vnb) ** 2 / (vna**2 / (na - 1) + vnb**2 / (nb - 1))
        return np.asarray(r.statistic, dtype=np.float64), df, np.asarray(r.pvalue, dtype=np.float64)
    key = n_a[cols].astype(np.int64) * (pb.shape[0] + 1) + n_b[cols]
    _, inverse = np.unique(key, return_inverse=True)
    for j in range(inverse.max() + 1):
        where = np.flatnonzero(inverse == j)
        sel = cols[where]
        na, nb = int(n_a[sel[0]]), int(n_b[sel[0]])
        xa, xb = _columns(pa, na, sel), _columns(pb, nb, sel)
        if len(sel) == 1:
            xa, xb = xa[:, :1], xb[:, :1]
        # scipy's method="auto" decides exact vs asymptotic for the whole batch; decide per column.
        small = na <= 8 or nb <= 8
        ties = _has_ties(xa, xb) if small else np.ones(len(sel), bool)
        for method, part in (("asymptotic", ties), ("exact", ~ties)):
            if part.any():
                r = stats.mannwhitneyu(xa[:, part], xb[:, part], axis=0, alternative="two-sided", method=method)
                stat[where[part]], p[where[part]] = r.statistic, r.pvalue
    return stat, df, p




def direction_text(a: str, b: str, sign: np.ndarray, test: str) -> tuple[list[str | None], list[str | None]]:
    """``μ_a > μ_b`` (t-tests) or ``a > b`` (Mann-Whitney) from the sign; the same text whichever group is first."""
    fmt = "{} > {}" if test == "mannwhitney" else "μ_{} > μ_{}"
    eq = ("{} = {}" if test == "mannwhitney" else "μ_{} = μ_{}").format(*sorted((a, b)))
    with np.errstate(invalid="ignore"):
        pos, neg = sign > 0, sign < 0
    nan = ~np.isfinite(sign)
    direction = np.where(pos, fmt.format(a, b), np.where(neg, fmt.format(b, a), eq)).astype(object)
    higher = np.where(pos, a, b).astype(object)
    direction[nan] = None
    higher[nan | (~pos & ~neg)] = None
    return direction.tolist(), higher.tolist()
