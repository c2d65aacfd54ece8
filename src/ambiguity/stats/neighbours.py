"""Nearest neighbours of every row of an embedding matrix, and of every class: exact or from an index.

Exact search (blocked matrix products: one pass gives the k nearest and the nearest
of every class) up to ``EXACT_LIMIT`` rows; a Lance IVF vector index above it.
:mod:`ambiguity.stats.boundary_tests` builds its statistics on these neighbours.
"""

from __future__ import annotations

import math
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ambiguity.errors import StatsError

METRICS: tuple[str, ...] = ("cosine", "euclidean")
#: Above this many rows, neighbours come from a Lance vector index instead of exact search.
EXACT_LIMIT = 200_000
#: Bytes of one block of the distance matrix in exact search.
BLOCK_BYTES = 128 * 2**20
#: In the index path, classes up to this size are searched exactly (cheap), larger ones by index.
SMALL_CLASS = 4096
#: In the index path, this many rows (seeded sample) are searched exactly as well, to measure recall.
RECALL_SAMPLE = 500


@dataclass(frozen=True)
class Neighbours:
    """k nearest neighbours (row indices, distances) and the distance to the nearest row of each class."""

    index: np.ndarray  # (n, k) int64, -1 where the index returned fewer than k
    distance: np.ndarray  # (n, k)
    nearest: np.ndarray  # (n, n_classes); inf where a class has no other row
    method: str
    #: Share of the exact k nearest that the search found, over ``recall_rows`` sampled rows
    #: (index path); 1.0 on the exact path, by construction (``recall_rows`` 0).
    recall: float = 1.0
    recall_rows: int = 0
    #: Share of the sampled rows whose nearest row of every class is the exact one (index path).
    nearest_recall: float = 1.0

    def describe(self) -> str:
        """One line for the user: how the neighbours were found and, from an index, how well."""
        if self.method == "exact":
            return "exact kNN search"
        k = self.index.shape[1]
        return (f"Lance IVF index: recall@{k} {self.recall:.3f} and nearest-per-label recall {self.nearest_recall:.3f} "
                f"against exact search on {self.recall_rows} sampled rows")


# -- preparation --------------------------------------------------------------------------------
#: Rows per chunk of the elementwise passes (bounded temporaries: 10^6 x 384 float32 is 1.5 GB).
ROW_CHUNK = 65536


def _prepare(x: np.ndarray, metric: str, inplace: bool = False) -> tuple[np.ndarray, np.ndarray, int]:
    """Vectors ready for products: unit rows (cosine) or globally scaled rows with squared norms.

    In chunks of ROW_CHUNK rows; ``inplace`` overwrites ``x`` (a copy the caller owns) instead of
    making one, so the prepared matrix costs no second copy of the embedding.
    """
    xs = x if inplace else x.copy()
    n = len(xs)
    if metric == "cosine":
        for a in range(0, n, ROW_CHUNK):
            c = xs[a : a + ROW_CHUNK]
            # Scale each row by a power of two first (exact, direction kept) so norms cannot overflow.
            _, e = np.frexp(np.abs(c).max(axis=1, initial=0.0))
            np.ldexp(c, -e[:, None].astype(np.int32), out=c)
            norm = np.sqrt(np.einsum("ij,ij->i", c, c, dtype=np.float64))
            c /= norm[:, None].astype(c.dtype)
        return xs, np.zeros(n, xs.dtype), 0
    top = max((float(np.abs(xs[a : a + ROW_CHUNK]).max(initial=0.0)) for a in range(0, n, ROW_CHUNK)), default=0.0)
    _, e = math.frexp(top) if top > 0 else (0.0, 0)
    sq = np.empty(n, xs.dtype)
    for a in range(0, n, ROW_CHUNK):
        c = xs[a : a + ROW_CHUNK]
        np.ldexp(c, -e, out=c)
        sq[a : a + ROW_CHUNK] = np.einsum("ij,ij->i", c, c)
    return xs, sq, e


def _scores(q: np.ndarray, sq_q: np.ndarray, r: np.ndarray, sq_r: np.ndarray, metric: str) -> np.ndarray:
    """A distance-ordered score matrix: -cos (cosine) or the squared euclidean distance."""
    s = q @ r.T
    if metric == "cosine":
        np.negative(s, out=s)
        return s
    s *= -2
    s += sq_r[None, :]
    s += sq_q[:, None]
    np.maximum(s, 0, out=s)
    return s


