"""The per-feature core of the comparisons: moments, t / U statistics, and a pair of groups on every
feature read a batch of columns at a time.

The hot path has no per-feature Python loop: moments are numpy reductions over the
(rows x features) matrix, and scipy runs the test once per distinct pair of group sizes
(features that lost the same number of rows to NaN share one call). Every number of a feature
but its corrected p depends on that feature's column only, so the features are tested a batch
of columns at a time (:func:`compare_batches`) and memory grows with the rows, not the features.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from ambiguity.errors import StatsError
from ambiguity.stats import effsize
from ambiguity.stats.adjusted import adjusted_columns, label_counts, n_clusters
from ambiguity.stats.bayes import student_bf10
from ambiguity.stats.multitest import adjust
from ambiguity.stats.results import ComparisonResult

#: The test of an adjusted comparison (its ``test`` attribute): OLS within label, CR2 errors, Bell-McCaffrey df.
ADJUSTED_TEST = "ols_cr2"


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
        packed = x.copy()
        for j in np.flatnonzero(n < rows):  # O(rows) per column, not a sort
            v = x[~nan[:, j], j]
            packed[: v.size, j], packed[v.size :, j] = v, np.nan
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


# -- one pair of groups on every feature, a batch of columns at a time ---------------------------
#: A batch of columns holds about this many values (rows x columns; 32 MB as float64), so a
#: comparison's memory does not grow with the number of features (bench/million.py).
BATCH_VALUES = 4_000_000


def batch_size(rows: int, column_batch: int | None) -> int:
    """Columns per batch: ``column_batch``, or as many as keep a batch near ``BATCH_VALUES`` values."""
    if column_batch is not None:
        if column_batch < 1:
            raise StatsError(f"column_batch={column_batch}: read at least one column at a time")
        return column_batch
    return max(1, BATCH_VALUES // max(rows, 1))


def column_stats(
    x: np.ndarray, in_a: np.ndarray, in_b: np.ndarray, a: str, b: str, test: str, ci: float, bayes: bool,
    strata: np.ndarray | None, clusters: np.ndarray | None, cache: dict,
) -> dict[str, Any]:
    """Every per-feature number of one pair on a batch of columns (``x``, rows x columns): all but
    the correction, which needs every feature. ``strata`` (label codes per row) switches to the
    adjusted test (:mod:`ambiguity.stats.adjusted`), ``clusters`` (with ``strata``) clusters its errors."""
    finite = np.isfinite(x)
    if not finite.all():
        x = np.where(finite, x, np.nan)  # NaN and +-Inf are missing values
    xa, xb = x[in_a], x[in_b]
    # Scale features of extreme magnitude by a power of two (exact), so that squares neither
    # overflow nor underflow; t, U and p do not depend on scale.
    top = np.fmax(np.fmax.reduce(np.abs(xa), axis=0, initial=0.0), np.fmax.reduce(np.abs(xb), axis=0, initial=0.0))
    # Only those: a 0/1 column scaled by 1/2 would no longer be binary.
    _, exp = np.frexp(np.where(top > 0, top, 1.0))
    exp = np.where((top > 0) & ((exp > 400) | (exp < -400)), exp, 0)
    if exp.any():
        xa, xb = np.ldexp(xa, -exp), np.ldexp(xb, -exp)
    pa, n_a, mean_a, var_a, lo_a, hi_a, const_a = moments(xa)
    pb, n_b, mean_b, var_b, lo_b, hi_b, const_b = moments(xb)
    k = x.shape[1]

    reasons: list[str | None] = [None] * k
    few_a, few_b = n_a < 2, n_b < 2
    if test == "mannwhitney":
        flat = const_a & const_b & (lo_a == lo_b)
        flat_msg = "all values equal in both groups"
    else:
        flat = const_a & const_b
        flat_msg = "zero variance in both groups"
    for i in np.flatnonzero(few_a | few_b | flat):
        why = []
        if few_a[i]:
            why.append(f"n_{a} = {n_a[i]} < 2")
        if few_b[i]:
            why.append(f"n_{b} = {n_b[i]} < 2")
        if not why:
            why.append(flat_msg)
        reasons[i] = "; ".join(why)
    testable = np.flatnonzero(~(few_a | few_b | flat))

    stat, df, p = (np.full(k, np.nan) for _ in range(3))
    extra: dict[str, np.ndarray] = {}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        if strata is not None:
            extra = adjusted_columns(np.ldexp(x, -exp) if exp.any() else x, in_a, in_b, strata, clusters, testable, ci, cache)
            s, d, pv = extra["statistic"][testable], extra["df"][testable], extra["p"][testable]
            for i in testable[np.asarray(extra["reason"][testable] != None)]:  # noqa: E711 (object array)
                reasons[i] = extra["reason"][i]
        else:
            s, d, pv = run_tests(pa, pb, (n_a, mean_a, var_a), (n_b, mean_b, var_b), testable, test)
    del pa, pb, xa, xb
    stat[testable], df[testable], p[testable] = s, d, pv
    broken = testable[~(np.isfinite(stat[testable]) & np.isfinite(p[testable]))]
    for i in broken:
        reasons[i] = reasons[i] or "statistic undefined (numerical)"
    stat[broken] = df[broken] = p[broken] = np.nan
    if test == "mannwhitney":
        df[:] = np.nan

    tested = np.isfinite(p)
    nan = np.full(k, np.nan)
    with np.errstate(over="ignore", invalid="ignore"):
        if strata is not None:  # within-label effect sizes: the adjusted difference over the within-cell SD
            d, d_lo, d_hi = (np.where(tested, extra[key], np.nan) for key in ("d", "d_low", "d_high"))
            j = effsize.hedges_correction(n_a, n_b)
            g, g_lo, g_hi = d * j, d_lo * j, d_hi * j
            estimate, se = np.ldexp(extra["estimate"], exp), np.ldexp(extra["se"], exp)
            kind, odds = extra["kind"].tolist(), extra["odds_ratio"]
            sign = np.where(tested, extra["estimate"], mean_a - mean_b)
        else:
            d = np.where(tested, effsize.cohen_d(mean_a, mean_b, var_a, var_b, n_a, n_b), np.nan)
            g = effsize.hedges_g(d, n_a, n_b)
            d_lo, d_hi = effsize.d_ci(d, n_a, n_b, ci)
            g_lo, g_hi = effsize.d_ci(g, n_a, n_b, ci)
            estimate, se = np.ldexp(mean_a - mean_b, exp), nan
            kind, odds = ["continuous"] * k, nan
        rbc = effsize.rank_biserial(stat, n_a, n_b) if test == "mannwhitney" else nan
        if strata is None:
            sign = rbc if test == "mannwhitney" else np.where(tested, stat, mean_a - mean_b)
        return {
            "n_a": n_a.astype(np.int64), "n_b": n_b.astype(np.int64),
            "mean_a": np.ldexp(mean_a, exp), "mean_b": np.ldexp(mean_b, exp),
            "sd_a": np.ldexp(np.sqrt(var_a), exp), "sd_b": np.ldexp(np.sqrt(var_b), exp),
            "statistic": stat, "df": df, "p": p,
            "cohen_d": d, "d_ci_low": d_lo, "d_ci_high": d_hi, "hedges_g": g, "g_ci_low": g_lo, "g_ci_high": g_hi,
            "rank_biserial": rbc,
            "bf10": student_bf10(n_a, mean_a, var_a, n_b, mean_b, var_b, testable) if bayes else nan,
            "estimate": estimate, "se": se, "odds_ratio": odds, "kind": kind, "reason": reasons, "sign": sign,
        }


_NUMBERS = ("n_a", "n_b", "mean_a", "mean_b", "sd_a", "sd_b", "statistic", "df", "p")
_EFFECTS = ("cohen_d", "d_ci_low", "d_ci_high", "hedges_g", "g_ci_low", "g_ci_high", "rank_biserial", "bf10", "estimate", "se", "odds_ratio")


def table_result(
    parts: list[dict[str, Any]], names: list[str], a: str, b: str, test: str, correction: str, alpha: float, ci: float,
    bayes: bool, label: str | None, adjusted: bool, label_mix: tuple[tuple[str, str, int], ...],
    clusters: int | None, group_by: str | None,
) -> ComparisonResult:
    """One correction family from the batches' per-feature numbers (``parts``, in column order)."""
    col = {k: np.concatenate([part[k] for part in parts]) for k in (*_NUMBERS, *_EFFECTS, "sign")}
    text = {k: [v for part in parts for v in part[k]] for k in ("kind", "reason")}
    p_adj, reject = adjust(col["p"], correction, alpha)
    direction, higher = direction_text(a, b, col["sign"], test)
    table = pl.DataFrame(
        {"feature": names, **{k: col[k] for k in _NUMBERS}, "p_adj": p_adj, "reject": reject,
         **{k: col[k] for k in _EFFECTS}, "kind": text["kind"], "direction": direction, "higher": higher, "reason": text["reason"]},
        schema_overrides={"direction": pl.String, "higher": pl.String, "reason": pl.String, "kind": pl.String},
        nan_to_null=False,
    )
    return ComparisonResult(
        a=a, b=b, test=ADJUSTED_TEST if adjusted else test, correction=correction, alpha=alpha, ci=ci,
        family_size=int(np.isfinite(col["p"]).sum()), table=table, bayes=bayes, label=label,
        label_counts=label_mix, group_by=group_by, n_clusters=clusters,
    )


