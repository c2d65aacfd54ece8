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
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import polars as pl

from ambiguity.constants import AGAINST_BLUE_PAIRS
from ambiguity.errors import StatsError
from ambiguity.stats.multitest import adjust, check_correction
from ambiguity.stats.neighbours import (
    EXACT_LIMIT,
    ROW_CHUNK,
    TARGET_RECALL,
    Neighbours,
    _check_k,
    _check_vectors,
    neighbours,
    scale_exponent,
)
from ambiguity.stats.neighbours_stream import StreamedSearch
from ambiguity.stats.results import BoundaryResult

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
    vectors : (n, d) embeddings (or a :class:`VectorSource`). Rows with NaN / Inf (or, for cosine, all zeros) and rows
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
        get the reason "not in the query sample". Summary and tests are of the sample. When the
        sample is at most ``exact_limit`` rows it is searched exactly, in one streamed pass (the memory
        of the sample and one chunk of rows, whatever n).
    overwrite : ``vectors`` (float32) may be normalised in place (saves a copy of a large embedding).

    Returns
    -------
    BoundaryResult with per-segment values, a per-quadrant summary and the tests.
    """
    if isinstance(vectors, VectorSource):
        source, n = vectors, len(vectors)
    else:
        try:
            x = np.asarray(vectors)
        except (TypeError, ValueError) as exc:
            raise StatsError(f"vectors must be a 2-D numeric array: {exc}") from None
        if x.ndim != 2 or x.shape[1] == 0 or not np.issubdtype(x.dtype, np.number):
            raise StatsError(f"vectors must be a 2-D numeric array (segments x dimensions), got shape {x.shape} of {x.dtype}")
        source, n = ArraySource(x if x.dtype == np.float32 else x.astype(np.float64), overwrite), len(x)
    labels = list(labels)
    if len(labels) != n:
        raise StatsError(f"{len(labels)} labels for {n} vectors: give one label per row")
    ids = [str(i) for i in (ids if ids is not None else range(n))]
    if len(ids) != n:
        raise StatsError(f"{len(ids)} ids for {n} vectors")
    return analyse(source, labels, ids, quadrants=quadrants, k=k, metric=metric, pairs=pairs,
                   n_permutations=n_permutations, seed=seed, correction=correction, exact_limit=exact_limit, nprobes=nprobes,
                   umap=umap, umap_neighbors=umap_neighbors, umap_min_dist=umap_min_dist, group=group,
                   target_recall=target_recall, query_sample=query_sample)


@runtime_checkable
class VectorSource(Protocol):
    """Where the vectors come from: an array, or a store read batch by batch (:mod:`ambiguity.stats.boundary_store`)."""

    def __len__(self) -> int: ...

    def chunks(self) -> Iterator[np.ndarray]:
        """Every row, in order, a chunk of rows at a time (raw values)."""
        ...

    def rows(self, at: np.ndarray) -> np.ndarray:
        """The rows at the sorted positions ``at``."""
        ...

    def whole(self) -> tuple[np.ndarray, bool]:
        """The whole matrix, and whether the search may normalise it in place."""
        ...


@dataclasses.dataclass
class ArraySource:
    x: np.ndarray
    overwrite: bool = False

    def __len__(self) -> int:
        return len(self.x)

    def chunks(self) -> Iterator[np.ndarray]:
        return (np.asarray(self.x[a : a + ROW_CHUNK]) for a in range(0, len(self.x), ROW_CHUNK))

    def rows(self, at: np.ndarray) -> np.ndarray:
        return np.asarray(self.x[at])

    def whole(self) -> tuple[np.ndarray, bool]:
        return self.x, self.overwrite


def analyse(
    source: VectorSource, labels: list[Any], ids: list[str], *, quadrants: Any, k: int, metric: str,
    pairs: Sequence[tuple[str, str]], n_permutations: int, seed: int, correction: str, exact_limit: int,
    nprobes: int | None, umap: bool, umap_neighbors: int, umap_min_dist: float, group: str | None,
    target_recall: float, query_sample: int | None,
) -> BoundaryResult:
    """:func:`boundary_arrays` on the rows of ``source`` (one label and id per row).

    With ``query_sample``, when the sampled rows are at most ``exact_limit``, they are searched exactly in
    one streamed pass over the rows (:class:`StreamedSearch`: the memory of the sample and one chunk);
    otherwise the whole matrix is searched (:func:`neighbours`: exact up to ``exact_limit`` rows, else an index).
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
    n = len(ids)
    if len(set(ids)) != n:
        raise StatsError("ids are not unique: give one id per segment")
    quad = _quadrant_column(quadrants, ids, n)
    finite, zero = np.empty(n, bool), np.empty(n, bool)
    top, at = 0.0, 0
    for c in source.chunks():  # one pass, a chunk at a time: no n x d temporary
        good = np.isfinite(c).all(axis=1)
        finite[at : at + len(c)] = good
        zero[at : at + len(c)] = (c == 0).all(axis=1)
        top = max(top, float(np.abs(c[good]).max(initial=0.0)))
        at += len(c)
    if at != n:
        raise StatsError(f"{n} ids for {at} vectors")
    reason, keep = _usable(labels, finite, zero, metric)
    _check_k(k, int(keep.sum()), metric)
    lab_k = np.array([str(v) for v in labels], dtype=object)[keep]
    pos = _query_rows(np.asarray(quad, dtype=object)[keep], query_sample, seed) if query_sample else None
    xy = None
    if pos is not None and len(pos) <= exact_limit:
        queried = np.flatnonzero(keep)[pos]
        qx = source.rows(queried)
        if umap:
            xy = project_umap(qx, metric=metric, seed=seed, n_neighbors=umap_neighbors, min_dist=umap_min_dist)
        nb = _search_sample(source, keep, lab_k, queried, qx, k, metric, top)
    else:
        x, own = source.whole()
        xk = x if keep.all() else x[keep]  # no copy of a whole embedding
        if umap:  # of the queried segments; before the search, which may normalise xk in place
            xy = project_umap(xk if pos is None else xk[pos], metric=metric, seed=seed, n_neighbors=umap_neighbors, min_dist=umap_min_dist)
        nb = neighbours(xk, lab_k, k, metric, exact_limit=exact_limit, nprobes=nprobes, target_recall=target_recall,
                        rows=pos, overwrite=own or xk is not x)
        del xk, x
    return _analysis(nb, ids, labels, quad, reason, keep, lab_k, pos, xy, k=k, metric=metric, pairs=pairs,
                     n_permutations=n_permutations, seed=seed, correction=correction, group=group, query_sample=query_sample)


