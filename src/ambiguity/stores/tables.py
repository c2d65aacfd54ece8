"""Every table of the store by name, with typed reads and deletes: a filter is a keyword argument, never a
query string built by the caller.

A :class:`Table` is its name (a ``str``, so ``store.upsert(PREDICTIONS, ...)`` works as before) plus the
columns it may be filtered on. A filter value is

- a string, number or bool: the column equals it;
- a list, tuple or set: the column is one of them (an empty one matches no row);
- ``Not(value)``: the negation of either (``Not([])`` matches every row);
- ``None``: no filter on that column (so an optional argument passes straight through).

A column a table does not list is a ``TypeError``, like a misspelt keyword. The filter string Lance takes is
built here only, with every string quoted (``stores.sql``), so a task or model name with an apostrophe is
just a name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from ambiguity.stores.sql import quote, quote_list

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore

Scalar = str | int | bool


@dataclass(frozen=True)
class Not:
    """The column is not ``value`` (or none of the values)."""

    value: Any


def _literal(v: Scalar) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, str):
        return quote(v)
    raise TypeError(f"a filter value must be a string, an integer or a bool, not {type(v).__name__}")


def _condition(column: str, value: Any) -> str | None:
    negate = isinstance(value, Not)
    v = value.value if negate else value
    if v is None:
        return None
    if isinstance(v, str | int | bool):
        return f"{column} {'!=' if negate else '='} {_literal(v)}"
    if isinstance(v, Iterable):
        values = list(v)
        if not values:
            return None if negate else "false"
        if all(isinstance(x, str) for x in values):
            listed = quote_list(values)
        else:
            listed = "(" + ", ".join(_literal(x) for x in values) + ")"
        return f"{column} {'NOT IN' if negate else 'IN'} {listed}"
    raise TypeError(f"filter {column}: use a value, a list of values or Not(...), not {type(v).__name__}")


def where(**filters: Any) -> str | None:
    """The Lance filter for ``column=value`` conditions joined by AND; None when none applies."""
    parts = [c for c in (_condition(k, v) for k, v in filters.items()) if c is not None]
    return " AND ".join(parts) if parts else None


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

    def read(self, store: FeatureStore, columns: Iterable[str] | None = None, **filters: Any) -> pl.DataFrame:
        """The rows matching every filter (all rows without one), the given columns or all."""
        return store.read(self, list(columns) if columns is not None else None, where=self._where(filters))

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
