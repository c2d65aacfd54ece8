"""Quoting for the SQL filters Lance takes (``where=``)."""

from __future__ import annotations

from collections.abc import Iterable


def quote(value: str) -> str:
    """``value`` as an SQL string literal: single quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def quote_list(values: Iterable[str]) -> str:
    """``('a', 'b', ...)`` for an ``IN`` filter."""
    return "(" + ", ".join(quote(v) for v in values) + ")"