def _to_distance(s: np.ndarray, metric: str, exp: int) -> np.ndarray:
    s = s.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        if metric == "cosine":
            return np.maximum(1.0 + s, 0.0)
        return np.ldexp(np.sqrt(s), exp)


def _block_rows(n: int, itemsize: int) -> int:
    return max(1, min(n, BLOCK_BYTES // max(1, n * itemsize)))


# -- exact search ---------------------------------------------------------------------------------
def _exact(
    xp: np.ndarray, sq: np.ndarray, bounds: list[tuple[int, int]], k: int, metric: str, rows: np.ndarray | None = None
) -> tuple[np.ndarray, ...]:
    """One blocked pass: k nearest (self excluded) and the nearest row of each class, for ``rows`` (default all)."""
    n = len(xp)
    rows = np.arange(n) if rows is None else rows
    m = len(rows)
    idx = np.empty((m, k), np.int64)
    dk = np.empty((m, k), xp.dtype)
    near = np.empty((m, len(bounds)), xp.dtype)
    step = _block_rows(n, xp.dtype.itemsize)
    for i0 in range(0, m, step):
        i1 = min(m, i0 + step)
        r = rows[i0:i1]
        s = _scores(xp[r], sq[r], xp, sq, metric)
        s[np.arange(i1 - i0), r] = np.inf
        part = np.argpartition(s, k - 1, axis=1)[:, :k]
        ds = np.take_along_axis(s, part, axis=1)
        order = np.argsort(ds, axis=1, kind="stable")
        idx[i0:i1] = np.take_along_axis(part, order, axis=1)
        dk[i0:i1] = np.take_along_axis(ds, order, axis=1)
        for c, (a, b) in enumerate(bounds):
            near[i0:i1, c] = s[:, a:b].min(axis=1)
    return idx, dk, near


def _nearest_in(xp: np.ndarray, sq: np.ndarray, a: int, b: int, metric: str) -> np.ndarray:
    """Score of the nearest row of xp[a:b] for every row of xp (self excluded)."""
    n = len(xp)
    out = np.empty(n, xp.dtype)
    step = _block_rows(b - a, xp.dtype.itemsize)
    for i0 in range(0, n, step):
        i1 = min(n, i0 + step)
        s = _scores(xp[i0:i1], sq[i0:i1], xp[a:b], sq[a:b], metric)
        rows = np.arange(i0, i1)
        own = (rows >= a) & (rows < b)
        s[np.flatnonzero(own), rows[own] - a] = np.inf
        out[i0:i1] = s.min(axis=1)
    return out


def knn_exact(
    vectors: np.ndarray, k: int = 10, metric: str = "cosine", rows: Sequence[int] | np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours among the other rows: (indices, distances), nearest first.

    For every row, or only for ``rows`` (indices into ``vectors``; their neighbours are
    still searched among all rows). Blocked matrix products, ``BLOCK_BYTES`` per block.
    """
    x = _check_vectors(vectors)
    _check_k(k, len(x), metric)
    if rows is not None:
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(x)):
            raise StatsError(f"rows must be indices in [0, {len(x)})")
    xp, sq, e = _prepare(x, metric)
    with np.errstate(over="ignore", invalid="ignore"):
        idx, dk, _ = _exact(xp, sq, [], k, metric, rows)
    return idx, _to_distance(dk, metric, e)


# -- index search ---------------------------------------------------------------------------------
def _lance_search(ref: np.ndarray, queries: np.ndarray, k: int, metric: str, self_offset: int | None, nprobes: int | None) -> np.ndarray:
    """Row indices (into ``ref``) of the k nearest of each query by a Lance IVF_FLAT index; -1 if missing."""
    import lancedb
    import pyarrow as pa
    from lancedb.index import IvfFlat

    n, d = ref.shape
    parts = max(1, min(4096, int(math.sqrt(n))))
    probes = nprobes or max(20, parts // 5)
    # Rows are unit vectors for cosine, where l2 ranks the same and Lance searches it much faster.
    dist = "l2"
    out = np.full((len(queries), k), -1, np.int64)
    with tempfile.TemporaryDirectory(prefix="ambiguity-knn-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        db = lancedb.connect(tmp)
        # no copy of a float32 matrix: pa.array of a contiguous numpy array shares its buffer
        vec = pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(ref, dtype=np.float32).ravel()), d)
        table = db.create_table("ref", data=pa.table({"row": pa.array(np.arange(n), pa.int64()), "vector": vec}))
        table.create_index("vector", config=IvfFlat(distance_type=dist, num_partitions=parts))  # type: ignore[arg-type]  # "l2" or "cosine"
        chunk = 1024
        for q0 in range(0, len(queries), chunk):
            q = queries[q0 : q0 + chunk].astype(np.float32)
            res = (
                table.search(list(q)).distance_type(dist).limit(  # type: ignore[attr-defined]  # the vector query builder has it
                    k + (self_offset is not None))
                .nprobes(probes).select(["row"]).to_arrow()
            )
            qi = res.column("query_index").to_numpy().astype(np.int64)
            row = res.column("row").to_numpy()
            dd = res.column("_distance").to_numpy()
            keep = np.ones(len(qi), bool) if self_offset is None else row != qi + q0 - self_offset
            qi, row, dd = qi[keep], row[keep], dd[keep]
            order = np.lexsort((row, dd, qi))
            qi, row = qi[order], row[order]
            first = np.searchsorted(qi, qi, side="left")
            rank = np.arange(len(qi)) - first
            ok = rank < k
            out[q0 + qi[ok], rank[ok]] = row[ok]
    return out


def _index_search(xp, sq, bounds, k, metric, nprobes):
    n = len(xp)
    idx = _lance_search(xp, xp, k, metric, 0, nprobes)
    safe = np.where(idx >= 0, idx, 0)
    dk = np.where(idx >= 0, _pair_scores(xp, sq, np.arange(n)[:, None], safe, metric), np.inf)
    order = np.argsort(dk, axis=1, kind="stable")
    idx, dk = np.take_along_axis(idx, order, 1), np.take_along_axis(dk, order, 1)
    near = np.empty((n, len(bounds)), xp.dtype)
    for c, (a, b) in enumerate(bounds):
        if b - a <= SMALL_CLASS:
            near[:, c] = _nearest_in(xp, sq, a, b, metric)
            continue
        got = _lance_search(xp[a:b], xp, 1 + 1, metric, None, nprobes)
        rows = np.arange(n)[:, None]
        hit = got >= 0
        glob = np.where(hit, got + a, 0)
        s = np.where(hit & (glob != rows), _pair_scores(xp, sq, rows, glob, metric), np.inf)
        near[:, c] = s.min(axis=1)
    return idx, dk.astype(xp.dtype), near


def _pair_scores(xp, sq, rows, cols, metric, chunk: int = 4096):
    """Scores between row ``rows[i]`` and each of ``cols[i, :]``, in chunks to bound memory."""
    rows = np.broadcast_to(rows, cols.shape)
    out = np.empty(cols.shape, xp.dtype)
    for i0 in range(0, len(cols), chunk):
        r, c = rows[i0 : i0 + chunk], cols[i0 : i0 + chunk]
        dots = np.einsum("ijk,ijk->ij", xp[r], xp[c])
        out[i0 : i0 + chunk] = -dots if metric == "cosine" else np.maximum(sq[r] + sq[c] - 2 * dots, 0)
    return out


def neighbours(
    vectors: np.ndarray, labels: Sequence[Any], k: int = 10, metric: str = "cosine", *,
    exact_limit: int = EXACT_LIMIT, nprobes: int | None = None, rows: Sequence[int] | np.ndarray | None = None,
) -> Neighbours:
    """k nearest neighbours of every row and its distance to the nearest row of each label.

    Exact up to ``exact_limit`` rows, a Lance IVF_FLAT index above (``nprobes`` partitions
    searched per query; default max(20, partitions / 5), with sqrt(n) partitions).
    ``nearest[:, c]`` is the distance to the nearest other row of the c-th label in
    ``sorted(set(labels))`` (inf if there is none). ``rows`` (exact search only) limits
    the answer to those rows, still searched among all rows.
    """
    x = _check_vectors(vectors)
    _check_k(k, len(x), metric)
    lab = np.asarray([str(v) for v in labels], dtype=object)
    if len(lab) != len(x):
        raise StatsError(f"{len(lab)} labels for {len(x)} vectors: give one label per row")
    classes = sorted(set(lab.tolist()))
    order = np.argsort(lab, kind="stable")
    sorted_lab = lab[order]
    bounds = [(int(np.searchsorted(sorted_lab, c, "left")), int(np.searchsorted(sorted_lab, c, "right"))) for c in classes]
    inv = np.empty_like(order)
    inv[order] = np.arange(len(order))
    want = np.arange(len(x)) if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
    if len(want) and (want.min() < 0 or want.max() >= len(x)):
        raise StatsError(f"rows must be indices in [0, {len(x)})")
    xp, sq, e = _prepare(x[order], metric, inplace=True)  # x[order] is already a copy
    with np.errstate(over="ignore", invalid="ignore"):
        if len(x) <= exact_limit:
            idx, dk, near = _exact(xp, sq, bounds, k, metric, inv[want])
            method = "exact"
        else:
            if rows is not None:
                raise StatsError(f"rows= needs exact search: raise exact_limit above {len(x)}")
            idx, dk, near = _index_search(xp, sq, bounds, k, metric, nprobes)
            recall = _recall(xp, sq, bounds, k, metric, idx, near)
            idx, dk, near = idx[inv], dk[inv], near[inv]
            method = "index"
    idx_orig = np.where(idx >= 0, order[np.where(idx >= 0, idx, 0)], -1)
    return Neighbours(
        index=idx_orig, distance=_to_distance(dk, metric, e), nearest=_to_distance(near, metric, e), method=method,
        **(recall if method == "index" else {}),
    )


def _recall(xp, sq, bounds, k, metric, idx, near, sample: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Recall of the index search against exact search on a seeded sample of rows (in sorted order).

    recall@k: share of each sampled row's exact k nearest that the index returned (ties at the
    k-th distance count as found when the returned row is as near). nearest_recall: share of
    sampled rows whose nearest row of every class has the exact distance.
    """
    n = len(xp)
    m = min(n, sample or RECALL_SAMPLE)
    rows = np.sort(np.random.default_rng(seed).choice(n, m, replace=False))
    ex_idx, ex_d, ex_near = _exact(xp, sq, bounds, k, metric, rows)
    got = idx[rows]
    safe = np.where(got >= 0, got, 0)
    got_d = np.where(got >= 0, _pair_scores(xp, sq, rows[:, None], safe, metric), np.inf)
    kth = ex_d[:, -1:]
    tol = 1e-5 * np.maximum(1.0, np.abs(kth))
    # a returned row counts when it is one of the exact k, or as near as the exact k-th (a tie)
    hit = (got[:, :, None] == ex_idx[:, None, :]).any(axis=2) | ((got >= 0) & (got_d <= kth + tol))
    near_ok = np.isclose(near[rows], ex_near, rtol=1e-5, atol=1e-6) | (np.isinf(near[rows]) & np.isinf(ex_near))
    return {"recall": float(hit.sum() / (m * k)), "recall_rows": int(m), "nearest_recall": float(near_ok.all(axis=1).mean())}


# -- validation -------------------------------------------------------------------------------------
def _check_vectors(vectors: Any) -> np.ndarray:
    try:
        x = np.asarray(vectors)
    except (TypeError, ValueError) as exc:
        raise StatsError(f"vectors must be a 2-D numeric array: {exc}") from None
    if x.ndim != 2 or x.shape[1] == 0:
        raise StatsError(f"vectors must be a 2-D array (segments x dimensions), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise StatsError(f"vectors must be numeric, got dtype {x.dtype}")
    if x.dtype != np.float32:
        x = x.astype(np.float64)
    if not all(np.isfinite(x[a : a + ROW_CHUNK]).all() for a in range(0, len(x), ROW_CHUNK)):
        raise StatsError("vectors contain NaN or Inf: drop or repair those rows (boundary() does it for you)")
    return x


def _check_k(k: Any, n: int, metric: str) -> None:
    if metric not in METRICS:
        raise StatsError(f"unknown metric {metric!r}: use one of {', '.join(METRICS)}")
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise StatsError(f"k must be a positive integer, got {k!r}")
    if n < k + 1:
        raise StatsError(f"k = {k} neighbours need at least {k + 1} usable segments, got {n}: lower k")
