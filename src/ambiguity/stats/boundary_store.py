"""Boundary analysis of an embedding group of a store, read batch by batch.

The store is a :class:`~ambiguity.stats.boundary_tests.VectorSource`: the sampled path (``query_sample``)
reads the group three times in batches (usable rows, the sampled rows, the search) and never holds it; the
full path reads it once into one matrix, a memory-mapped temporary file above ``neighbours.MAP_BYTES``.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from ambiguity.errors import StatsError
from ambiguity.stats.boundary_tests import boundary_arrays
from ambiguity.stats.neighbours import _scratch
from ambiguity.stats.results import BoundaryResult
from ambiguity.stores.schema import table_name
from ambiguity.stores.tables import Table

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore

#: Rows per read of the group (25 MB of a 384-d float32 vector column).
BATCH_ROWS = 16_384


class StoreSource:
    """The ``ok`` vectors of a group whose segment is in ``wanted``, in scan order; :attr:`ids` read first (the id
    column only). Every later pass checks that it reads the same ids: the group may not change in between."""

    def __init__(self, store: FeatureStore, group: str, column: str, wanted: pl.Series, tmp: str) -> None:
        self.store, self.group, self.column, self.tmp = store, group, column, tmp
        self.table = Table(table_name(group))
        parts = list(self.table.ranges(store, ["segment_id", "status"], batch_size=1 << 18))
        every = pl.concat(parts) if parts else pl.DataFrame(schema={"segment_id": pl.String, "status": pl.String})
        # which rows of the table are read: one membership test here, not one per batch of every pass
        use = every.select((pl.col("status") == "ok") & pl.col("segment_id").is_in(wanted.implode())).to_series()
        self.use_rows = use.to_numpy()
        self.ids = every["segment_id"].filter(use)
        self.mapped: tuple[int, int] | None = None
        self.held = False  # whole() was read: the matrix was held (in memory or mapped), not streamed

    def __len__(self) -> int:
        return self.ids.len()

    def _batches(self, columns: list[str]) -> Iterator[pl.DataFrame]:
        # by row ranges, not a scan: a scan reads ahead of a slow consumer (the search) up to ~1 GB of vectors
        at = 0
        for df in self.table.ranges(self.store, columns, batch_size=BATCH_ROWS):
            take = self.use_rows[at : at + df.height]
            at += df.height
            if len(take) != df.height:
                break
            df = df.filter(pl.Series(take))
            if df.height:
                yield df
        if at != len(self.use_rows):
            raise StatsError(f"group {self.group!r} changed while it was read: run the analysis again")

    def chunks(self) -> Iterator[np.ndarray]:
        at = 0
        for df in self._batches(["segment_id", self.column]):
            if not df["segment_id"].equals(self.ids.slice(at, df.height)):
                raise StatsError(f"group {self.group!r} changed while it was read: run the analysis again")
            at += df.height
            yield self._vectors(df)
        if at != len(self):
            raise StatsError(f"group {self.group!r} changed while it was read: run the analysis again")

    def _vectors(self, df: pl.DataFrame) -> np.ndarray:
        """A batch's vectors as float32; a null vector (one with a NaN element is stored null) reads as NaN."""
        col = df[self.column]
        if not isinstance(col.dtype, pl.Array):
            raise StatsError(f"column {self.column!r} of group {self.group!r} is not a vector column")
        v = col.to_numpy().astype(np.float32, copy=False).reshape(df.height, -1)
        if col.null_count():
            v = np.array(v)
            v[col.is_null().to_numpy()] = np.nan
        return v

    def rows(self, at: np.ndarray) -> np.ndarray:
        out, start, got = None, 0, 0
        for c in self.chunks():
            hit = at[(at >= start) & (at < start + len(c))]
            if out is None:
                out = np.empty((len(at), c.shape[1]), np.float32)
            out[got : got + len(hit)] = c[hit - start]
            got += len(hit)
            start += len(c)
        return out if out is not None else np.empty((0, 1), np.float32)

    def whole(self) -> tuple[np.ndarray, bool]:
        """One float32 matrix: a memory-mapped file in ``tmp`` above ``neighbours.MAP_BYTES`` (the OS pages it), else
        in memory."""
        out: np.ndarray | None = None
        at = 0
        self.held = True
        for c in self.chunks():
            if out is None:
                out = _scratch((len(self), c.shape[1]), np.float32, self.tmp)
                self.mapped = out.shape if isinstance(out, np.memmap) else None
            out[at : at + len(c)] = c
            at += len(c)
        return (out if out is not None else np.empty((0, 1), np.float32)), True


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
    keyword arguments go to :func:`boundary_arrays`; with ``query_sample`` (at most ``exact_limit`` sampled
    segments) the group is streamed, never held.
    """
    seg = store.segments(["segment_id", "label", "split"])
    if splits is not None:
        seg = seg.filter(pl.col("split").is_in(list(splits)))
    with tempfile.TemporaryDirectory(prefix="ambiguity-boundary-") as tmp:
        source = StoreSource(store, group, column, seg["segment_id"], tmp)
        if not len(source):
            raise StatsError(f"no segment of group {group!r} is in the segments table{' for splits ' + ', '.join(splits) if splits else ''}")
        labels = pl.DataFrame({"segment_id": source.ids}).join(seg.select("segment_id", "label"), on="segment_id", how="left",
                                                              maintain_order="left")["label"].to_list()
        res = boundary_arrays(source, labels, ids=source.ids.to_list(), quadrants=quadrants, k=k, metric=metric, group=group, **kwargs)
    if source.mapped:
        n, d = source.mapped
        note = (f"the {n:,} x {d} embedding ({n * d * 4 / 2**30:.1f} GiB) was read into a memory-mapped temporary file "
                "(paged by the OS), not held in memory")
    elif kwargs.get("query_sample") and not source.held:
        note = (f"the embedding was read in batches of {BATCH_ROWS:,} rows and the {res.queried:,} sampled segments searched "
                "exactly in one pass: it was never held in memory")
    else:
        note = None
    return dataclasses.replace(res, memory_note=note, quadrants_note=quadrants_note or res.quadrants_note)
