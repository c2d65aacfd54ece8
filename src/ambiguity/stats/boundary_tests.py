"""Where segments sit relative to the class boundary of an embedding space.

For every segment: the share of its k nearest neighbours that carry another label,
and the margin (distance to the nearest other-label segment minus distance to the
nearest same-label one; small or negative near the boundary). Quadrants are then
summarised and red / green tested against blue with seeded permutation tests.

Nearest neighbours are exact (blocked matrix products: one pass gives the k nearest
and the nearest of every class) up to ``exact_limit`` rows, and come from a Lance
IVF vector index above it, with its recall measured and reported. ``query_sample``
searches the neighbours of a seeded sample of segments per quadrant only (among all
segments): the tests are then exact permutation tests on the sample. The 2-D UMAP
projection for Figure 3 is optional.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from ambiguity.constants import AGAINST_BLUE_PAIRS
from ambiguity.errors import StatsError
from ambiguity.stats.multitest import adjust, check_correction
from ambiguity.stats.neighbours import (
    EXACT_LIMIT,
    MAP_BYTES,
    ROW_CHUNK,
    TARGET_RECALL,
    _check_k,
    _check_vectors,
    neighbours,
)
from ambiguity.stats.results import BoundaryResult
from ambiguity.stores.schema import table_name
from ambiguity.stores.tables import Table

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
                        # resamples per batch: without it scipy holds n_permutations x (n_a + n_b) at once (11 GB
                        # at 10^6 segments, 1,000 permutations); this bounds each batch to 2^24 values
                        batch=max(1, 2**24 // (len(x) + len(y))),
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
        frame = quadrants.select(pl.col("segment_id").cast(pl.String), pl.col("quadrant").cast(pl.String)).unique("segment_id", keep="first")
        return pl.DataFrame({"segment_id": ids}).join(frame, on="segment_id", how="left", maintain_order="left")["quadrant"].to_list()
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
    target_recall: float = TARGET_RECALL,
    query_sample: int | None = None,
    overwrite: bool = False,
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
    nprobes, target_recall : index path: partitions searched per query, or (default) probes
        raised until recall@k on a sample reaches ``target_recall`` (see :func:`neighbours`).
    umap : add a seeded 2-D UMAP projection (umap_x, umap_y) for Figure 3.
    query_sample : search the neighbours of at most this many segments per quadrant (seeded,
        stratified by quadrant; needs ``quadrants``), among all segments; the other segments
        get the reason "not in the query sample". Summary and tests are of the sample.
    overwrite : ``vectors`` (float32) may be normalised in place (saves a copy of a large embedding).

    Returns
    -------
    BoundaryResult with per-segment values, a per-quadrant summary and the tests.
    """
    check_correction(correction)
    if not isinstance(n_permutations, (int, np.integer)) or n_permutations < 0:
        raise StatsError(f"n_permutations must be a non-negative integer, got {n_permutations!r}")
    if not isinstance(exact_limit, (int, np.integer)) or exact_limit < 1:
        raise StatsError(f"exact_limit must be a positive integer, got {exact_limit!r}")
    if query_sample is not None and (not isinstance(query_sample, (int, np.integer)) or query_sample < 2):
        raise StatsError(f"query_sample must be an integer of at least 2, got {query_sample!r}")
    if query_sample is not None and quadrants is None:
        raise StatsError("query_sample samples segments per quadrant: give quadrants")
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
    finite, zero = np.empty(n, bool), np.empty(n, bool)
    for a in range(0, n, ROW_CHUNK):  # in chunks: no n x d temporary
        c = np.asarray(x[a : a + ROW_CHUNK])
        finite[a : a + len(c)] = np.isfinite(c).all(axis=1)
        zero[a : a + len(c)] = (c == 0).all(axis=1)
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
    xk = x if keep.all() else x[keep]  # no copy of a whole embedding
    lab_k = lab[keep]
    pos = _query_rows(np.asarray(quad, dtype=object)[keep], query_sample, seed) if query_sample else None
    if umap:  # of the queried segments; before the search, which may normalise xk in place
        xy = project_umap(xk if pos is None else xk[pos], metric=metric, seed=seed, n_neighbors=umap_neighbors, min_dist=umap_min_dist)
    nb = neighbours(xk, lab_k, k, metric, exact_limit=exact_limit, nprobes=nprobes, target_recall=target_recall,
                    rows=pos, overwrite=overwrite or xk is not x)
    del xk
    classes = sorted(set(lab_k.tolist()))
    own = np.searchsorted(np.array(classes, dtype=object), lab_k if pos is None else lab_k[pos])
    lab_q = lab_k if pos is None else lab_k[pos]
    found = nb.index >= 0
    other = (lab_k[np.where(found, nb.index, 0)] != lab_q[:, None]) & found
    share = other.sum(axis=1) / np.maximum(found.sum(axis=1), 1)
    near = np.where(np.isfinite(nb.nearest), nb.nearest, np.nan)
    nn_same = near[np.arange(len(own)), own]
    masked = near.copy()
    masked[np.arange(len(own)), own] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        nn_other = np.nanmin(masked, axis=1) if masked.shape[1] else np.full(len(own), np.nan)

    queried = np.flatnonzero(keep) if pos is None else np.flatnonzero(keep)[pos]

    def full(values: np.ndarray, at: np.ndarray = queried) -> np.ndarray:
        out = np.full(n, np.nan)
        out[at] = values
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
    if pos is not None:
        for row_i in np.setdiff1d(np.flatnonzero(keep), queried).tolist():
            reason[row_i] = "not in the query sample"
    for j, row_i in enumerate(queried.tolist()):
        if not np.isfinite(nn_other[j]):
            reason[row_i] = "no segment with another label"
        elif not np.isfinite(nn_same[j]):
            reason[row_i] = f"no other segment labelled {lab_q[j]}"
    if umap:
        cols["umap_x"], cols["umap_y"] = full(xy[:, 0]), full(xy[:, 1])
    cols["reason"] = reason
    # Missing values are nulls (a row with a reason may still have an other_share).
    segments = pl.DataFrame(cols, schema_overrides={"label": pl.String, "quadrant": pl.String, "reason": pl.String}, nan_to_null=True)
    tests = permutation_tests(segments, pairs if n_permutations else [], n_permutations=max(1, n_permutations), seed=seed, correction=correction)
    return BoundaryResult(
        segments=segments, summary=_summary(segments), tests=tests, k=k, metric=metric, method=nb.method, n_permutations=int(n_permutations), seed=seed,
        correction=correction, group=group, recall_note=nb.describe() if nb.method == "index" else None,
        query_sample=query_sample, queried=len(queried), searched=int(keep.sum()),
    )


