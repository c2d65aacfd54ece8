"""Every table of the store by name, with typed reads and deletes: a filter is a keyword argument, never a
query string built by the caller.

A :class:`Table` is its name (a ``str``, so ``store.upsert(PREDICTIONS, ...)`` works as before) plus the
columns it may be filtered on. A filter value is

- a string, number or bool: the column equals it;
- a list, tuple or set: the column is one of them (an empty one matches no row);
- ``Not(value)``: the negation of either (``Not([])`` matches every row);
- ``None``: no filter on that column (so an optional argument passes straight through).

A column a table does not list is a ``TypeError``, like a misspelt keyword. The filter string Lance takes is
built in ``stores`` only (``stores.sql.where``), with every string quoted, so a task or model name with an apostrophe is
just a name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import polars as pl

from ambiguity.stores.sql import Not, where

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore

__all__ = ["TABLES", "Not", "Table", "where", "SEGMENTS", "PREDICTIONS", "DYNAMICS", "MODELS", "FOLDS", "FITS", "RUNS",
           "ATTRIBUTIONS", "ANNOTATIONS", "TASKS", "JUDGMENTS", "RATINGS"]

class Table(str):
    """A table's name, and the columns its reads and deletes may filter on."""

    filters: frozenset[str]

    def __new__(cls, name: str, filters: Iterable[str] = ()) -> Table:
        self = super().__new__(cls, name)
        self.filters = frozenset(filters)
        return self

    def _where(self, filters: dict[str, Any]) -> str | None:
        unknown = sorted(set(filters) - self.filters)
        if unknown:
            raise TypeError(f"the {self} table cannot be filtered on {', '.join(unknown)} "
                            f"(its filters: {', '.join(sorted(self.filters))})")
        return where(**filters)

    def exists(self, store: FeatureStore) -> bool:
        return store.has_table(self)

    def read(self, store: FeatureStore, columns: Iterable[str] | None = None, *, limit: int | None = None,
             **filters: Any) -> pl.DataFrame:
        """The rows matching every filter (all rows without one; at most ``limit``), the given columns or all."""
        return store.read(self, list(columns) if columns is not None else None, where=self._where(filters), limit=limit)

    def n_rows(self, store: FeatureStore, **filters: Any) -> int:
        """How many rows match every filter (0 if the table does not exist); no column but the filters' is read."""
        return store.count(self, self._where(filters))

    def batches(self, store: FeatureStore, columns: Iterable[str] | None = None, *, batch_size: int = 1 << 16,
                **filters: Any) -> Iterator[pl.DataFrame]:
        """The matching rows in batches: memory of one batch (counting 10^6 rows without holding them)."""
        cols = list(columns) if columns is not None else None
        return store.batches(self, cols, self._where(filters), batch_size=batch_size)

    def ranges(self, store: FeatureStore, columns: Iterable[str], *, batch_size: int = 1 << 16) -> Iterator[pl.DataFrame]:
        """Every row in order, by row ranges of ``batch_size`` (no filter): the memory of one batch, however slowly
        they are consumed (``FeatureStore.ranges``)."""
        return store.ranges(self, list(columns), batch_size=batch_size)

    def delete(self, store: FeatureStore, **filters: Any) -> None:
        """Delete the rows matching every filter (one Lance commit); refuses to run without a filter."""
        cond = self._where(filters)
        if cond is None:
            raise TypeError(f"delete from {self} needs at least one filter (store.drop removes a whole table)")
        store.delete(self, cond)


SEGMENTS = Table("segments", ("segment_id", "split"))
PREDICTIONS = Table("predictions", ("model", "split", "scheme", "run_id", "segment_id", "repeat", "fold", "kind"))
DYNAMICS = Table("dynamics", ("model", "segment_id", "run_id"))
MODELS = Table("models", ("model", "scheme", "run_id", "repeat", "fold"))
FOLDS = Table("folds", ("run_id",))
FITS = Table("fits", ("run_id",))
RUNS = Table("runs", ("run_id",))
ATTRIBUTIONS = Table("attributions", ("model", "target", "scheme", "run_id", "split", "segment_id"))
ANNOTATIONS = Table("annotations", ("task", "annotator", "segment_id", "item", "round"))
TASKS = Table("tasks", ("task",))
JUDGMENTS = Table("judgments", ("segment_id", "condition", "source"))
RATINGS = Table("ratings", ("segment_id", "condition", "rater"))

#: Every table the package owns (feature groups are ``features.<group>``: ``stores.schema.table_name``).
TABLES: tuple[Table, ...] = (SEGMENTS, PREDICTIONS, DYNAMICS, MODELS, FOLDS, FITS, RUNS, ATTRIBUTIONS, ANNOTATIONS,
                             TASKS, JUDGMENTS, RATINGS)
