"""Nearest neighbours of every row of an embedding matrix, and of every class: exact or from an index.

Exact search (blocked matrix products: one pass gives the k nearest and the nearest of every class,
n^2 work) up to ``EXACT_LIMIT`` rows; above it a Lance IVF_FLAT index whose probes are raised until
recall@k, measured against exact search on a seeded sample, reaches a target (0.95 by default), so
the recall is measured, not hoped for. The result reports it, measured again on an independent sample.
:mod:`ambiguity.stats.boundary_tests` builds its statistics on these neighbours.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ambiguity.errors import StatsError

METRICS: tuple[str, ...] = ("cosine", "euclidean")
#: Above this many rows, neighbours come from a Lance vector index instead of exact search: where the index
#: path (recall >= 0.95) starts to cost less than exact search (bench/boundary_scale.py; docs/scaling.md).
EXACT_LIMIT = 20_000
#: Bytes of one block of the distance matrix in exact search.
BLOCK_BYTES = 128 * 2**20
#: In the index path, a row whose k nearest miss a class of at most this many rows finds its nearest
#: row of that class by exact search (cheap), of a larger class by the index restricted to the class.
SMALL_CLASS = 4096
#: In the index path, this many rows (seeded sample) are searched exactly as well, to measure recall:
#: one sample to tune the probes, an independent one to report the recall of the answer.
RECALL_SAMPLE = 500
#: Recall@k the index path raises its probes to reach (on the tuning sample).
TARGET_RECALL = 0.95
#: Probes of the first tuning step (doubled until the target is reached or every partition is probed).
FIRST_PROBES = 2
MAX_PARTITIONS = 4096
#: Training rows per partition of the index's k-means.
KMEANS_SAMPLE = 64
#: Bytes of index partitions Lance may cache in memory per index.
INDEX_CACHE_BYTES = 256 * 2**20
#: Queries per Lance search call.
QUERY_CHUNK = 1024
#: A prepared matrix larger than this is a memory-mapped file in a temporary directory, not anonymous memory.
MAP_BYTES = 256 * 2**20


@dataclass(frozen=True)
class Neighbours:
    """k nearest neighbours (row indices, distances) and the distance to the nearest row of each class."""

    index: np.ndarray  # (m, k) int64, -1 where the index returned fewer than k
    distance: np.ndarray  # (m, k)
    nearest: np.ndarray  # (m, n_classes); inf where a class has no other row
    method: str
    #: Share of the exact k nearest that the search found, over ``recall_rows`` sampled rows
    #: (index path); 1.0 on the exact path, by construction (``recall_rows`` 0).
    recall: float = 1.0
    recall_rows: int = 0
    #: Share of the sampled rows whose nearest row of every class is the exact one (index path).
    nearest_recall: float = 1.0
    partitions: int = 0  # IVF partitions of the index (index path)
    nprobes: int = 0  # partitions searched per query
    target: float | None = None  # the recall the probes were tuned to reach (None: probes given)
    #: Per tuning step: what was tuned (recall@k, or the nearest of a label by its class index), probes, the
    #: recall on the tuning sample and its one-sided 95% lower bound (the probes stop where it reaches the target)
    tuning: tuple[tuple[str, int, float, float], ...] = ()

    def describe(self) -> str:
        """One line for the user: how the neighbours were found and, from an index, how well."""
        if self.method == "exact":
            return "exact kNN search"
        k = self.index.shape[1]
        how = (f"probes raised until the 95% lower bound of recall@{k} on a separate sample reached {self.target:.2f}"
               if self.target is not None
               else "probes given")
        return (f"Lance IVF_FLAT index ({self.partitions} partitions, {self.nprobes} probed per query: {how}): "
                f"recall@{k} {self.recall:.3f} and nearest-per-label recall {self.nearest_recall:.3f} "
                f"against exact search on {self.recall_rows} sampled rows")


# -- preparation --------------------------------------------------------------------------------
#: Rows per chunk of the elementwise passes (bounded temporaries: 10^6 x 384 float32 is 1.5 GB).
ROW_CHUNK = 65536


def _scratch(shape: tuple[int, int], dtype: Any, tmp: str | None) -> np.ndarray:
    """An empty matrix: a memory-mapped file in ``tmp`` above MAP_BYTES (the OS pages it), else in memory."""
    if tmp is not None and shape[0] * shape[1] * np.dtype(dtype).itemsize > MAP_BYTES:
        return np.lib.format.open_memmap(f"{tmp}/prepared.npy", mode="w+", dtype=dtype, shape=shape)
    return np.empty(shape, dtype)


def prepare_rows(x: np.ndarray, metric: str, exp: int = 0, dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Rows ready for products: unit rows (cosine; each row scaled by a power of two first, exact and
    direction kept, so its norm cannot overflow), or rows scaled by 2**-exp with their squared norms
    (euclidean; ``exp`` from the largest magnitude of the whole matrix, :func:`scale_exponent`)."""
    c: np.ndarray = np.array(x, dtype=dtype)
    if metric == "cosine":
        _, e = np.frexp(np.abs(c).max(axis=1, initial=0.0))
        np.ldexp(c, -e[:, None].astype(np.int32), out=c)
        norm = np.sqrt(np.einsum("ij,ij->i", c, c, dtype=np.float64))
        c /= norm[:, None].astype(c.dtype)
        return c, np.zeros(len(c), c.dtype)
    c = np.ldexp(c, -exp).astype(c.dtype, copy=False)
    return c, np.einsum("ij,ij->i", c, c)


