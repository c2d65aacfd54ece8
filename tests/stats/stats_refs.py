"""From-the-definition references for the statistics, written independently of the code under
test and of the libraries it wraps (statsmodels, krippendorff, pingouin). Each names its source."""

from __future__ import annotations

import itertools
import math

import numpy as np
import scipy.integrate
import scipy.stats


def _order(p):
    o = np.argsort(p, kind="stable")
    return o, p[o]


def ref_bonferroni(p):
    return np.minimum(1.0, len(p) * p)


def ref_holm(p):
    m = len(p)
    o, s = _order(p)
    adj = np.empty(m)
    running = 0.0
    for i in range(m):
        running = max(running, min(1.0, (m - i) * s[i]))
        adj[o[i]] = running
    return adj


def ref_bh(p, factor=1.0):
    m = len(p)
    o, s = _order(p)
    adj = np.empty(m)
    running = 1.0
    for i in range(m - 1, -1, -1):
        running = min(running, min(1.0, factor * m * s[i] / (i + 1)))
        adj[o[i]] = running
    return adj


def ref_by(p):
    return ref_bh(p, factor=sum(1.0 / k for k in range(1, len(p) + 1)))


def _simes(ps):
    s = np.sort(ps)
    return min(1.0, float(np.min(len(s) * s / np.arange(1, len(s) + 1))))


def ref_closed(p, local):
    """Closed testing: adjusted p_i = max over all intersections I containing i of local(p_I)."""
    m = len(p)
    adj = np.zeros(m)
    for r in range(1, m + 1):
        for subset in itertools.combinations(range(m), r):
            v = local(p[list(subset)])
            for i in subset:
                adj[i] = max(adj[i], v)
    return adj


def ref_cohen(a, b):
    """Cohen (1960): kappa = (p_o - p_e) / (1 - p_e), p_e from the two raters' marginals."""
    a, b = np.asarray(a), np.asarray(b)
    po = float(np.mean(a == b))
    pe = sum(float(np.mean(a == c)) * float(np.mean(b == c)) for c in set(a.tolist()) | set(b.tolist()))
    return (po - pe) / (1 - pe)


def ref_fleiss(counts):
    """Fleiss (1971), eqs. 1-9: P_i = (sum_j n_ij^2 - n) / (n (n - 1)), p_j = sum_i n_ij / (N n)."""
    counts = np.asarray(counts, dtype=float)
    n_items, n = counts.shape[0], counts[0].sum()
    p_i = ((counts**2).sum(1) - n) / (n * (n - 1))
    p_j = counts.sum(0) / (n_items * n)
    p_bar, p_e = p_i.mean(), (p_j**2).sum()
    return (p_bar - p_e) / (1 - p_e)


def ref_alpha(data, level):
    """Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", sections B-E: the
    coincidence matrix o_ck, the marginals n_c, alpha = 1 - (n - 1) sum o_ck d_ck / sum n_c n_k d_ck."""
    values = sorted({v for row in data for v in row if v is not None})
    ix = {v: i for i, v in enumerate(values)}
    o = np.zeros((len(values), len(values)))
    for unit in zip(*data, strict=True):
        vs = [v for v in unit if v is not None]
        if len(vs) < 2:
            continue
        for i, j in itertools.permutations(range(len(vs)), 2):
            o[ix[vs[i]], ix[vs[j]]] += 1.0 / (len(vs) - 1)
    nc = o.sum(1)
    n = nc.sum()

    def delta(c, k):
        if level == "nominal":
            return float(c != k)
        if level == "interval":
            return (values[c] - values[k]) ** 2
        if level == "ratio":
            return ((values[c] - values[k]) / (values[c] + values[k])) ** 2
        lo, hi = min(c, k), max(c, k)  # ordinal
        return (nc[lo : hi + 1].sum() - (nc[c] + nc[k]) / 2) ** 2

    d = np.array([[delta(c, k) for k in range(len(values))] for c in range(len(values))])
    return 1.0 - (n - 1) * (o * d).sum() / (np.outer(nc, nc) * d).sum()


def ref_bf10(t, n_a, n_b, r=0.7071067811865476):  # r = sqrt(2)/2, the "medium" prior
    """JZS Bayes factor of a two-sample t (Rouder et al. 2009, Psychon. Bull. Rev. 16:225, eq. 1
    with a Cauchy(0, r) prior on the standardised effect delta), written as the ratio of the
    marginal likelihood of t under H1 to that under H0: t | delta ~ noncentral t(df, delta sqrt(N)),
    N = n_a n_b / (n_a + n_b). Integrated over delta (pingouin integrates over g instead)."""
    df, root_n = n_a + n_b - 2, math.sqrt(n_a * n_b / (n_a + n_b))

    def h1(delta):
        # scipy's nct.pdf returns NaN far in the tail (noncentrality in the hundreds), where it is 0
        v = scipy.stats.nct.pdf(t, df, delta * root_n) * scipy.stats.cauchy.pdf(delta, scale=r)
        return v if math.isfinite(v) else 0.0

    m1 = sum(scipy.integrate.quad(h1, lo, hi, limit=200, epsabs=0, epsrel=1e-11)[0]
             for lo, hi in ((-np.inf, -1), (-1, 0), (0, 1), (1, np.inf)))
    return m1 / scipy.stats.t.pdf(t, df)