def _query_rows(quad: np.ndarray, per: int, seed: int) -> np.ndarray:
    """At most ``per`` positions of each quadrant (seeded, without replacement), sorted; no quadrant: none."""
    rng = np.random.default_rng(seed)
    out = []
    for q in sorted({v for v in quad.tolist() if v is not None}):
        at = np.flatnonzero(quad == q)
        out.append(at if len(at) <= per else rng.choice(at, per, replace=False))
    return np.sort(np.concatenate(out)) if out else np.empty(0, np.int64)


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
    seg = store.segments(["segment_id", "label", "split"])
    if splits is not None:
        seg = seg.filter(pl.col("split").is_in(list(splits)))
    with tempfile.TemporaryDirectory(prefix="ambiguity-boundary-") as tmp:
        ids, vectors = _read_vectors(store, group, column, seg["segment_id"], tmp)
        if not ids.len():
            raise StatsError(f"no segment of group {group!r} is in the segments table{' for splits ' + ', '.join(splits) if splits else ''}")
        labels = pl.DataFrame({"segment_id": ids}).join(seg.select("segment_id", "label"), on="segment_id", how="left",
                                                       maintain_order="left")["label"].to_list()
        mapped = isinstance(vectors, np.memmap) or isinstance(vectors.base, np.memmap)
        res = boundary_arrays(vectors, labels, ids=ids.to_list(), quadrants=quadrants, k=k, metric=metric, group=group,
                              overwrite=True, **kwargs)
        if mapped:
            res = dataclasses.replace(res, memory_note=(
                f"the {vectors.shape[0]:,} x {vectors.shape[1]} embedding ({vectors.nbytes / 2**30:.1f} GiB) was read into a "
                "memory-mapped temporary file (paged by the OS), not held in memory"))
        del vectors
    return dataclasses.replace(res, quadrants_note=quadrants_note) if quadrants_note else res


def _read_vectors(store: FeatureStore, group: str, column: str, wanted: pl.Series, tmp: str) -> tuple[pl.Series, np.ndarray]:
    """The ``ok`` vectors of ``group`` whose segment is in ``wanted``, read batch by batch into one float32 matrix:
    a memory-mapped file in ``tmp`` above MAP_BYTES (the OS pages it: the embedding is never all in anonymous
    memory), else in memory. A null vector (one with a NaN element is stored null) reads as NaN."""
    table = Table(table_name(group), ("status",))
    parts = []
    n = store.group_status(group).filter(pl.col("status") == "ok").height  # (Table.count is str.count here)
    out: np.ndarray | None = None
    at = 0
    for df in table.batches(store, ["segment_id", column], status="ok", batch_size=ROW_CHUNK):
        df = df.filter(pl.col("segment_id").is_in(wanted.implode()))
        if not df.height:
            continue
        col = df[column]
        if not isinstance(col.dtype, pl.Array):
            raise StatsError(f"column {column!r} of group {group!r} is not a vector column")
        v = col.to_numpy().astype(np.float32, copy=False).reshape(df.height, -1)
        if col.null_count():
            v = np.array(v)
            v[col.is_null().to_numpy()] = np.nan
        if out is None:
            shape = (n, v.shape[1])
            big = n * v.shape[1] * 4 > MAP_BYTES
            out = np.lib.format.open_memmap(f"{tmp}/vectors.npy", mode="w+", dtype=np.float32, shape=shape) if big else np.empty(shape, np.float32)
        out[at : at + df.height] = v
        at += df.height
        parts.append(df["segment_id"])
    ids = pl.concat(parts) if parts else pl.Series("segment_id", [], pl.String)
    return ids, (out[:at] if out is not None else np.empty((0, 1), np.float32))