def compare_batches(
    read: Callable[[list[str]], np.ndarray], names: list[str], pairs: list[tuple[str, str, np.ndarray, np.ndarray]],
    test: str, correction: str, alpha: float, ci: float, bayes: bool, label: str | None,
    strata: tuple[np.ndarray, list[str]] | None, shown: tuple[np.ndarray, list[str]] | None,
    clusters: np.ndarray | None, group_by: str | None, column_batch: int | None,
) -> list[ComparisonResult]:
    """Each pair (a, b, rows of a, rows of b) on every column, reading ``column_batch`` columns at a
    time with ``read(names)`` (rows x names): memory grows with the rows, not with the features.
    ``strata`` (label codes and names) switches to the adjusted test; ``shown`` (the same) only
    gives the label mix of an unadjusted test."""
    rows = len(pairs[0][2]) if pairs else 0
    step = batch_size(rows, column_batch)
    parts: list[list[dict[str, Any]]] = [[] for _ in pairs]
    caches: list[dict] = [{} for _ in pairs]  # one design per pair and pattern of missing values
    lab = None if strata is None else strata[0]
    for start in range(0, len(names), step):
        x = read(names[start:start + step])
        for i, (a, b, in_a, in_b) in enumerate(pairs):
            parts[i].append(column_stats(x, in_a, in_b, a, b, test, ci, bayes, lab, clusters, caches[i]))
        del x
    mix = strata or shown
    return [
        table_result(parts[i], names, a, b, test, correction, alpha, ci, bayes, label, strata is not None,
                label_counts(in_a, in_b, a, b, *mix) if mix else (),
                n_clusters(clusters, in_a | in_b) if strata is not None else None, group_by)
        for i, (a, b, in_a, in_b) in enumerate(pairs)
    ]