def ref_wilson(x, n, level):
    """Wilson (1927): (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)."""
    z = scipy.stats.norm.ppf(1 - (1 - level) / 2)
    p = x / n
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def ref_mcnemar_exact(b, c):
    """Exact McNemar: two-sided binomial test of b discordant pairs out of b + c at 1/2."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


def ref_t_test(a, b, equal_var):
    """Student (1908) pooled t with df n_a + n_b - 2, or Welch (1947) t with the Welch-Satterthwaite
    df, from their formulas; p = 2 P(T_df > |t|) from the t distribution."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    na, nb = len(a), len(b)
    va, vb = a.var(ddof=1), b.var(ddof=1)
    if equal_var:
        sp2 = ((na - 1) * va + (nb - 1) * vb) / (na + nb - 2)
        se2, df = sp2 * (1 / na + 1 / nb), na + nb - 2.0
    else:
        se2 = va / na + vb / nb
        df = se2**2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
    t = (a.mean() - b.mean()) / math.sqrt(se2)
    return t, df, 2 * scipy.stats.t.sf(abs(t), df)


def ref_cr2(y, in_a, labels, clusters=None):
    """OLS of y on [1[a], one dummy per label] with the CR2 variance of Bell & McCaffrey (2002) and
    their Satterthwaite df (working model sigma^2 I), built from dense matrices: X, H = X (X'X)^-1 X',
    A_g = (I - H_gg)^(-1/2) by eigendecomposition, V = sum_g c'(X'X)^-1 X_g' A_g e_g e_g' A_g X_g (X'X)^-1 c,
    df = tr(B)^2 / tr(B^2) with B the covariance of the cluster scores G'y, G_g = (I - H)_{.,g} A_g X_g (X'X)^-1 c.
    Returns (beta, se, t, df, p)."""
    y = np.asarray(y, float)
    n = len(y)
    levels = sorted(set(labels))
    x = np.column_stack([np.asarray(in_a, float)] + [np.array([lab == v for lab in labels], float) for v in levels])
    xtx_inv = np.linalg.inv(x.T @ x)
    h = x @ xtx_inv @ x.T
    beta = (xtx_inv @ x.T @ y)[0]
    e = y - x @ (xtx_inv @ x.T @ y)
    w = x @ xtx_inv[:, 0]
    clusters = list(range(n)) if clusters is None else list(clusters)
    cols, var = [], 0.0
    for g in sorted(set(clusters), key=str):
        idx = [i for i in range(n) if clusters[i] == g]
        vals, vecs = np.linalg.eigh(np.eye(len(idx)) - h[np.ix_(idx, idx)])
        a = vecs @ np.diag(vals**-0.5) @ vecs.T
        u = a @ w[idx]
        var += float(u @ e[idx]) ** 2
        cols.append((np.eye(n) - h)[:, idx] @ u)
    gmat = np.column_stack(cols)
    b = gmat.T @ gmat
    df = np.trace(b) ** 2 / np.trace(b @ b)
    se = math.sqrt(var)
    t = beta / se
    return beta, se, t, df, 2 * scipy.stats.t.sf(abs(t), df)


def ref_cmh(tables):
    """Cochran (1954), Mantel & Haenszel (1959): 2x2 tables [[a, b], [c, d]] per stratum;
    chi2 = (|sum (a - E a)| - 1/2)^2 / sum Var a, E a = (a+b)(a+c)/n, Var a = (a+b)(c+d)(a+c)(b+d) / (n^2 (n-1));
    the common odds ratio sum(a d / n) / sum(b c / n). Returns (chi2, p, odds ratio)."""
    dev = var = num = den = 0.0
    for (a, b), (c, d) in tables:
        n = a + b + c + d
        dev += a - (a + b) * (a + c) / n
        var += (a + b) * (c + d) * (a + c) * (b + d) / (n * n * (n - 1))
        num += a * d / n
        den += b * c / n
    chi2 = (abs(dev) - 0.5) ** 2 / var
    return chi2, scipy.stats.chi2.sf(chi2, 1), num / den


def ref_stratified_rank(in_a, labels, y):
    """Stratified rank test from its permutation definition: within each label, midranks of y; T_h the
    rank sum of group a; its mean and variance over every equally likely split of the label's rows into
    the two groups (all C(n_h, n_a,h) enumerated); Q = (sum_h T_h - E T_h)^2 / sum_h Var T_h on 1 df."""
    in_a, labels, y = np.asarray(in_a), np.asarray(labels), np.asarray(y, float)
    dev = var = 0.0
    for lab in sorted(set(labels.tolist())):
        m = labels == lab
        r = scipy.stats.rankdata(y[m])
        na = int(in_a[m].sum())
        sums = np.array([r[list(c)].sum() for c in itertools.combinations(range(len(r)), na)])
        dev += r[in_a[m]].sum() - sums.mean()
        var += sums.var()
    q = dev * dev / var
    return q, scipy.stats.chi2.sf(q, 1)