def scale_exponent(top: float) -> int:
    """The power of two the euclidean path scales by, from the largest magnitude of the matrix."""
    return int(np.frexp(top)[1]) if top > 0 else 0


def _prepare(x: np.ndarray, metric: str, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """:func:`prepare_rows` of the whole matrix, ROW_CHUNK rows at a time, written into ``out`` (a copy of
    ``x`` by default; ``x`` itself to overwrite it), so the prepared matrix costs at most one more copy of
    the embedding. Returns (rows, squared norms, exponent)."""
    xs = x.copy() if out is None else out
    n = len(xs)
    e = 0 if metric == "cosine" else scale_exponent(
        max((float(np.abs(x[a : a + ROW_CHUNK]).max(initial=0.0)) for a in range(0, n, ROW_CHUNK)), default=0.0))
    sq = np.empty(n, xs.dtype)
    for a in range(0, n, ROW_CHUNK):
        c, s = prepare_rows(x[a : a + ROW_CHUNK], metric, e, xs.dtype)
        xs[a : a + len(c)] = c
        sq[a : a + len(c)] = s
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
    xp: np.ndarray, sq: np.ndarray, groups: Sequence[Any], k: int, metric: str, rows: np.ndarray | None = None
) -> tuple[np.ndarray, ...]:
    """One blocked pass: k nearest (self excluded) and the nearest row of each class, for ``rows`` (default all).

    ``groups``: each class's columns, a slice (rows sorted by class) or an index array.
    """
    n = len(xp)
    rows = np.arange(n) if rows is None else rows
    m = len(rows)
    idx = np.empty((m, k), np.int64)
    dk = np.empty((m, k), xp.dtype)
    near = np.empty((m, len(groups)), xp.dtype)
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
        for c, g in enumerate(groups):
            near[i0:i1, c] = s[:, g].min(axis=1)
    return idx, dk, near


def _nearest_among(xp: np.ndarray, sq: np.ndarray, rows: np.ndarray, members: np.ndarray, metric: str) -> np.ndarray:
    """Score of the nearest of ``members`` for each of ``rows`` (self excluded): exact, blocked."""
    out = np.empty(len(rows), xp.dtype)
    ref, sq_ref = np.asarray(xp[members]), sq[members]
    step = _block_rows(len(members), xp.dtype.itemsize)
    for i0 in range(0, len(rows), step):
        r = rows[i0 : i0 + step]
        s = _scores(np.asarray(xp[r]), sq[r], ref, sq_ref, metric)
        s[r[:, None] == members[None, :]] = np.inf
        out[i0 : i0 + len(r)] = s.min(axis=1)
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
    want = _check_rows(rows, len(x))
    xp, sq, e = _prepare(x, metric)
    with np.errstate(over="ignore", invalid="ignore"):
        idx, dk, _ = _exact(xp, sq, [], k, metric, want)
    return idx, _to_distance(dk, metric, e)


