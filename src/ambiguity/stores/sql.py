"""The SQL filters Lance takes (``where=``): quoting, and :func:`where` from typed conditions (``stores.tables``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


def quote(value: str) -> str:
    """``value`` as an SQL string literal: single quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def quote_list(values: Iterable[str]) -> str:
    """``('a', 'b', ...)`` for an ``IN`` filter."""
    return "(" + ", ".join(quote(v) for v in values) + ")"


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
