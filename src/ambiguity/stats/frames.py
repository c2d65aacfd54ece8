"""What the comparisons accept as features and groups: polars or pandas frames, mappings, arrays."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from ambiguity.errors import StatsError

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore

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


def _group_labels(groups: Any, n_rows: int, df: pl.DataFrame | None = None) -> pl.Series:
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
    return series.cast(pl.String)


def codes(values: pl.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes (-1 where missing) of ``values`` as strings, and the sorted distinct strings.

    Built in polars, with no Python object per row; the codes sort as the strings do, so a design
    built on them orders its labels and clusters as one built on the strings.
    """
    s = values.cast(pl.String)
    names = s.drop_nulls().unique().sort().to_list()
    coded = s.cast(pl.Enum(names)).to_physical().cast(pl.Int64).fill_null(-1)
    return coded.to_numpy(), names


# -- feature columns read a few at a time -----------------------------------------------------------
@dataclass(frozen=True)
class Part:
    """One feature table: its segment ids in read order, and ``read(columns)``, a frame of those of its
    own columns in the same row order."""

    ids: pl.Series
    read: Callable[[list[str]], pl.DataFrame]


@dataclass(frozen=True)
class Columns:
    """Feature columns that are read a batch of columns at a time: the shown names, and for each the
    part (feature group) and that part's own column name."""

    names: list[str]
    parts: list[Part]
    where: dict[str, tuple[int, str]]

    @classmethod
    def of_frame(cls, features: pl.DataFrame, names: list[str]) -> Columns:
        if "segment_id" not in features.columns:
            raise StatsError("the features frame has no column segment_id")
        part = Part(features["segment_id"].cast(pl.String), lambda cols: features.select(cols))
        return cls(names, [part], {n: (0, n) for n in names})

    @classmethod
    def of_store(cls, store: FeatureStore, groups: list[str], columns: Sequence[str] | str | None,
                 segment_ids: Sequence[str] | None = None) -> Columns:
        """The ``ok`` rows of feature ``groups`` (only ``segment_ids`` when given). Names are as
        ``store.features(groups)`` shows them: a column two groups share is ``<group>.<column>``."""
        empty = {g: store.features(g, segment_ids=[]) for g in groups}
        own = {g: f.columns for g, f in empty.items()}
        shown = store.features(groups, segment_ids=[]) if len(groups) > 1 else empty[groups[0]]
        names = select_columns(shown, columns)
        where = {}
        for n in names:
            gi = next((i for i, g in enumerate(groups) if n in own[g]), None)
            if gi is None:  # a shared column, shown with its group's prefix
                gi = next(i for i, g in enumerate(groups) if n.startswith(f"{g}.") and n[len(g) + 1:] in own[g])
            where[n] = (gi, n if n in own[groups[gi]] else n[len(groups[gi]) + 1:])
        return cls(names, [_store_part(store, g, segment_ids) for g in groups], where)

    def rows(self, quadrants: pl.DataFrame, keep: Sequence[str]) -> pl.DataFrame:
        """segment_id, quadrant, the ``keep`` columns of ``quadrants`` and ``_pos<i>`` (the row in part i)
        of every segment that every part and ``quadrants`` have, in the first part's order."""
        missing = [c for c in ("segment_id", "quadrant") if c not in quadrants.columns]
        if missing:
            raise StatsError(f"the quadrants frame has no column {', '.join(missing)}")
        if quadrants["segment_id"].is_duplicated().any():
            raise StatsError("the quadrants frame lists a segment_id twice: give one quadrant per segment")
        joined = None
        for i, part in enumerate(self.parts):
            f = pl.DataFrame({"segment_id": part.ids}).with_row_index(f"_pos{i}")
            joined = f if joined is None else joined.join(f, on="segment_id", how="inner")
        assert joined is not None
        q = quadrants.select(pl.col("segment_id").cast(pl.String), *(pl.col(c).cast(pl.String) for c in ("quadrant", *keep)))
        joined = joined.join(q, on="segment_id", how="inner").sort("_pos0")
        if joined.height == 0:
            raise StatsError("no segment has both features and a quadrant: check that both come from the same store and split")
        return joined

    def read(self, names: list[str], positions: list[np.ndarray]) -> np.ndarray:
        """(rows x names) float64, NaN where missing: row r is row ``positions[i][r]`` of part i."""
        out = np.empty((len(positions[0]), len(names)))
        for i, part in enumerate(self.parts):
            mine = [(j, self.where[n][1]) for j, n in enumerate(names) if self.where[n][0] == i]
            if mine:
                frame = part.read([c for _, c in mine])
                x = frame.select(pl.col(c).cast(pl.Float64) for _, c in mine).to_numpy()
                out[:, [j for j, _ in mine]] = x[positions[i]]
        return out


def _store_part(store: FeatureStore, group: str, segment_ids: Sequence[str] | None) -> Part:
    ids = store.features(group, columns=[], segment_ids=segment_ids)["segment_id"].cast(pl.String)

    def read(cols: list[str]) -> pl.DataFrame:
        frame = store.features(group, columns=cols, segment_ids=segment_ids)
        if not frame["segment_id"].cast(pl.String).equals(ids):  # rows are taken by position
            raise StatsError(f"feature group {group!r} changed while it was being read: run the comparison again")
        return frame

    return Part(ids, read)