# -- index search ---------------------------------------------------------------------------------
class _Index:
    """A Lance IVF_FLAT index over the prepared rows ``members`` (default all), in a temporary directory.

    l2 distance: for cosine the rows are unit vectors, where l2 ranks the same and Lance searches it
    faster. sqrt(n) partitions (Lance's guidance for IVF), at most MAX_PARTITIONS.
    """

    def __init__(self, xp: np.ndarray, tmp: str, members: np.ndarray | None = None, name: str = "all") -> None:
        import lancedb
        import pyarrow as pa
        from lancedb.index import IvfFlat

        self.xp = xp
        self.members = np.arange(len(xp)) if members is None else members
        n, d = len(self.members), xp.shape[1]
        self.partitions = max(1, min(MAX_PARTITIONS, int(math.sqrt(n))))
        schema = pa.schema([("row", pa.int64()), ("vector", pa.list_(pa.float32(), d))])

        def chunks():  # ROW_CHUNK rows at a time: the table is written without another copy of the matrix
            for a in range(0, n, ROW_CHUNK):
                m = self.members[a : a + ROW_CHUNK]
                v = np.ascontiguousarray(xp[m] if members is not None else xp[a : a + ROW_CHUNK], dtype=np.float32)
                yield pa.record_batch([pa.array(m), pa.FixedSizeListArray.from_arrays(pa.array(v.ravel()), d)], schema=schema)

        reader = pa.RecordBatchReader.from_batches(schema, chunks())
        # Lance caches whole index partitions in memory (an IVF_FLAT index is a copy of the vectors): bounded here
        session = lancedb.Session(index_cache_size_bytes=INDEX_CACHE_BYTES)
        self.table = lancedb.connect(tmp, session=session).create_table(name, data=reader)
        # k-means trained on 64 rows per partition, not Lance's 256: half the build's CPU at 10^5 rows, the same
        # recall at each probe count (bench/boundary_scale.py); the probes are tuned to the target either way.
        cfg = IvfFlat(distance_type="l2", num_partitions=self.partitions, sample_rate=KMEANS_SAMPLE)
        self.table.create_index("vector", config=cfg)
        try:  # the partition centres, to send queries in partition order (pylance's index statistics)
            stats = self.table.to_lance().stats.index_stats("vector_idx")
            self.centroids: np.ndarray | None = np.asarray(stats["indices"][0]["centroids"], dtype=np.float32)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError, RuntimeError):
            self.centroids = None

    def _by_partition(self, rows: np.ndarray) -> np.ndarray:
        """Positions of ``rows`` ordered by their nearest partition centre. A batch of queries in one region
        then reads a few partitions, and the bounded index cache serves them (in row order every batch of
        1,024 queries touched nearly every partition: at 10^6 rows the whole 1.5 GB index re-read per batch)."""
        if self.centroids is None or len(rows) <= QUERY_CHUNK:
            return np.arange(len(rows))
        c = self.centroids
        half = 0.5 * np.einsum("ij,ij->i", c, c)
        part = np.empty(len(rows), np.int64)
        for a in range(0, len(rows), ROW_CHUNK):
            q = np.asarray(self.xp[rows[a : a + ROW_CHUNK]], dtype=np.float32)
            part[a : a + len(q)] = np.argmax(q @ c.T - half, axis=1)  # nearest centre in l2
        return np.argsort(part, kind="stable")

    def search(self, rows: np.ndarray, k: int, nprobes: int) -> np.ndarray:
        """Indices of the k nearest members of each of ``rows`` (itself left out), nearest first; -1 where
        fewer were found."""
        out = np.full((len(rows), k), -1, np.int64)
        by_part = self._by_partition(rows)
        for q0 in range(0, len(rows), QUERY_CHUNK):
            at = by_part[q0 : q0 + QUERY_CHUNK]
            r = rows[at]
            q = np.asarray(self.xp[r], dtype=np.float32)
            res = (self.table.search(list(q)).distance_type("l2").limit(k + 1).nprobes(nprobes)  # type: ignore[attr-defined]  # the vector query builder has these
                   .select(["row", "_distance"]).to_arrow())
            qi = res.column("query_index").to_numpy().astype(np.int64)
            row = res.column("row").to_numpy()
            dd = res.column("_distance").to_numpy()
            keep = row != r[qi]
            qi, row, dd = qi[keep], row[keep], dd[keep]
            order = np.lexsort((row, dd, qi))
            qi, row = qi[order], row[order]
            rank = np.arange(len(qi)) - np.searchsorted(qi, qi, side="left")
            ok = rank < k
            out[at[qi[ok]], rank[ok]] = row[ok]
        return out

    def tune(self, rows: np.ndarray, k: int, target: float, recall) -> tuple[int, list[tuple[int, float, float]]]:
        """Probes doubled from FIRST_PROBES until the one-sided 95% lower bound of the mean of ``recall(found)``
        (one value per row of ``rows``) reaches ``target``, or every partition is probed (exact search).
        Steps: (probes, mean recall, lower bound)."""
        p, steps = min(FIRST_PROBES, self.partitions), []
        while True:
            r = recall(self.search(rows, k, p))
            mean = float(r.mean())
            steps.append((p, mean, mean - 1.645 * float(r.std(ddof=1)) / math.sqrt(len(r)) if len(r) > 1 else mean))
            if steps[-1][2] >= target or p >= self.partitions:
                return p, steps
            p = min(self.partitions, 2 * p)


