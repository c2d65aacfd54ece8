"""Group A vs group B on every feature at once: t-tests or Mann-Whitney, corrected, with effect sizes.

The hot path has no per-feature Python loop: moments and effect sizes are numpy
reductions over the (rows x features) matrix, and scipy runs the test once per
distinct pair of group sizes (features that lost the same number of rows to NaN
share one call). Values are scaled per feature by a power of two before testing,
which is exact in floating point and keeps huge or tiny magnitudes from
overflowing; t, U and p do not depend on scale.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, TypedDict, Unpack

import numpy as np
import polars as pl

from ambiguity.constants import QUADRANTS
from ambiguity.errors import StatsError
from ambiguity.stats import effsize
from ambiguity.stats.bayes import bayes_factors
from ambiguity.stats.frames import _as_frame, _group_labels, select_columns
from ambiguity.stats.multitest import adjust, check_alpha, check_correction
from ambiguity.stats.results import ComparisonResult, QuadrantComparison

TESTS: tuple[str, ...] = ("welch", "student", "mannwhitney")


class TestSettings(TypedDict, total=False):
    """How each feature is tested, as :func:`compare` takes it (its defaults: ``TEST_DEFAULTS``);
    the quadrant comparisons pass these through to it unchanged."""

    test: str
    correction: str
    alpha: float
    ci: float
    bayes: bool


TEST_DEFAULTS: TestSettings = {"test": "welch", "correction": "holm", "alpha": 0.05, "ci": 0.95, "bayes": False}
DEFAULT_PAIRS: tuple[tuple[str, str], ...] = (("red", "blue"), ("green", "blue"), ("red", "green"))

# Columns that describe a segment rather than measure it: never compared by default.


def _check_settings(test: str, correction: str, alpha: float, ci: float, bayes: bool) -> tuple[float, float]:
    if test not in TESTS:
        raise StatsError(f"unknown test {test!r}: use one of {', '.join(TESTS)}")
    check_correction(correction)
    if bayes and test == "mannwhitney":
        raise StatsError("bayes=True gives the Bayes factor of a t-test: use test='welch' or 'student'")
    return check_alpha(alpha), check_alpha(ci, "ci")


# -- the vectorised core ------------------------------------------------------------------------
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


def _moments(x: np.ndarray) -> tuple[np.ndarray, ...]:
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


def _run_tests(
    pa: np.ndarray, pb: np.ndarray, mom_a: tuple[np.ndarray, ...], mom_b: tuple[np.ndarray, ...], cols: np.ndarray, test: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """statistic, df, p for the columns ``cols``.

    t-tests: :func:`scipy.stats.ttest_ind_from_stats` on the per-feature n, mean and SD, in
    one call. Mann-Whitney: :func:`scipy.stats.mannwhitneyu`, once per distinct (n_a, n_b).
    """
    from scipy import stats

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


def _direction(a: str, b: str, sign: np.ndarray, test: str) -> tuple[list[str | None], list[str | None]]:
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


def _compare_matrix(
    x: np.ndarray, in_a: np.ndarray, in_b: np.ndarray, names: list[str], a: str, b: str,
    test: str, correction: str, alpha: float, ci: float, bayes: bool, label: str | None,
) -> ComparisonResult:
    finite = np.isfinite(x)
    if not finite.all():
        x = np.where(finite, x, np.nan)  # NaN and +-Inf are missing values
    xa, xb = x[in_a], x[in_b]
    # Scale features of extreme magnitude by a power of two (exact), so that squares neither
    # overflow nor underflow; t, U and p do not depend on scale.
    top = np.fmax(np.fmax.reduce(np.abs(xa), axis=0, initial=0.0), np.fmax.reduce(np.abs(xb), axis=0, initial=0.0))
    _, exp = np.frexp(np.where(top > 0, top, 1.0))
    if np.any((top > 0) & ((exp > 400) | (exp < -400))):
        xa, xb = np.ldexp(xa, -exp), np.ldexp(xb, -exp)
    else:
        exp = np.zeros_like(exp)
    pa, n_a, mean_a, var_a, lo_a, hi_a, const_a = _moments(xa)
    pb, n_b, mean_b, var_b, lo_b, hi_b, const_b = _moments(xb)

    reasons: list[str | None] = [None] * len(names)
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

    stat, df, p = (np.full(len(names), np.nan) for _ in range(3))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        s, d, pv = _run_tests(pa, pb, (n_a, mean_a, var_a), (n_b, mean_b, var_b), testable, test)
    stat[testable], df[testable], p[testable] = s, d, pv
    broken = testable[~(np.isfinite(stat[testable]) & np.isfinite(p[testable]))]
    for i in broken:
        reasons[i] = "statistic undefined (numerical)"
    stat[broken] = df[broken] = p[broken] = np.nan
    if test == "mannwhitney":
        df[:] = np.nan

    p_adj, reject = adjust(p, correction, alpha)
    tested = np.isfinite(p)
    d = np.where(tested, effsize.cohen_d(mean_a, mean_b, var_a, var_b, n_a, n_b), np.nan)
    g = effsize.hedges_g(d, n_a, n_b)
    d_lo, d_hi = effsize.d_ci(d, n_a, n_b, ci)
    g_lo, g_hi = effsize.d_ci(g, n_a, n_b, ci)
    rbc = effsize.rank_biserial(stat, n_a, n_b) if test == "mannwhitney" else np.full(len(names), np.nan)
    bf10 = bayes_factors(stat, n_a, n_b) if bayes else np.full(len(names), np.nan)
    sign = rbc if test == "mannwhitney" else np.where(tested, stat, mean_a - mean_b)
    direction, higher = _direction(a, b, sign, test)
    with np.errstate(over="ignore"):
        table = pl.DataFrame(
            {
                "feature": names,
                "n_a": n_a.astype(np.int64),
                "n_b": n_b.astype(np.int64),
                "mean_a": np.ldexp(mean_a, exp),
                "mean_b": np.ldexp(mean_b, exp),
                "sd_a": np.ldexp(np.sqrt(var_a), exp),
                "sd_b": np.ldexp(np.sqrt(var_b), exp),
                "statistic": stat, "df": df, "p": p, "p_adj": p_adj, "reject": reject,
                "cohen_d": d, "d_ci_low": d_lo, "d_ci_high": d_hi,
                "hedges_g": g, "g_ci_low": g_lo, "g_ci_high": g_hi,
                "rank_biserial": rbc, "bf10": bf10,
                "direction": direction, "higher": higher, "reason": reasons,
            },
            schema_overrides={"direction": pl.String, "higher": pl.String, "reason": pl.String},
            nan_to_null=False,
        )
    return ComparisonResult(
        a=a, b=b, test=test, correction=correction, alpha=alpha, ci=ci, family_size=int(tested.sum()),
        table=table, bayes=bayes, label=label,
    )


# -- public API -------------------------------------------------------------------------------
def compare(
    features: Any,
    groups: str | Sequence[Any],
    a: Any,
    b: Any,
    *,
    test: str = "welch",
    correction: str = "holm",
    alpha: float = 0.05,
    ci: float = 0.95,
    columns: Sequence[str] | str | None = None,
    bayes: bool = False,
    label: str | None = None,
) -> ComparisonResult:
    """Compare group ``a`` with group ``b`` on every feature column.

    Parameters
    ----------
    features : polars / pandas DataFrame, mapping of columns, or 2-D array (rows x features).
    groups : the name of a column of ``features`` holding group labels, or one label per row.
    a, b : the two labels to compare (compared as strings); rows with other labels are ignored.
    test : ``welch`` (default; unequal variances), ``student`` (pooled variance) or
        ``mannwhitney`` (two-sided U test; exact for small samples without ties).
    correction : ``holm`` (default), ``fdr_bh``, ``fdr_by``, ``bonferroni``, ``hommel`` or
        ``none``; the family is every feature tested in this call.
    alpha : level at which ``reject`` is set, after correction.
    ci : confidence level of the effect-size intervals.
    columns : feature columns: ``None`` (every numeric column but identifiers), a regex, or a list.
    bayes : also give BF10 of each t-test (JZS Bayes factor of Rouder et al. 2009, Cauchy prior r = 0.707: :mod:`ambiguity.stats.bayes`).
    label : a name for the comparison, shown in captions (e.g. ``"prosody"``).

    Returns
    -------
    ComparisonResult
        One row per feature with n_a, n_b, mean_a, mean_b, sd_a, sd_b, statistic (t or U of
        group a), df, p, p_adj, reject, cohen_d, d_ci_low, d_ci_high, hedges_g, g_ci_low,
        g_ci_high, rank_biserial (Mann-Whitney only), bf10, direction (``μ_blue > μ_red``),
        higher (the label of the larger group) and reason (why a feature was not tested).

    Notes
    -----
    NaN and +-Inf values are dropped per feature and the remaining n reported. A feature
    with fewer than two values in a group, or with zero variance in both groups (for
    Mann-Whitney: one value throughout), gets p = NaN and a reason, and is left out of the
    correction family. t, df and p are :func:`scipy.stats.ttest_ind`'s; U and p are
    :func:`scipy.stats.mannwhitneyu`'s (``method="auto"`` decided per feature); corrections
    are :func:`statsmodels.stats.multitest.multipletests`'. Effect-size formulas are in
    :mod:`ambiguity.stats.effsize`.

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame({"q": ["red"] * 4 + ["blue"] * 4,
    ...                    "pitch": [1.0, 2.0, 3.0, 4.0, 3.0, 4.0, 5.0, 6.0]})
    >>> res = compare(df, "q", "red", "blue")
    >>> row = res.to_polars().row(0, named=True)
    >>> round(row["statistic"], 4), row["direction"]
    (-2.1909, 'μ_blue > μ_red')
    """
    alpha, ci = _check_settings(test, correction, alpha, ci, bayes)
    a, b = str(a), str(b)
    if a == b:
        raise StatsError(f"a and b are both {a!r}: compare two different groups")
    x, labels, names = _matrix(features, groups, columns)
    present = sorted({v for v in labels.tolist() if v is not None})
    for g in (a, b):
        if g not in present:
            raise StatsError(f"no row has group {g!r}; groups present: {', '.join(present) or 'none'}")
    return _compare_matrix(x, labels == a, labels == b, names, a, b, test, correction, alpha, ci, bayes, label)


def _matrix(features: Any, groups: Any, columns: Sequence[str] | str | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(rows x features) float64 matrix, group labels as strings, feature names."""
    if isinstance(features, np.ndarray) and features.ndim == 2 and np.issubdtype(features.dtype, np.number):
        # A plain array skips the detour through a frame (costly with thousands of columns).
        labels = _group_labels(groups, features.shape[0])
        x = features.astype(np.float64, copy=False)
        names = [f"x{i}" for i in range(x.shape[1])]
        if columns is not None:
            keep = select_columns(pl.DataFrame(schema={n: pl.Float64 for n in names}), columns)
            x, names = x[:, [int(n[1:]) for n in keep]], keep
        return x, labels, names
    df = _as_frame(features)
    labels = _group_labels(groups, df.height, df)
    names = select_columns(df, columns, exclude=[groups] if isinstance(groups, str) else ())
    x = df.select(pl.col(names).cast(pl.Float64)).to_numpy().astype(np.float64, copy=False)
    return x, labels, names


