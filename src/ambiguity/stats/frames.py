"""What the comparisons accept as features and groups: polars or pandas frames, mappings, arrays."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from ambiguity.errors import StatsError

RESERVED_COLUMNS = frozenset(
    {"segment_id", "status", "error", "label", "split", "quadrant", "p_unimodal", "p_fusion", "key", "model"}
)


def _as_frame(features: Any) -> pl.DataFrame:
    if isinstance(features, pl.DataFrame):
        return features
    if isinstance(features, np.ndarray):
        if features.ndim != 2:
            raise StatsError(f"features must be a 2-D array (rows x features), got shape {features.shape}")
        return pl.DataFrame({f"x{i}": features[:, i] for i in range(features.shape[1])})
    if isinstance(features, Mapping):
        return pl.DataFrame(dict(features))
    if type(features).__module__.startswith("pandas"):
        return pl.from_pandas(features)
    raise StatsError(f"features must be a polars or pandas DataFrame, a mapping or a 2-D array, not {type(features).__name__}")


def _is_numeric(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() or dtype == pl.Boolean


def select_columns(df: pl.DataFrame, columns: Sequence[str] | str | None = None, exclude: Sequence[str] = ()) -> list[str]:
    """Feature columns to compare.

    ``None``: every numeric column except identifiers (segment_id, label, quadrant, ...);
    a string: a regular expression searched in the column names (e.g. ``r"^AU\\d+_rate$"``,
    ``"_rate$"``); a sequence: exactly these columns.
    """
    skip = RESERVED_COLUMNS | set(exclude)
    if columns is None:
        names = [c for c, t in df.schema.items() if c not in skip and _is_numeric(t)]
        if not names:
            raise StatsError(f"no numeric feature column to compare among {', '.join(df.columns) or 'no columns'}")
        return names
    if isinstance(columns, str):
        try:
            rx = re.compile(columns)
        except re.error as exc:
            raise StatsError(f"invalid column pattern {columns!r}: {exc}") from None
        names = [c for c, t in df.schema.items() if c not in skip and _is_numeric(t) and rx.search(c)]
        if not names:
            raise StatsError(f"no numeric column matches {columns!r}; columns are: {', '.join(df.columns)}")
        return names
    names = list(columns)
    if not names:
        raise StatsError("columns is empty: name at least one feature column")
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise StatsError(f"no column {', '.join(missing)}; columns are: {', '.join(df.columns)}")
    bad = [c for c in names if not _is_numeric(df.schema[c])]
    if bad:
        raise StatsError(f"column(s) {', '.join(bad)} are not numeric: name numeric feature columns")
    if len(set(names)) != len(names):
        raise StatsError("columns names a feature twice")
    return names


def _group_labels(groups: Any, n_rows: int, df: pl.DataFrame | None = None) -> np.ndarray:
    if isinstance(groups, str):
        if df is None:
            raise StatsError("with an array of features, groups must be one label per row, not a column name")
        if groups not in df.columns:
            raise StatsError(f"no group column {groups!r}; columns are: {', '.join(df.columns)}")
        series = df[groups]
    else:
        try:
            series = pl.Series("group", groups if isinstance(groups, (pl.Series, np.ndarray)) else list(groups))
        except (TypeError, ValueError) as exc:
            raise StatsError(f"groups must be a column name or a sequence of labels: {exc}") from None
        if series.len() != n_rows:
            raise StatsError(f"groups has {series.len()} labels for {n_rows} rows: give one label per row")
    return series.cast(pl.String).to_numpy()