def _pair_scores(xp, sq, rows, cols, metric, chunk: int = 4096):
    """Scores between row ``rows[i]`` and each of ``cols[i, :]`` (-1: inf), in chunks to bound memory."""
    rows = np.broadcast_to(rows, cols.shape)
    out = np.empty(cols.shape, xp.dtype)
    for i0 in range(0, len(cols), chunk):
        r, c = rows[i0 : i0 + chunk], cols[i0 : i0 + chunk]
        safe = np.where(c >= 0, c, 0)
        dots = np.einsum("ijk,ijk->ij", np.asarray(xp[r.ravel()]).reshape(*r.shape, -1), np.asarray(xp[safe.ravel()]).reshape(*c.shape, -1))
        s = -dots if metric == "cosine" else np.maximum(sq[r] + sq[safe] - 2 * dots, 0)
        out[i0 : i0 + chunk] = np.where(c >= 0, s, np.inf)
    return out


def _sample(n: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(n, min(n, RECALL_SAMPLE), replace=False))


def _recall_at_k(got: np.ndarray, got_s: np.ndarray, ex_idx: np.ndarray, ex_s: np.ndarray) -> np.ndarray:
    """Per row, the share of its exact k nearest found; a returned row as near as the exact k-th counts (a tie)."""
    kth = ex_s[:, -1:]
    tol = 1e-5 * np.maximum(1.0, np.abs(kth))
    hit = (got[:, :, None] == ex_idx[:, None, :]).any(axis=2) | ((got >= 0) & (got_s <= kth + tol))
    return hit.mean(axis=1)


def _index_search(xp, sq, codes, classes, k, metric, nprobes, target, want, tmp) -> dict[str, Any]:
    """k nearest and nearest per class of ``want`` by the index; probes tuned to ``target`` unless given.

    The nearest row of a class is the first of that class among the k nearest; a row whose k nearest
    hold none of a class searches that class: exactly for a small class, else in an index of the
    class's rows (its own probes, tuned on the tuning sample to the same target).
    """
    n_classes = int(codes.max()) + 1 if len(codes) else 0
    groups = [np.flatnonzero(codes == c) for c in range(n_classes)]
    t_rows = _sample(len(xp), 1)  # the tuning sample (seed 1): never the one the recall is reported on
    t_idx, t_s, t_near = _exact(xp, sq, groups, k, metric, t_rows) if nprobes is None else (t_rows, t_rows, t_rows)
    ix = _Index(xp, tmp)
    if nprobes is None:
        p, steps = ix.tune(t_rows, k, target, lambda got: _recall_at_k(got, _pair_scores(xp, sq, t_rows[:, None], got, metric), t_idx, t_s))
        tuning = [(f"recall@{k}", *step) for step in steps]
    else:
        p, tuning = max(1, min(int(nprobes), ix.partitions)), []
    idx = ix.search(want, k, p)
    dk = _pair_scores(xp, sq, want[:, None], idx, metric)
    order = np.argsort(dk, axis=1, kind="stable")
    idx, dk = np.take_along_axis(idx, order, 1), np.take_along_axis(dk, order, 1)
    near = np.full((len(want), n_classes), np.inf, xp.dtype)
    nc = np.where(idx >= 0, codes[np.where(idx >= 0, idx, 0)], -1)
    for c, members in enumerate(groups):
        hit = nc == c
        near[:, c] = np.where(hit, dk, np.inf).min(axis=1)
        miss = np.flatnonzero(~hit.any(axis=1))
        if not len(miss):
            continue
        if len(members) <= SMALL_CLASS:
            near[miss, c] = _nearest_among(xp, sq, want[miss], members, metric)
            continue
        cx = _Index(xp, tmp, members, f"class{c}")
        if nprobes is None:
            def ok(got, c=c):  # share of tuning rows whose nearest of class c is found (exact distance)
                s = _pair_scores(xp, sq, t_rows[:, None], got, metric)[:, 0]
                return (np.isclose(s, t_near[:, c], rtol=1e-5, atol=1e-6) | (np.isinf(s) & np.isinf(t_near[:, c]))).astype(float)
            cp, steps = cx.tune(t_rows, 1, target, ok)
            tuning += [(f"nearest of label {classes[c]}", *step) for step in steps]
        else:
            cp = max(1, min(int(nprobes), cx.partitions))
        near[miss, c] = _pair_scores(xp, sq, want[miss][:, None], cx.search(want[miss], 1, cp), metric)[:, 0]
    # recall of the answer, on a sample of its rows independent of the tuning one (seed 0)
    pos = _sample(len(want), 0)
    ex_idx, ex_s, ex_near = _exact(xp, sq, groups, k, metric, want[pos])
    near_ok = np.isclose(near[pos], ex_near, rtol=1e-5, atol=1e-6) | (np.isinf(near[pos]) & np.isinf(ex_near))
    return {
        "index": idx, "dk": dk, "near": near, "recall": float(_recall_at_k(idx[pos], dk[pos], ex_idx, ex_s).mean()),
        "recall_rows": len(pos), "nearest_recall": float(near_ok.all(axis=1).mean()), "partitions": ix.partitions,
        "nprobes": p, "target": target if nprobes is None else None, "tuning": tuple(tuning),
    }


