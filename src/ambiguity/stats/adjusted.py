"""Group a vs group b within labels, combined: OLS ``y ~ 1[a] + C(label)`` with CR2 errors and Bell-McCaffrey df.

Why this test (docs/statistics.md, "Adjusted comparisons"):

* **Within label.** The quadrants mix the labels in different proportions and most features
  differ by label, so a plain two-group test confounds the two. The coefficient of the group
  indicator in a regression with one intercept per label is a weighted mean of the within-label
  differences (weights n_a,l n_b,l / n_l, the precision weights under equal variances); a label
  seen in only one group adds nothing to it.
* **Robust errors that hold in small and unbalanced samples.** The variance is the CR2 sandwich
  of Bell & McCaffrey (2002): each cluster's residuals are scaled by (I - H_gg)^(-1/2). Without
  clusters (each segment its own cluster) that is HC2, and with a single label HC2 is exactly
  Welch's variance. The reference distribution is t with the Bell-McCaffrey degrees of freedom
  (Satterthwaite under a working model of independent, equal-variance errors; Imbens & Kolesar
  2016, Pustejovsky & Tipton 2018): with 12 vs 150 segments or 25 speakers the df are small and
  the test keeps its level, where HC1/CR1 errors with normal quantiles over-reject.
* **Clusters.** With ``clusters`` (a speaker or dialog per segment) the residuals of one cluster
  are summed before squaring, so 16 segments of one speaker count as one source of error, not 16.

Everything is closed form through Frisch-Waugh: d = 1[a] minus its label mean, beta = d'y / d'd,
hat values 1/n_l + d_i^2 / d'd, so many features (columns of ``y``) share one set of weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Design:
    """What the test needs of the rows: everything here depends on groups, labels and clusters, not on y."""

    d: np.ndarray  # 1[a] minus its label mean
    sdd: float  # d'd
    onehot: np.ndarray  # rows x labels
    n_label: np.ndarray
    cluster: np.ndarray  # cluster code per row (0..G-1)
    n_clusters: int
    u: np.ndarray  # CR2-scaled contrast weights per row: A_g d_g / d'd
    df: float  # Bell-McCaffrey degrees of freedom
    ok: bool
    reason: str | None
    order: np.ndarray | None = None  # rows sorted by cluster, and where each cluster starts (fit sums by cluster)
    starts: np.ndarray | None = None


def _codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    _, codes = np.unique(values, return_inverse=True)
    return codes.reshape(-1).astype(np.int64), int(codes.max()) + 1 if codes.size else 0


def design(in_a: np.ndarray, labels: np.ndarray, clusters: np.ndarray | None = None) -> Design:
    """The design of rows that are in a or b (``in_a`` True for a), their labels and optional clusters."""
    n = in_a.size
    lab, n_lab = _codes(labels)
    onehot = np.zeros((n, max(n_lab, 1)))
    onehot[np.arange(n), lab] = 1.0
    n_label = onehot.sum(axis=0)
    ind = in_a.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = (onehot.T @ ind) / n_label
    d = ind - share[lab]
    sdd = float(d @ d)
    if clusters is None:
        cl, n_cl = np.arange(n), n
    else:
        cl, n_cl = _codes(clusters)
    empty = Design(d, sdd, onehot, n_label, cl, n_cl, np.zeros(n), np.nan, False, None)
    if sdd <= 1e-12 * max(n, 1):
        return _fail(empty, "no label has segments in both groups")
    h = 1.0 / n_label[lab] + d * d / sdd
    if clusters is None:
        if np.any(1.0 - h <= 1e-10):
            return _fail(empty, "a segment has leverage 1 (a group of one within its label)")
        u = d / sdd / np.sqrt(1.0 - h)
    else:
        cr2 = _cr2_weights(d, sdd, lab, n_label, cl, n_cl)
        if cr2 is None:
            return _fail(empty, "a cluster is fitted exactly (I - H_gg is singular): too few clusters per label")
        u = cr2
    df = _bell_mccaffrey(u, d, sdd, onehot, n_label, cl, n_cl)
    order = starts = None
    if n_cl < n:  # sorted once here, not once per batch of features
        order = np.argsort(cl, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(cl[order]) != 0])
    return Design(d, sdd, onehot, n_label, cl, n_cl, u, df, bool(np.isfinite(df) and df > 0), None, order, starts)


def _cr2_weights(d, sdd, lab, n_label, cl, n_cl) -> np.ndarray | None:
    """u = A_g d_g / d'd for every cluster g, A_g = (I - H_gg)^(-1/2); None where some I - H_gg is singular.

    H_gg = W_g W_g' with rows w_i = (e_label(i) / sqrt(n_label), d_i / sqrt(d'd)): r = labels + 1
    columns. So I - H_gg is 1 - s on the span of W_g (s the eigenvalues of the r x r W_g'W_g) and 1
    elsewhere, and A_g d_g = d_g + W_g V f(S) V' W_g'd_g with f(s) = ((1 - s)^(-1/2) - 1) / s.
    That is O(n r^2) whatever the cluster sizes: no n_g x n_g matrix (a speaker with 10^4 segments).
    """
    n, r = len(d), len(n_label) + 1
    w = np.zeros((n, r))
    w[np.arange(n), lab] = 1.0 / np.sqrt(n_label[lab])
    w[:, -1] = d / np.sqrt(sdd)
    gram = np.empty((n_cl, r, r))
    for j in range(r):
        for k in range(j, r):
            gram[:, j, k] = gram[:, k, j] = np.bincount(cl, w[:, j] * w[:, k], minlength=n_cl)
    wd = np.column_stack([np.bincount(cl, w[:, j] * d, minlength=n_cl) for j in range(r)])  # W_g'd_g
    s, v = np.linalg.eigh(gram)
    if np.any(1.0 - s <= 1e-10):
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(np.abs(s) > 1e-12, np.expm1(-0.5 * np.log1p(-s)) / s, 0.5)
    z = np.einsum("gij,gj->gi", v, f * np.einsum("gji,gj->gi", v, wd))
    return (d + np.einsum("ij,ij->i", w, z[cl])) / sdd


def _fail(design: Design, reason: str) -> Design:
    return Design(design.d, design.sdd, design.onehot, design.n_label, design.cluster, design.n_clusters,
                  design.u, np.nan, False, reason)


def _bell_mccaffrey(u, d, sdd, onehot, n_label, cl, n_cl) -> float:
    """(tr B)^2 / ||B||_F^2, B = U'(I - H)U, U the rows x clusters matrix holding u (B is Cov of the cluster scores / sigma^2).

    I - H = I - P_labels - d d'/d'd, so B = D - M N M' - v v'/d'd with D = diag(sum_g u^2),
    M[g, l] = sum of u over cluster g and label l, N = diag(1/n_l), v_g = sum_g u d. Traces and
    Frobenius norms are taken without forming the (clusters x clusters) matrix, so a cluster per
    segment costs O(n labels^2).
    """
    dg = np.bincount(cl, u * u, minlength=n_cl)
    m = np.column_stack([np.bincount(cl, onehot[:, j] * u, minlength=n_cl) for j in range(onehot.shape[1])])
    v = np.bincount(cl, u * d, minlength=n_cl)
    inv_n = 1.0 / n_label
    mtm = m.T @ m  # labels x labels
    mv = m.T @ v
    trace = dg.sum() - (inv_n * (m * m).sum(axis=0)).sum() - v @ v / sdd
    s = np.sqrt(inv_n)
    k = s[:, None] * mtm * s[None, :]  # N^1/2 M'M N^1/2
    frob = (
        (dg * dg).sum()
        + (k * k).sum()
        + (v @ v) ** 2 / sdd**2
        - 2 * (inv_n * ((m * m) * dg[:, None]).sum(axis=0)).sum()
        - 2 * (v * v * dg).sum() / sdd
        + 2 * (mv * inv_n) @ mv / sdd
    )
    return float(trace * trace / frob) if frob > 0 else np.nan


def fit(des: Design, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """beta (a minus b within label), its CR2 standard error, t, two-sided p; ``y`` is rows x features."""
    from scipy.stats import t as t_dist  # 0.9 s CPU to import

    k = y.shape[1]
    if not des.ok:
        nan = np.full(k, np.nan)
        return nan, nan.copy(), nan.copy(), nan.copy()
    lab = des.onehot.argmax(axis=1)
    beta = colsums(des.d[:, None] * y) / des.sdd
    resid = y - _group_means(lab, des.onehot.shape[1], y)[lab] - des.d[:, None] * beta[None, :]
    weighted = des.u[:, None] * resid
    if des.n_clusters == len(des.cluster):  # a cluster per segment (HC2): the scores are the rows
        scores = weighted
    else:  # sum each cluster's rows (sorted once in design; reduceat is far faster than add.at)
        assert des.order is not None and des.starts is not None
        scores = np.add.reduceat(weighted[des.order], des.starts, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(colsums(scores * scores))
        t = beta / se
    p = 2.0 * t_dist.sf(np.abs(t), des.df)
    bad = ~(se > 0)
    t[bad], p[bad] = np.nan, np.nan
    return beta, se, t, p


def within_sd(des: Design, in_a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The SD pooled over the (label x group) cells: the scale of the within-label effect size."""
    cell = 2 * des.onehot.argmax(axis=1) + ~in_a
    resid = y - _group_means(cell, 2 * des.onehot.shape[1], y)[cell]
    dof = y.shape[0] - np.unique(cell).size
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(colsums(resid * resid) / dof) if dof > 0 else np.full(y.shape[1], np.nan)


def colsums(m: np.ndarray) -> np.ndarray:
    """Column sums of (rows x columns) ``m``, each column added pairwise on its own: accurate, and a
    feature's result never depends on the batch of columns it is tested in, as it would with a
    matrix product or numpy's row-by-row sum over axis 0."""
    return np.array([np.add.reduce(m[:, j]) for j in range(m.shape[1])])


def _group_means(codes: np.ndarray, n_groups: int, y: np.ndarray) -> np.ndarray:
    """(groups x columns) mean of ``y``'s rows per code (NaN for an empty group)."""
    out = np.full((n_groups, y.shape[1]), np.nan)
    for g in np.unique(codes):
        rows = y[codes == g]
        out[g] = colsums(rows) / rows.shape[0]
    return out


def cmh(in_a: np.ndarray, labels: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Cochran-Mantel-Haenszel test of a binary ``y`` (0/1) between a and b, stratified by label.

    Returns (chi-square with continuity correction, p, Mantel-Haenszel common odds ratio of y = 1
    in a vs b). Strata with one row or one group only carry no information and are skipped.
    """
    from statsmodels.stats.contingency_tables import StratifiedTable  # 1.2 s CPU to import

    tables = []
    for lab in np.unique(labels):
        m = labels == lab
        ya, yb = y[m & in_a], y[m & ~in_a]
        if ya.size and yb.size:
            tables.append(np.array([[ya.sum(), ya.size - ya.sum()], [yb.sum(), yb.size - yb.sum()]], dtype=np.float64))
    if not tables:
        return np.nan, np.nan, np.nan
    st = StratifiedTable(tables)
    with np.errstate(all="ignore"):
        r = st.test_null_odds(correction=True)
        odds = float(st.oddsratio_pooled)
    return float(r.statistic), float(r.pvalue), odds


def _patterns(ok: np.ndarray) -> list[np.ndarray]:
    """Columns of ``ok`` (rows x features, bool) grouped by identical row masks: one design per group."""
    if ok.shape[1] == 0:
        return []
    if ok.all():
        return [np.arange(ok.shape[1])]
    groups: dict[bytes, list[int]] = {}  # by the packed mask: np.unique(axis=0) on n/8-byte rows is slow
    for j in range(ok.shape[1]):
        groups.setdefault(np.packbits(ok[:, j]).tobytes(), []).append(j)
    return [np.array(cols) for cols in groups.values()]


def is_binary(x: np.ndarray) -> np.ndarray:
    """Columns whose finite values are all 0 or 1 (AU presence, a sex flag): tested as counts, not means."""
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(x)
        return np.all(~ok | (x == 0) | (x == 1), axis=0)


#: Integer-valued features with this many levels or fewer (and more than two) are ordinal (an intensity level).
MAX_ORDINAL_LEVELS = 10


def kinds(x: np.ndarray) -> np.ndarray:
    """``binary`` (0/1), ``ordinal`` (3 to MAX_ORDINAL_LEVELS integer levels) or ``continuous`` per column."""
    out = np.where(is_binary(x), "binary", "continuous").astype(object)
    for j in np.flatnonzero(out == "continuous"):
        v = x[:, j][np.isfinite(x[:, j])]
        if v.size and np.all(v == np.round(v)) and 2 < np.unique(v).size <= MAX_ORDINAL_LEVELS:
            out[j] = "ordinal"
    return out


def stratified_rank_test(in_a: np.ndarray, labels: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The CMH mean-score test with midrank scores within each label (the stratified Wilcoxon test of an
    ordinal ``y``; Landis, Heyman & Koch 1978). Returns (chi-square on 1 df, p).

    Per label h: T_h = sum of the scores of group a, E T_h = n_a,h mean_h, Var T_h = n_a,h n_b,h / (n_h - 1) * v_h
    with v_h the scores' variance (divisor n_h); Q = (sum_h T_h - E T_h)^2 / sum_h Var T_h.
    """
    from scipy.stats import chi2, rankdata  # 0.9 s CPU to import

    dev = var = 0.0
    for lab in np.unique(labels):
        m = labels == lab
        n = int(m.sum())
        na = int((m & in_a).sum())
        if n < 2 or na == 0 or na == n:
            continue
        r = rankdata(y[m])
        dev += float(r[in_a[m]].sum() - na * r.mean())
        var += na * (n - na) / (n - 1) * float(r.var())
    if var <= 0:
        return np.nan, np.nan
    q = dev * dev / var
    return q, float(chi2.sf(q, 1))


def adjusted_columns(
    x: np.ndarray, in_a: np.ndarray, in_b: np.ndarray, strata: np.ndarray, clusters: np.ndarray | None,
    testable: np.ndarray, ci: float, cache: dict | None = None,
) -> dict[str, np.ndarray]:
    """The adjusted test of every testable column of ``x`` (rows x features, NaN missing).

    Continuous columns: :func:`fit`. Binary (0/1) columns without clusters: :func:`cmh`; ordinal
    ones (:func:`kinds`): :func:`stratified_rank_test`; with clusters both go through the same
    regression (on 0/1 a linear probability model), whose CR2 errors allow for the clustering
    that the stratified tests ignore. Returns arrays over all columns (NaN where not tested) and a
    ``reason`` array for columns the design could not test. ``cache`` keeps designs by pattern of
    missing values across calls on the same rows (batches of columns).
    """
    from scipy.stats import t as t_dist  # 0.9 s CPU to import

    p_all = x.shape[1]
    out = {k: np.full(p_all, np.nan) for k in ("estimate", "se", "statistic", "df", "p", "d", "d_low", "d_high", "odds_ratio")}
    reason = np.full(p_all, None, dtype=object)
    rows = in_a | in_b
    xa = x[rows]
    kind = kinds(xa)  # of the compared rows
    a_rows, lab = in_a[rows], strata[rows]
    cl = None if clusters is None else clusters[rows]
    ok = np.isfinite(xa)
    for cols in _patterns(ok[:, testable]):
        cols = testable[cols]
        keep = ok[:, cols[0]]
        des = _cached_design(cache, keep, a_rows, lab, cl)
        if not des.ok:
            reason[cols] = des.reason or "the design has no degrees of freedom"
            continue
        y = xa[:, cols] if keep.all() else xa[np.ix_(keep, cols)]  # one copy, not two
        beta, se, t, p = fit(des, y)
        sw = within_sd(des, a_rows[keep], y)
        crit = float(t_dist.ppf(0.5 + ci / 2, des.df))
        with np.errstate(invalid="ignore", divide="ignore"):
            out["d"][cols] = np.where(sw > 0, beta / sw, np.nan)
            out["d_low"][cols] = np.where(sw > 0, (beta - crit * se) / sw, np.nan)
            out["d_high"][cols] = np.where(sw > 0, (beta + crit * se) / sw, np.nan)
        out["estimate"][cols], out["se"][cols], out["statistic"][cols], out["p"][cols] = beta, se, t, p
        out["df"][cols] = des.df
        for j, c in enumerate(cols):
            if kind[c] == "binary":
                chi2, p_cmh, odds = cmh(a_rows[keep], lab[keep], y[:, j])
                out["odds_ratio"][c] = odds
                if cl is None:  # CMH: chi-square on 1 df; the direction comes from the estimate
                    out["statistic"][c], out["p"][c], out["df"][c] = chi2, p_cmh, 1.0
            elif kind[c] == "ordinal" and cl is None:  # with clusters: the regression on the levels, as for binary
                q, p_rank = stratified_rank_test(a_rows[keep], lab[keep], y[:, j])
                out["statistic"][c], out["p"][c], out["df"][c] = q, p_rank, 1.0
    return {**out, "kind": kind, "reason": reason}


def _cached_design(cache: dict | None, keep: np.ndarray, a_rows: np.ndarray, lab: np.ndarray, cl: np.ndarray | None) -> Design:
    key = np.packbits(keep).tobytes()
    if cache is not None and key in cache:
        return cache[key]
    des = design(a_rows[keep], lab[keep], None if cl is None else cl[keep])
    if cache is not None:
        if len(cache) >= 4:  # a few patterns (no NaN; NaN where a feature failed) cover most columns
            cache.pop(next(iter(cache)))
        cache[key] = des
    return des


def label_counts(in_a, in_b, a: str, b: str, codes: np.ndarray | None, names: Sequence[str] = ()) -> tuple[tuple[str, str, int], ...]:
    """(group, label, count) of the compared rows; empty without labels. ``codes`` index ``names``;
    -1 (no label) is shown as ``None``."""
    if codes is None:
        return ()
    out = []
    for g, m in ((a, in_a), (b, in_b)):
        values, counts = np.unique(codes[m], return_counts=True)
        shown = sorted((names[v] if v >= 0 else "None", int(c)) for v, c in zip(values, counts, strict=True))
        out += [(g, lab, c) for lab, c in shown]
    return tuple(out)


def n_clusters(clusters: np.ndarray | None, rows: np.ndarray) -> int | None:
    return None if clusters is None else len(np.unique(clusters[rows]))
