"""Where segments sit relative to the class boundary of an embedding space.

For every segment: the share of its k nearest neighbours that carry another label,
and the margin (distance to the nearest other-label segment minus distance to the
nearest same-label one; small or negative near the boundary). Quadrants are then
summarised and red / green tested against blue with seeded permutation tests.

Nearest neighbours are exact (blocked matrix products: one pass gives the k nearest
and the nearest of every class) up to ``exact_limit`` rows, and come from a Lance
IVF vector index above it. The 2-D UMAP projection for Figure 3 is optional.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from ambiguity.constants import AGAINST_BLUE_PAIRS
from ambiguity.errors import StatsError
from ambiguity.stats.multitest import adjust, check_correction
from ambiguity.stats.neighbours import EXACT_LIMIT, _check_k, _check_vectors, neighbours
from ambiguity.stats.results import BoundaryResult

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore

QUADRANT_ORDER = ("red", "green", "blue", "yellow")


# -- permutation tests -----------------------------------------------------------------------------
def _mean_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def _mean(x: np.ndarray) -> float:
    """The mean, without overflow for values near the float64 limit (scaled by the largest magnitude)."""
    if not len(x):
        return math.nan
    s = float(np.max(np.abs(x)))
    return float(np.mean(x / s) * s) if 0 < s < math.inf else float(np.mean(x))


def permutation_tests(
    segments: pl.DataFrame, pairs: Sequence[tuple[str, str]] = AGAINST_BLUE_PAIRS, *,
    metrics: Sequence[str] = ("other_share", "margin"), n_permutations: int = 10_000, seed: int = 0,
    correction: str = "holm", alpha: float = 0.05,
) -> pl.DataFrame:
    """Two-sided permutation tests of the difference in means between quadrants, per metric.

    Each test is :func:`scipy.stats.permutation_test` (independent samples, ``n_permutations``
    resamples, or every permutation when there are fewer) with a generator seeded by ``seed``;
    the p-values of all tests form one correction family.
    """
    from scipy.stats import permutation_test  # 0.7 s CPU to import

    rows = []
    for a, b in pairs:
        for m in metrics:
            x = segments.filter(pl.col("quadrant") == a)[m].drop_nulls().drop_nans().to_numpy()
            y = segments.filter(pl.col("quadrant") == b)[m].drop_nulls().drop_nans().to_numpy()
            row: dict[str, Any] = {
                "metric": m, "a": a, "b": b, "n_a": len(x), "n_b": len(y),
                "mean_a": _mean(x),
                "mean_b": _mean(y),
                "difference": math.nan, "p": math.nan, "reason": None,
            }
            if len(x) < 2 or len(y) < 2:
                row["reason"] = f"fewer than 2 segments with a {m} in {a if len(x) < 2 else b}"
            else:
                row["difference"] = row["mean_a"] - row["mean_b"]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    res = permutation_test(
                        (x, y), _mean_diff, permutation_type="independent", vectorized=True,
                        n_resamples=n_permutations, alternative="two-sided", rng=np.random.default_rng(seed),
                    )
                row["p"] = float(res.pvalue)
            rows.append(row)
    schema = {
        "metric": pl.String, "a": pl.String, "b": pl.String, "n_a": pl.Int64, "n_b": pl.Int64,
        "mean_a": pl.Float64, "mean_b": pl.Float64, "difference": pl.Float64, "p": pl.Float64, "reason": pl.String,
    }
    out = pl.DataFrame(rows, schema=schema)
    p_adj, reject = adjust(out["p"].to_numpy(), correction, alpha)
    return out.with_columns(pl.Series("p_adj", p_adj), pl.Series("reject", reject)).select(
        "metric", "a", "b", "n_a", "n_b", "mean_a", "mean_b", "difference", "p", "p_adj", "reject", "reason"
    )


def _summary(segments: pl.DataFrame) -> pl.DataFrame:
    stats = [
        pl.len().alias("n"),
        pl.col("other_share").mean().alias("other_share_mean"),
        pl.col("other_share").median().alias("other_share_median"),
        pl.col("margin").mean().alias("margin_mean"),
        pl.col("margin").median().alias("margin_median"),
    ]
    ok = segments.filter(pl.col("other_share").is_not_null())
    per = ok.filter(pl.col("quadrant").is_not_null()).group_by("quadrant").agg(stats)
    rank = {q: i for i, q in enumerate(QUADRANT_ORDER)}
    per = per.with_columns(pl.col("quadrant").replace_strict(rank, default=len(rank), return_dtype=pl.Int64).alias("_o")).sort(["_o", "quadrant"]).drop("_o")
    every = ok.select(pl.lit("(all)").alias("quadrant"), *stats)
    return pl.concat([per.cast(every.schema), every], how="vertical")


# -- UMAP ----------------------------------------------------------------------------------------------
def project_umap(vectors: np.ndarray, metric: str = "cosine", seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1) -> np.ndarray:
    """A seeded 2-D UMAP projection (umap-learn; imported only here: its first use compiles for a while)."""
    try:
        import umap  # optional: ambiguity[stats]
    except ImportError:  # pragma: no cover - umap-learn is in the stats extra
        raise StatsError("the UMAP projection needs umap-learn: pip install 'ambiguity[stats]'") from None
    x = _check_vectors(vectors)
    if len(x) < 3:
        raise StatsError(f"a UMAP projection needs at least 3 segments, got {len(x)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = umap.UMAP(n_components=2, n_neighbors=min(n_neighbors, len(x) - 1), min_dist=min_dist, metric=metric, random_state=seed)
        return np.asarray(model.fit_transform(x), dtype=np.float64)


# -- the analysis --------------------------------------------------------------------------------------
def _quadrant_column(quadrants: Any, ids: list[str], n: int) -> list[str | None]:
    if quadrants is None:
        return [None] * n
    if isinstance(quadrants, pl.DataFrame):
        for c in ("segment_id", "quadrant"):
            if c not in quadrants.columns:
                raise StatsError(f"the quadrants frame has no column {c!r}")
        lookup = dict(zip(quadrants["segment_id"].cast(pl.String).to_list(), quadrants["quadrant"].cast(pl.String).to_list(), strict=True))
        return [lookup.get(i) for i in ids]
    q = [None if v is None else str(v) for v in quadrants]
    if len(q) != n:
        raise StatsError(f"{len(q)} quadrants for {n} vectors: give one per row, or a frame with segment_id and quadrant")
    return q


def boundary_arrays(
    vectors: Any,
    labels: Sequence[Any],
    *,
    ids: Sequence[str] | None = None,
    quadrants: Any = None,
    k: int = 10,
    metric: str = "cosine",
    pairs: Sequence[tuple[str, str]] = AGAINST_BLUE_PAIRS,
    n_permutations: int = 10_000,
    seed: int = 0,
    correction: str = "holm",
    exact_limit: int = EXACT_LIMIT,
    nprobes: int | None = None,
    umap: bool = False,
    umap_neighbors: int = 15,
    umap_min_dist: float = 0.1,
    group: str | None = None,
) -> BoundaryResult:
    """Boundary analysis of arrays: other-label share, margin, per-quadrant summary, permutation tests.

    Parameters
    ----------
    vectors : (n, d) embeddings. Rows with NaN / Inf (or, for cosine, all zeros) and rows
        without a label are kept in the output with a reason and no values.
    labels : the class of each row (any number of classes).
    ids : segment ids (default ``"0"``, ``"1"``, ...).
    quadrants : one quadrant per row, or a frame with segment_id and quadrant (needs ``ids``).
    k, metric : neighbours per segment and ``cosine`` (1 - cosine similarity) or ``euclidean``.
    pairs : quadrant pairs to test; n_permutations, seed: of each permutation test
        (0 permutations: no tests); correction: over all the tests.
    exact_limit : exact search up to this many rows, a Lance vector index above.
    umap : add a seeded 2-D UMAP projection (umap_x, umap_y) for Figure 3.

    Returns
    -------
    BoundaryResult with per-segment values, a per-quadrant summary and the tests.
    """
    check_correction(correction)
    if not isinstance(n_permutations, (int, np.integer)) or n_permutations < 0:
        raise StatsError(f"n_permutations must be a non-negative integer, got {n_permutations!r}")
    if not isinstance(exact_limit, (int, np.integer)) or exact_limit < 1:
        raise StatsError(f"exact_limit must be a positive integer, got {exact_limit!r}")
    try:
        x = np.asarray(vectors)
    except (TypeError, ValueError) as exc:
        raise StatsError(f"vectors must be a 2-D numeric array: {exc}") from None
    if x.ndim != 2 or x.shape[1] == 0 or not np.issubdtype(x.dtype, np.number):
        raise StatsError(f"vectors must be a 2-D numeric array (segments x dimensions), got shape {x.shape} of {x.dtype}")
    n = len(x)
    labels = list(labels)
    if len(labels) != n:
        raise StatsError(f"{len(labels)} labels for {n} vectors: give one label per row")
    ids = [str(i) for i in (ids if ids is not None else range(n))]
    if len(ids) != n:
        raise StatsError(f"{len(ids)} ids for {n} vectors")
    if len(set(ids)) != n:
        raise StatsError("ids are not unique: give one id per segment")
    quad = _quadrant_column(quadrants, ids, n)
    if x.dtype != np.float32:
        x = x.astype(np.float64)

    reason: list[str | None] = [None] * n
    finite = np.isfinite(x).all(axis=1)
    zero = (x == 0).all(axis=1)
    for i in range(n):
        if labels[i] is None:
            reason[i] = "no label"
        elif not finite[i]:
            reason[i] = "vector has NaN or Inf"
        elif metric == "cosine" and zero[i]:
            reason[i] = "zero vector (cosine distance undefined)"
    keep = np.array([r is None for r in reason], dtype=bool)
    _check_k(k, int(keep.sum()), metric)
    lab = np.array([str(v) for v in labels], dtype=object)
    nb = neighbours(x[keep], lab[keep], k, metric, exact_limit=exact_limit, nprobes=nprobes)
    classes = sorted(set(lab[keep].tolist()))
    own = np.searchsorted(np.array(classes, dtype=object), lab[keep])
    lab_k = lab[keep]
    found = nb.index >= 0
    other = (lab_k[np.where(found, nb.index, 0)] != lab_k[:, None]) & found
    share = other.sum(axis=1) / np.maximum(found.sum(axis=1), 1)
    near = np.where(np.isfinite(nb.nearest), nb.nearest, np.nan)
    nn_same = near[np.arange(len(own)), own]
    masked = near.copy()
    masked[np.arange(len(own)), own] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        nn_other = np.nanmin(masked, axis=1) if masked.shape[1] else np.full(len(own), np.nan)

    def full(values: np.ndarray) -> np.ndarray:
        out = np.full(n, np.nan)
        out[keep] = values
        return out

    cols: dict[str, Any] = {
        "segment_id": ids,
        "label": [None if v is None else str(v) for v in labels],
        "quadrant": quad,
        "other_share": full(share),
        "margin": full(nn_other - nn_same),
        "nn_same": full(nn_same),
        "nn_other": full(nn_other),
    }
    for j, row_i in enumerate(np.flatnonzero(keep).tolist()):
        if not np.isfinite(nn_other[j]):
            reason[row_i] = "no segment with another label"
        elif not np.isfinite(nn_same[j]):
            reason[row_i] = f"no other segment labelled {lab_k[j]}"
    if umap:
        xy = project_umap(x[keep], metric=metric, seed=seed, n_neighbors=umap_neighbors, min_dist=umap_min_dist)
        cols["umap_x"], cols["umap_y"] = full(xy[:, 0]), full(xy[:, 1])
    cols["reason"] = reason
    # Missing values are nulls (a row with a reason may still have an other_share).
    segments = pl.DataFrame(cols, schema_overrides={"label": pl.String, "quadrant": pl.String, "reason": pl.String}, nan_to_null=True)
    tests = permutation_tests(segments, pairs if n_permutations else [], n_permutations=max(1, n_permutations), seed=seed, correction=correction)
    return BoundaryResult(
        segments=segments, summary=_summary(segments), tests=tests, k=k, metric=metric, method=nb.method, n_permutations=int(n_permutations), seed=seed,
        correction=correction, group=group, recall_note=nb.describe() if nb.method == "index" else None,
    )


def boundary(
    store: FeatureStore,
    group: str,
    k: int = 10,
    metric: str = "cosine",
    *,
    quadrants: pl.DataFrame | None = None,
    splits: Sequence[str] | None = None,
    column: str = "vector",
    quadrants_note: str | None = None,
    **kwargs: Any,
) -> BoundaryResult:
    """Boundary analysis of the embedding group ``group`` of a store.

    Neighbours are searched among every segment with an ``ok`` vector and a label (or only
    those of ``splits``); ``quadrants`` (segment_id, quadrant; e.g. from
    :func:`ambiguity.stats.quadrant_tables.load_quadrants`) adds the per-quadrant summary and
    tests; ``quadrants_note`` (their scheme, K, R and stability cut) goes into the caption. Other
    keyword arguments go to :func:`boundary_arrays`.
    """
    ids, vectors = store.vectors(group, column)
    seg = store.segments(["segment_id", "label", "split"])
    if splits is not None:
        seg = seg.filter(pl.col("split").is_in(list(splits)))
    lookup = dict(zip(seg["segment_id"].to_list(), seg["label"].to_list(), strict=True))
    keep = [i for i, s in enumerate(ids) if s in lookup]
    if not keep:
        raise StatsError(f"no segment of group {group!r} is in the segments table{' for splits ' + ', '.join(splits) if splits else ''}")
    ids = [ids[i] for i in keep]
    res = boundary_arrays(
        vectors[keep], [lookup[i] for i in ids], ids=ids, quadrants=quadrants, k=k, metric=metric, group=group, **kwargs
    )
    return dataclasses.replace(res, quadrants_note=quadrants_note) if quadrants_note else res