def neighbours(
    vectors: np.ndarray, labels: Sequence[Any], k: int = 10, metric: str = "cosine", *,
    exact_limit: int = EXACT_LIMIT, nprobes: int | None = None, target_recall: float = TARGET_RECALL,
    rows: Sequence[int] | np.ndarray | None = None, overwrite: bool = False,
) -> Neighbours:
    """k nearest neighbours of every row (or of ``rows``) and its distance to the nearest row of each label.

    Exact up to ``exact_limit`` rows. Above, a Lance IVF_FLAT index with sqrt(n) partitions:
    ``nprobes`` partitions searched per query, or (default) probes doubled from FIRST_PROBES until
    the one-sided 95% lower bound of recall@k on a seeded sample of RECALL_SAMPLE rows, against
    exact search, reaches ``target_recall``; the recall of the answer is then measured on an
    independent sample and reported.
    ``nearest[:, c]`` is the distance to the nearest other row of the c-th label in
    ``sorted(set(labels))`` (inf if there is none). ``rows`` limits the answer to those rows, still
    searched among all rows. ``overwrite``: ``vectors`` (float32) may be prepared in place, saving a
    copy of a large embedding (the caller's array is then normalised or scaled).
    """
    x = _check_vectors(vectors)
    _check_k(k, len(x), metric)
    if not 0 < target_recall <= 1:
        raise StatsError(f"target_recall must be in (0, 1], got {target_recall!r}")
    lab = np.asarray([str(v) for v in labels], dtype=object)
    if len(lab) != len(x):
        raise StatsError(f"{len(lab)} labels for {len(x)} vectors: give one label per row")
    classes, codes = np.unique(lab.astype(str), return_inverse=True)
    want = _check_rows(rows, len(x))
    if len(x) > exact_limit:
        with tempfile.TemporaryDirectory(prefix="ambiguity-knn-") as tmp, np.errstate(over="ignore", invalid="ignore"):
            xp, sq, e = _prepare(x, metric, out=x if _owned(x, overwrite) else _scratch(x.shape, x.dtype, tmp))
            got = _index_search(xp, sq, codes, classes.tolist(), k, metric, nprobes, target_recall, want, tmp)
            del xp
        dk, near = got.pop("dk"), got.pop("near")
        return Neighbours(distance=_to_distance(dk, metric, e), nearest=_to_distance(near, metric, e), method="index", **got)
    if _owned(x, overwrite):  # prepared in place, rows unsorted: each class's columns by index
        xp, sq, e = _prepare(x, metric, out=x)
        order = np.arange(len(x))
        groups: list[Any] = [np.flatnonzero(codes == c) for c in range(len(classes))]
    else:  # a sorted copy, prepared in place: each class's columns a slice
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(classes) + 1))
        xo = x[order]
        xp, sq, e = _prepare(xo, metric, out=xo)
        groups = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    inv = np.empty_like(order)
    inv[order] = np.arange(len(order))
    with np.errstate(over="ignore", invalid="ignore"):
        idx, dk, near = _exact(xp, sq, groups, k, metric, inv[want])
    idx_orig = np.where(idx >= 0, order[np.where(idx >= 0, idx, 0)], -1)
    return Neighbours(index=idx_orig, distance=_to_distance(dk, metric, e), nearest=_to_distance(near, metric, e), method="exact")


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


def _owned(x: np.ndarray, overwrite: bool) -> bool:
    """Whether ``x`` may be prepared in place: the caller gave it up, and it is a writable float32 block."""
    return overwrite and x.dtype == np.float32 and x.flags.writeable and x.flags.c_contiguous


def _check_rows(rows: Any, n: int) -> np.ndarray:
    want = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
    if len(want) and (want.min() < 0 or want.max() >= n):
        raise StatsError(f"rows must be indices in [0, {n})")
    return want