def _check_pairs(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    out = []
    for pair in pairs:
        if isinstance(pair, str) or len(pair) != 2:
            raise StatsError(f"a pair is two quadrants such as ('red', 'blue'), got {pair!r}")
        a, b = str(pair[0]), str(pair[1])
        for q in (a, b):
            if q not in QUADRANTS:
                raise StatsError(f"unknown quadrant {q!r} in pair {pair!r}: use {', '.join(QUADRANTS)}")
        if a == b:
            raise StatsError(f"pair {pair!r} compares a quadrant with itself")
        out.append((a, b))
    if not out:
        raise StatsError("pairs is empty: name at least one pair such as ('red', 'blue')")
    return out


def join_quadrants(features: pl.DataFrame, quadrants: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    """segment_id, the feature ``columns`` and quadrant of the segments in both frames."""
    for name, frame, need in (("features", features, ["segment_id"]), ("quadrants", quadrants, ["segment_id", "quadrant"])):
        missing = [c for c in need if c not in frame.columns]
        if missing:
            raise StatsError(f"the {name} frame has no column {', '.join(missing)}")
    if quadrants["segment_id"].is_duplicated().any():
        raise StatsError("the quadrants frame lists a segment_id twice: give one quadrant per segment")
    q = quadrants.select(pl.col("segment_id").cast(pl.String), pl.col("quadrant").cast(pl.String))
    joined = features.select(pl.col("segment_id").cast(pl.String), *columns).join(q, on="segment_id", how="inner")
    if joined.height == 0:
        raise StatsError("no segment has both features and a quadrant: check that both come from the same store and split")
    return joined


def compare_quadrant_frame(
    features: pl.DataFrame,
    quadrants: pl.DataFrame,
    pairs: Sequence[tuple[str, str]] = DEFAULT_PAIRS,
    *,
    columns: Sequence[str] | str | None = None,
    label: str | None = None,
    unimodal: str | None = None,
    fusion: str | None = None,
    groups: Sequence[str] = (),
    quadrants_note: str | None = None,
    **settings: Unpack[TestSettings],
) -> QuadrantComparison:
    """Compare quadrant pairs on feature columns, given a features frame and a quadrants frame.

    ``features`` has ``segment_id`` and feature columns; ``quadrants`` has ``segment_id`` and
    ``quadrant`` (red / green / blue / yellow), as returned by
    :func:`ambiguity.stats.quadrant_tables.load_quadrants`. Each pair is one :func:`compare` call and
    one correction family. A quadrant with no segments gives rows with p = NaN and a reason.
    A frame mixing schemes (its ``scheme`` column) is refused; ``quadrants_note`` (the scheme, K,
    R and stability cut) goes into the caption. ``settings`` (test, correction, alpha, ci, bayes) are
    :func:`compare`'s, with its defaults.
    """
    from ambiguity.stats.stability import check_one_scheme

    unknown = set(settings) - set(TEST_DEFAULTS)
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    opts = TEST_DEFAULTS | settings
    test, correction, bayes = opts["test"], opts["correction"], opts["bayes"]
    alpha, ci = _check_settings(test, correction, opts["alpha"], opts["ci"], bayes)
    pairs = _check_pairs(pairs)
    features, quadrants = _as_frame(features), _as_frame(quadrants)
    check_one_scheme([quadrants])
    names = select_columns(features, columns, exclude=["quadrant"])
    joined = join_quadrants(features, quadrants, names)
    notes = [f"Quadrants: {quadrants_note}."] if quadrants_note else []
    lost = quadrants.height - joined.height
    if lost:
        notes.append(f"{lost} segment(s) with a quadrant have no feature row (status ok) and are not compared.")
    x = joined.select(pl.col(names).cast(pl.Float64)).to_numpy().astype(np.float64, copy=False)
    labels = joined["quadrant"].to_numpy()
    results = tuple(
        _compare_matrix(x, labels == a, labels == b, names, a, b, test, correction, alpha, ci, bayes, label)
        for a, b in pairs
    )
    return QuadrantComparison(
        comparisons=results, n_segments=joined.height, unimodal=unimodal, fusion=fusion,
        groups=tuple(groups), notes=tuple(notes),
    )


#: Above this many segments, read every row rather than filter on an id list.
_ID_FILTER_LIMIT = 20_000


def _read_features(store: Any, groups: list[str], columns, quadrants: pl.DataFrame) -> pl.DataFrame:
    """Only the rows of the quadrant frame and, for one group, only the compared columns."""
    ids = quadrants["segment_id"].to_list()
    segment_ids = ids if len(ids) <= _ID_FILTER_LIMIT else None
    cols = None
    if len(groups) == 1:  # with several groups, shared column names are prefixed after the join
        empty = store.features(groups, segment_ids=[])
        cols = select_columns(empty, columns, exclude=("status", "error"))
    return store.features(groups, columns=cols, segment_ids=segment_ids)


def compare_quadrants(
    store: Any,
    unimodal: str,
    fusion: str,
    groups: str | Sequence[str],
    pairs: Sequence[tuple[str, str]] = DEFAULT_PAIRS,
    *,
    splits: Sequence[str] | None = None,
    threshold: float = 0.5,
    columns: Sequence[str] | str | None = None,
    quadrants: pl.DataFrame | None = None,
    scheme: str = "auto",
    min_stability: float | None = None,
    quadrants_note: str | None = None,
    **settings: Unpack[TestSettings],
) -> QuadrantComparison:
    """The paper's Tables 3, 6, 7 (audio features) and 4, 8 (AU activation rates) in one call.

    Loads the quadrants of ``unimodal`` vs ``fusion`` predictions (or takes ``quadrants``, a
    frame with segment_id and quadrant) and the ``ok`` rows of the feature ``groups``, then
    runs :func:`compare_quadrant_frame`. For AU activation rates pass e.g.
    ``columns=r"^AU\\d+.*_rate$"`` (OpenFace) or ``columns="_rate$"``.
    ``scheme`` (auto | fixed | crossfit), ``splits`` and ``min_stability`` choose the quadrants as in
    :func:`ambiguity.stats.quadrant_tables.quadrants`: on crossfit each segment's modal quadrant.
    ``settings`` (test, correction, alpha, ci, bayes) are :func:`compare`'s.
    """
    groups = [groups] if isinstance(groups, str) else list(groups)
    if quadrants is None:
        from ambiguity.stats.quadrant_tables import quadrants as load

        res = load(store, unimodal, fusion, splits, threshold, scheme=scheme, min_stability=min_stability)
        quadrants, quadrants_note = res.frame, quadrants_note or res.scheme.caption()
    features = _read_features(store, groups, columns, quadrants)
    return compare_quadrant_frame(
        features, quadrants, pairs, columns=columns, label=", ".join(groups), unimodal=unimodal, fusion=fusion,
        groups=groups, quadrants_note=quadrants_note, **settings,
    )
