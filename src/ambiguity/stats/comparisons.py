"""Group A vs group B on every feature at once: within-label regression, t-tests or Mann-Whitney, corrected.

With the class label of each row (``labels``; the quadrant comparisons always have it) the test
is the within-label regression of :mod:`ambiguity.stats.adjusted`; ``adjust="none"`` gives the
paper's two-group test (Welch by default). For the unadjusted tests the hot path has no per-feature Python loop: moments and effect sizes are numpy
reductions over the (rows x features) matrix, and scipy runs the test once per
distinct pair of group sizes (features that lost the same number of rows to NaN
share one call). Values are scaled per feature by a power of two before testing,
which is exact in floating point and keeps huge or tiny magnitudes from
overflowing; t, U and p do not depend on scale.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

import numpy as np
import polars as pl

from ambiguity.constants import COMPARISON_PAIRS, QUADRANTS
from ambiguity.errors import StatsError
from ambiguity.leakage import group_values  # one reading of columns and metadata keys
from ambiguity.stats import quadrant_tables  # by module: quadrant_tables.quadrants is looked up at call time
from ambiguity.stats.frames import Columns, _as_frame, _group_labels, codes, select_columns
from ambiguity.stats.multitest import check_alpha, check_correction
from ambiguity.stats.results import ComparisonResult, QuadrantComparison, one_family
from ambiguity.stats.stability import check_one_scheme
from ambiguity.stats.twogroup import compare_batches

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore

TESTS: tuple[str, ...] = ("welch", "student", "mannwhitney")
#: ``adjust``: ``label`` (within-label test, the quadrant comparisons' default) or ``none`` (the paper's two-group test).
ADJUST = ("label", "none")
#: ``family``: one correction per quadrant pair, or one over every comparison of the report (or call).
FAMILIES = ("pair", "report")


class TestSettings(TypedDict, total=False):
    """How each feature is tested, as :func:`compare` takes it (its defaults: ``TEST_DEFAULTS``);
    the quadrant comparisons pass these through to it unchanged."""

    test: str
    correction: str
    alpha: float
    ci: float
    bayes: bool


TEST_DEFAULTS: TestSettings = {"test": "welch", "correction": "holm", "alpha": 0.05, "ci": 0.95, "bayes": False}

# Columns that describe a segment rather than measure it: never compared by default.


def _check_settings(test: str, correction: str, alpha: float, ci: float, bayes: bool, adjusted: bool = False) -> tuple[float, float]:
    if test not in TESTS:
        raise StatsError(f"unknown test {test!r}: use one of {', '.join(TESTS)}")
    check_correction(correction)
    if bayes and test == "mannwhitney":
        raise StatsError("bayes=True gives the Bayes factor of a t-test: use test='welch' or 'student'")
    if adjusted and test != "welch":
        raise StatsError(f"test={test!r} is a two-group test that ignores the label: pass adjust='none' with it")
    if adjusted and bayes:
        raise StatsError("bayes=True gives the two-sample JZS Bayes factor, which ignores the label: pass adjust='none' with it")
    return check_alpha(alpha), check_alpha(ci, "ci")


def check_adjust(adjust: str, family: str = "pair") -> None:
    if adjust not in ADJUST:
        raise StatsError(f"unknown adjust {adjust!r}: use one of {', '.join(ADJUST)}")
    if family not in FAMILIES:
        raise StatsError(f"unknown family {family!r}: use one of {', '.join(FAMILIES)}")


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
    labels: str | Sequence[Any] | None = None,
    clusters: str | Sequence[Any] | None = None,
    column_batch: int | None = None,
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
    labels : the class label of each row (a column name or one value per row). Given, the test is
        the within-label regression ``feature ~ 1[a] + C(label)`` with CR2 errors and
        Bell-McCaffrey df (:mod:`ambiguity.stats.adjusted`; binary 0/1 features: Cochran-Mantel-Haenszel),
        effect sizes are within label, and ``test`` must stay ``welch`` (it names the unadjusted test).
    clusters : with ``labels``, a speaker or dialog per row (column name or values): errors clustered by it.
    column_batch : features tested together (default: as many as keep a batch near ``BATCH_VALUES``
        values); the results do not depend on it, the memory does.

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
    if clusters is not None and labels is None:
        raise StatsError("clusters are used by the adjusted test: pass labels too")
    alpha, ci = _check_settings(test, correction, alpha, ci, bayes, adjusted=labels is not None)
    a, b = str(a), str(b)
    if a == b:
        raise StatsError(f"a and b are both {a!r}: compare two different groups")
    extra = [c for c in (labels, clusters) if isinstance(c, str)]
    read, group, names, df = _matrix(features, groups, columns, extra)
    present = group.drop_nulls().unique().sort().to_list()
    for g in (a, b):
        if g not in present:
            raise StatsError(f"no row has group {g!r}; groups present: {', '.join(present) or 'none'}")
    in_a, in_b = (group == a).fill_null(False).to_numpy(), (group == b).fill_null(False).to_numpy()
    strata = cl = None
    if labels is not None:
        strata = codes(_group_labels(labels, group.len(), df))
        cl = None if clusters is None else codes(_group_labels(clusters, group.len(), df))[0]
        known = (strata[0] >= 0) & (cl >= 0 if cl is not None else True)
        in_a, in_b = in_a & known, in_b & known
    rows = np.flatnonzero(in_a | in_b)  # only the compared rows are read
    strata = None if strata is None else (strata[0][rows], strata[1])
    (res,) = compare_batches(
        lambda cols: read(cols)[rows], names, [(a, b, in_a[rows], in_b[rows])], test, correction, alpha, ci, bayes, label,
        strata, None, None if cl is None else cl[rows], clusters if isinstance(clusters, str) else None, column_batch,
    )
    return res


def _matrix(features: Any, groups: Any, columns: Sequence[str] | str | None, exclude: Sequence[str] = ()
            ) -> tuple[Callable[[list[str]], np.ndarray], pl.Series, list[str], pl.DataFrame | None]:
    """A reader of feature columns as a (rows x columns) float64 matrix, the group labels as strings,
    the feature names, and the frame (None for an array)."""
    if isinstance(features, np.ndarray) and features.ndim == 2 and np.issubdtype(features.dtype, np.number):
        # A plain array skips the detour through a frame (costly with thousands of columns).
        labels = _group_labels(groups, features.shape[0])
        names = [f"x{i}" for i in range(features.shape[1])]
        if columns is not None:
            names = select_columns(pl.DataFrame(schema={n: pl.Float64 for n in names}), columns)
        return lambda cols: features[:, [int(n[1:]) for n in cols]].astype(np.float64), labels, names, None
    df = _as_frame(features)
    labels = _group_labels(groups, df.height, df)
    names = select_columns(df, columns, exclude=[*([groups] if isinstance(groups, str) else []), *exclude])
    return lambda cols: df.select(pl.col(cols).cast(pl.Float64)).to_numpy().astype(np.float64, copy=False), labels, names, df


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


def join_quadrants(features: pl.DataFrame, quadrants: pl.DataFrame, columns: Sequence[str], keep: Sequence[str] = ()) -> pl.DataFrame:
    """segment_id, the feature ``columns`` and quadrant of the segments in both frames (and the
    quadrants frame's ``keep`` columns that it has, e.g. label and speaker)."""
    for name, frame, need in (("features", features, ["segment_id"]), ("quadrants", quadrants, ["segment_id", "quadrant"])):
        missing = [c for c in need if c not in frame.columns]
        if missing:
            raise StatsError(f"the {name} frame has no column {', '.join(missing)}")
    if quadrants["segment_id"].is_duplicated().any():
        raise StatsError("the quadrants frame lists a segment_id twice: give one quadrant per segment")
    extra = [c for c in dict.fromkeys(keep) if c in quadrants.columns and c not in ("segment_id", "quadrant")]
    q = quadrants.select(pl.col("segment_id").cast(pl.String), pl.col("quadrant").cast(pl.String), *(pl.col(c).cast(pl.String) for c in extra))
    feats = features.select(pl.col("segment_id").cast(pl.String), *(c for c in columns if c not in extra))
    joined = feats.join(q, on="segment_id", how="inner")
    if joined.height == 0:
        raise StatsError("no segment has both features and a quadrant: check that both come from the same store and split")
    return joined


def compare_quadrant_frame(
    features: pl.DataFrame,
    quadrants: pl.DataFrame,
    pairs: Sequence[tuple[str, str]] = COMPARISON_PAIRS,
    *,
    columns: Sequence[str] | str | None = None,
    label: str | None = None,
    unimodal: str | None = None,
    fusion: str | None = None,
    groups: Sequence[str] = (),
    quadrants_note: str | None = None,
    adjust: str = "label",
    group_by: str | None = None,
    family: str = "pair",
    column_batch: int | None = None,
    **settings: Unpack[TestSettings],
) -> QuadrantComparison:
    """Compare quadrant pairs on feature columns, given a features frame and a quadrants frame.

    ``adjust="label"`` (default) tests within label (:func:`compare` with ``labels``); it needs a
    ``label`` column in ``quadrants`` (as :func:`~ambiguity.stats.quadrant_tables.load_quadrants`
    gives) and falls back to the unadjusted test, saying so in the notes, without one.
    ``adjust="none"`` is the paper's unadjusted test. ``group_by`` names a column of ``quadrants``
    (speaker, dialog_id) whose values cluster the errors; rows without a value are left out (noted).
    ``family="report"`` makes every feature of every pair one correction family.

    ``features`` has ``segment_id`` and feature columns; ``quadrants`` has ``segment_id`` and
    ``quadrant`` (red / green / blue / yellow), as returned by
    :func:`ambiguity.stats.quadrant_tables.load_quadrants`. Each pair is one :func:`compare` call and
    one correction family. A quadrant with no segments gives rows with p = NaN and a reason.
    A frame mixing schemes (its ``scheme`` column) is refused; ``quadrants_note`` (the scheme, K,
    R and stability cut) goes into the caption. ``settings`` (test, correction, alpha, ci, bayes) are
    :func:`compare`'s, with its defaults, and so is ``column_batch``.
    """
    frame = _as_frame(features)
    return _compare_columns(
        lambda: Columns.of_frame(frame, select_columns(frame, columns, exclude=["quadrant"])), quadrants, pairs,
        label=label, unimodal=unimodal, fusion=fusion, groups=groups, quadrants_note=quadrants_note, adjust=adjust,
        group_by=group_by, family=family, column_batch=column_batch, settings=settings,
    )


def _compare_columns(
    make: Callable[[], Columns], quadrants: pl.DataFrame, pairs: Sequence[tuple[str, str]], *, label: str | None,
    unimodal: str | None, fusion: str | None, groups: Sequence[str], quadrants_note: str | None, adjust: str,
    group_by: str | None, family: str, column_batch: int | None, settings: TestSettings,
) -> QuadrantComparison:
    """:func:`compare_quadrant_frame` on the columns ``make()`` gives (a frame's, or a store's read a batch at a time)."""
    unknown = set(settings) - set(TEST_DEFAULTS)
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    opts = TEST_DEFAULTS | settings
    test, correction, bayes = opts["test"], opts["correction"], opts["bayes"]
    check_adjust(adjust, family)
    pairs = _check_pairs(pairs)
    quadrants = _as_frame(quadrants)
    check_one_scheme([quadrants])
    notes = [f"Quadrants: {quadrants_note}."] if quadrants_note else []
    if group_by is not None and group_by not in quadrants.columns:
        raise StatsError(f"group_by={group_by!r}: the quadrants frame has no such column; columns are {', '.join(quadrants.columns)}")
    if adjust == "label" and "label" not in quadrants.columns:
        if group_by is not None:
            raise StatsError("group_by needs the adjusted test, which needs a label column in the quadrants frame")
        adjust = "none"
        notes.append("Not adjusted for the label: the quadrants frame has no label column.")
    if adjust == "none" and group_by is not None:
        raise StatsError("group_by clusters the adjusted test's errors: use it with adjust='label'")
    alpha, ci = _check_settings(test, correction, opts["alpha"], opts["ci"], bayes, adjusted=adjust == "label")
    source = make()
    keep = ["label", group_by] if adjust == "label" else ["label"] if "label" in quadrants.columns else []
    joined = source.rows(quadrants, [k for k in dict.fromkeys(keep) if k and k not in ("segment_id", "quadrant")])
    lost = quadrants.height - joined.height
    if lost:
        notes.append(f"{lost} segment(s) with a quadrant have no feature row (status ok) and are not compared.")
    absent = np.zeros(joined.height, bool)
    if adjust == "label":
        absent = (joined["label"].is_null() | (joined[group_by].is_null() if group_by else False)).to_numpy()
        if absent.any():
            notes.append(f"{int(absent.sum())} segment(s) without a label{' or ' + group_by if group_by else ''} are not compared.")
    # Only the segments of the compared quadrants are read.
    used = joined.filter(pl.Series(~absent) & pl.col("quadrant").is_in(sorted({q for pair in pairs for q in pair})))
    positions = [used[f"_pos{i}"].to_numpy() for i in range(len(source.parts))]
    strata = codes(used["label"]) if "label" in used.columns else None
    results = compare_batches(
        lambda cols: source.read(cols, positions), source.names,
        [(a, b, (used["quadrant"] == a).to_numpy(), (used["quadrant"] == b).to_numpy()) for a, b in pairs],
        test, correction, alpha, ci, bayes, label, strata if adjust == "label" else None, strata,
        codes(used[group_by])[0] if group_by else None, group_by, column_batch,
    )
    out = QuadrantComparison(
        comparisons=tuple(results), n_segments=joined.height, unimodal=unimodal, fusion=fusion,
        groups=tuple(groups), notes=tuple(notes),
    )
    return one_family([out], correction, alpha)[0] if family == "report" else out


#: Up to this many segments, read only their rows (an id filter) rather than every row.
_ID_FILTER_LIMIT = 20_000


def compare_quadrants(
    store: FeatureStore,
    unimodal: str,
    fusion: str,
    groups: str | Sequence[str],
    pairs: Sequence[tuple[str, str]] = COMPARISON_PAIRS,
    *,
    splits: Sequence[str] | None = None,
    threshold: float = 0.5,
    columns: Sequence[str] | str | None = None,
    quadrants: pl.DataFrame | None = None,
    scheme: str = "auto",
    min_stability: float | None = None,
    quadrants_note: str | None = None,
    adjust: str = "label",
    group_by: str | None = None,
    family: str = "pair",
    column_batch: int | None = None,
    **settings: Unpack[TestSettings],
) -> QuadrantComparison:
    """The paper's Tables 3, 6, 7 (audio features) and 4, 8 (AU activation rates) in one call.

    Loads the quadrants of ``unimodal`` vs ``fusion`` predictions (or takes ``quadrants``, a
    frame with segment_id and quadrant) and the ``ok`` rows of the feature ``groups``, then
    runs :func:`compare_quadrant_frame`. For AU activation rates pass e.g.
    ``columns=r"^AU\\d+.*_rate$"`` (OpenFace) or ``columns="_rate$"``.
    ``scheme`` (auto | fixed | crossfit), ``splits`` and ``min_stability`` choose the quadrants as in
    :func:`ambiguity.stats.quadrant_tables.quadrants`: on crossfit each segment's modal quadrant.
    ``settings`` (test, correction, alpha, ci, bayes) are :func:`compare`'s; ``adjust``,
    ``group_by`` (a segments column or metadata key such as speaker or dialog_id) and ``family``
    are :func:`compare_quadrant_frame`'s. The feature groups are read ``column_batch`` columns at a
    time (:func:`compare`), so memory grows with the segments and not with the features.
    """
    groups = [groups] if isinstance(groups, str) else list(groups)
    if quadrants is None:
        res = quadrant_tables.quadrants(store, unimodal, fusion, splits, threshold, scheme=scheme, min_stability=min_stability)
        quadrants, quadrants_note = res.frame, quadrants_note or res.scheme.caption()
    if group_by is not None and group_by not in quadrants.columns:
        quadrants = with_group_column(store, quadrants, group_by)
    ids = quadrants["segment_id"].cast(pl.String).to_list() if quadrants.height <= _ID_FILTER_LIMIT else None
    return _compare_columns(
        lambda: Columns.of_store(store, groups, columns, ids), quadrants, pairs, label=", ".join(groups),
        unimodal=unimodal, fusion=fusion, groups=groups, quadrants_note=quadrants_note, adjust=adjust,
        group_by=group_by, family=family, column_batch=column_batch, settings=settings,
    )


def with_group_column(store: FeatureStore, quadrants: pl.DataFrame, column: str) -> pl.DataFrame:
    """``quadrants`` with the segments column or metadata key ``column`` (speaker, dialog_id) joined on."""
    segs = store.segments()
    values = group_values(segs, column)
    if values is None:
        raise StatsError(f"group_by={column!r}: the segments have no such column or metadata key")
    groups = pl.DataFrame({"segment_id": segs["segment_id"].cast(pl.String), column: values})
    return quadrants.with_columns(pl.col("segment_id").cast(pl.String)).join(groups, on="segment_id", how="left")
