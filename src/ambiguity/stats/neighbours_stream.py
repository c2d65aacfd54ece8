"""Exact nearest neighbours of a few query rows among many, fed batch by batch.

:func:`ambiguity.stats.neighbours.neighbours` holds the whole matrix; this searcher holds only the queries
and the running answer, so a store of 10^6 x 384 vectors is searched in one streamed pass with the memory of
one batch. Per batch and chunk of queries it computes one score block (a matrix product), takes each class's
minimum over the batch (the batch is sorted by class, so each class is a slice: no copy), and updates the k
nearest from the entries below each query's current k-th distance only. After the first batch that is a
share of about k / rows-seen of the block, so the cost is the products and three elementwise passes, not the
partial sort of every block (which took more time than the products: docs/benchmarks.md, issue 29).
"""

from __future__ import annotations

import numpy as np

from ambiguity.errors import StatsError
from ambiguity.stats.neighbours import Neighbours, _to_distance, prepare_rows

#: Bytes of one score block (queries x rows of a batch), and rows of it partially sorted at a time.
BLOCK_BYTES = 64 * 2**20
FRESH_ROWS = 128


class StreamedSearch:
    """k nearest rows (self excluded) and the nearest row of each class, for ``queries`` among the rows added.

    ``queries``: (m, d) raw vectors; ``at``: each query's own position among the rows (it is not its own
    neighbour; -1 if it is not one of them). Rows are added in position order with :meth:`add`; a row
    with code -1 is not searched. :meth:`result` gives :class:`Neighbours` whose indices are positions.
    """

    def __init__(self, queries: np.ndarray, at: np.ndarray, k: int, n_classes: int, metric: str = "cosine",
                 exp: int = 0) -> None:
        if metric not in ("cosine", "euclidean"):
            raise StatsError(f"unknown metric {metric!r}: use cosine or euclidean")
        self.k, self.metric, self.exp, self.n_classes = k, metric, exp, n_classes
        # float32 products unless the queries are float64 (as neighbours() keeps a float64 matrix in float64)
        self.dtype = np.float64 if np.asarray(queries).dtype == np.float64 else np.float32
        q, self.sq_q = prepare_rows(queries, metric, exp, self.dtype)
        # minimised score: -cos, or |r|^2 - 2 q.r (|q|^2 is added at the end: it does not change the order)
        self.q = -q if metric == "cosine" else -2 * q
        self.at = np.asarray(at, np.int64)
        m = len(q)
        self.idx = np.full((m, k), -1, np.int64)
        self.dk = np.full((m, k), np.inf, self.dtype)
        self.near = np.full((m, n_classes), np.inf, self.dtype)
        self.seen = 0

    def add(self, x: np.ndarray, codes: np.ndarray) -> None:
        """The next ``len(x)`` rows (positions seen .. seen + len(x) - 1), raw, with their class codes."""
        b, first = len(x), self.seen
        self.seen += b
        codes = np.asarray(codes)
        if len(codes) != b:
            raise StatsError(f"{len(codes)} codes for {b} rows")
        use = np.flatnonzero(codes >= 0)
        if not len(use):
            return
        use = use[np.argsort(codes[use], kind="stable")]  # class by class: each class a slice of the block
        pos, codes = use + first, codes[use]
        r, sq_r = prepare_rows(np.asarray(x)[use], self.metric, self.exp, self.dtype)
        bounds = np.searchsorted(codes, np.arange(self.n_classes + 1))
        # the queries that are rows of this batch, and their column: their own score is set to inf
        col = np.full(b, -1, np.int64)
        col[use] = np.arange(len(use))
        mine = np.flatnonzero((self.at >= first) & (self.at < first + b))
        mine = mine[col[self.at[mine] - first] >= 0]
        step = max(1, BLOCK_BYTES // (np.dtype(self.dtype).itemsize * len(pos)))
        for q0 in range(0, len(self.q), step):
            q1 = min(len(self.q), q0 + step)
            s = self.q[q0:q1] @ r.T
            if self.metric == "euclidean":
                s += sq_r[None, :]
            own = mine[(mine >= q0) & (mine < q1)]
            s[own - q0, col[self.at[own] - first]] = np.inf
            for c in range(self.n_classes):
                a, e = bounds[c], bounds[c + 1]
                if e > a:
                    np.minimum(self.near[q0:q1, c], s[:, a:e].min(axis=1), out=self.near[q0:q1, c])
            self._update(s, q0, pos)

    def _update(self, s: np.ndarray, q0: int, pos: np.ndarray) -> None:
        k = self.k
        tau = self.dk[q0 : q0 + len(s), -1]
        fresh = np.flatnonzero(np.isinf(tau))  # not k found yet (the first batch): a partial sort of the row
        qi_l, j_l, d_l = [], [], []
        if len(fresh):
            kk = min(k, s.shape[1])
            for f0 in range(0, len(fresh), FRESH_ROWS):  # a few rows at a time: the partial sort's index matrix is int64
                f = fresh[f0 : f0 + FRESH_ROWS]
                part = np.argpartition(s[f], kk - 1, axis=1)[:, :kk] if kk < s.shape[1] else np.tile(np.arange(s.shape[1]), (len(f), 1))
                qi_l.append(np.repeat(f, part.shape[1]))
                j_l.append(part.ravel())
                d_l.append(s[f[:, None], part].ravel())
            tau = tau.copy()
            tau[fresh] = -np.inf  # handled above
        qi, j = np.nonzero(s < tau[:, None])  # strictly nearer than the current k-th: a tie keeps the earlier row
        if len(qi):
            qi_l.append(qi)
            j_l.append(j)
            d_l.append(s[qi, j])
        if not qi_l:
            return
        qi, j, d = np.concatenate(qi_l), np.concatenate(j_l), np.concatenate(d_l)
        keep = np.isfinite(d)
        qi, j, d = qi[keep] + q0, pos[j[keep]], d[keep]
        rows = np.unique(qi)
        cur = self.idx[rows]
        all_q = np.concatenate([np.repeat(rows, k), qi])
        all_j = np.concatenate([cur.ravel(), j])
        all_d = np.concatenate([self.dk[rows].ravel(), d])
        order = np.lexsort((all_j, all_d, all_q))  # by query, then distance, then position
        all_q, all_j, all_d = all_q[order], all_j[order], all_d[order]
        rank = np.arange(len(all_q)) - np.searchsorted(all_q, all_q, side="left")
        ok = rank < k
        self.idx[all_q[ok], rank[ok]] = all_j[ok]
        self.dk[all_q[ok], rank[ok]] = all_d[ok]

    def result(self) -> Neighbours:
        """The k nearest (positions, distances; -1 / inf where fewer rows were searched) and the nearest of each class."""
        dk, near = self.dk.astype(np.float64), self.near.astype(np.float64)
        if self.metric == "euclidean":
            sq = self.sq_q.astype(np.float64)[:, None]
            dk, near = np.maximum(dk + sq, 0), np.maximum(near + sq, 0)
        with np.errstate(over="ignore", invalid="ignore"):
            return Neighbours(index=self.idx, distance=_to_distance(dk, self.metric, self.exp),
                              nearest=_to_distance(near, self.metric, self.exp), method="exact")