def _search_sample(source: VectorSource, keep: np.ndarray, lab_k: np.ndarray, queried: np.ndarray, qx: np.ndarray,
                   k: int, metric: str, top: float) -> Neighbours:
    """Exact neighbours of the rows ``queried`` (raw vectors ``qx``) among the kept rows, in one pass over the
    source; indices are positions among the kept rows."""
    classes = np.array(sorted(set(lab_k.tolist())), dtype=object)
    codes = np.full(len(keep), -1, np.int64)
    codes[keep] = np.searchsorted(classes, lab_k)
    search = StreamedSearch(qx, queried, k, len(classes), metric, scale_exponent(top) if metric == "euclidean" else 0)
    for c in source.chunks():
        search.add(c, codes[search.seen : search.seen + len(c)])
    nb = search.result()
    kept_at = np.cumsum(keep) - 1
    return dataclasses.replace(nb, index=np.where(nb.index >= 0, kept_at[np.maximum(nb.index, 0)], -1))


def _usable(labels: Sequence[Any], finite: np.ndarray, zero: np.ndarray, metric: str) -> tuple[list[str | None], np.ndarray]:
    """Per row, why it is not searched (None: it is), and the mask of rows that are."""
    reason: list[str | None] = [None] * len(labels)
    for i, v in enumerate(labels):
        if v is None:
            reason[i] = "no label"
        elif not finite[i]:
            reason[i] = "vector has NaN or Inf"
        elif metric == "cosine" and zero[i]:
            reason[i] = "zero vector (cosine distance undefined)"
    return reason, np.array([r is None for r in reason], dtype=bool)


def _analysis(nb: Neighbours, ids: list[str], labels: list[Any], quad: list[str | None], reason: list[str | None],
              keep: np.ndarray, lab_k: np.ndarray, pos: np.ndarray | None, xy: np.ndarray | None, *, k: int, metric: str,
              pairs: Sequence[tuple[str, str]], n_permutations: int, seed: int, correction: str, group: str | None,
              query_sample: int | None) -> BoundaryResult:
    """Other-label share and margin of the queried rows from their neighbours (``nb.index``: positions among the
    kept rows), the per-quadrant summary and the tests."""
    n = len(ids)
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
    if xy is not None:
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
