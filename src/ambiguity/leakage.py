"""Leakage report: how many groups (dialog, speaker, video, media file) of each split also occur in another
split, and of each cross-fitting repeat in more than one fold.

A model evaluated on a test segment whose dialog it also saw in training is
flattered: it can recognise the conversation instead of the label. The paper's
published EmpSpeech splits put every test dialog in train as well; this report
says so at ingest and in ``ambiguity status``. The same holds for a media or
audio file shared by several segments (the same face clip, the same speech
clip): ``media`` and ``audio`` are always counted when the segments have them,
beside the group columns, and :func:`fold_leakage` counts them (and the
``--group-by`` column) across the folds of a cross-fitting run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import cast

import polars as pl

from ambiguity.errors import ConfigError

# Columns or metadata keys that name a group when the user names none.
GROUP_KEYS = ("dialog_id", "speaker", "video", "source")
# Files that several segments may share: always counted when present.
MEDIA_KEYS = ("media", "audio")


@dataclass(frozen=True)
class LeakageRow:
    """One (group column, split): ``shared`` of its ``groups`` also occur in ``other_splits``."""

    column: str
    split: str
    groups: int
    shared: int
    other_splits: tuple[str, ...]

    def line(self) -> str:
        if not self.other_splits:
            return f"{self.column}: 0 of {self.groups} {self.split} groups occur in another split"
        where = " or ".join(self.other_splits)
        return f"{self.column}: {self.shared} of {self.groups} {self.split} groups also occur in {where}"


def group_values(segments: pl.DataFrame, column: str) -> pl.Series | None:
    """A column's values, or a metadata key's; None when neither exists."""
    if column in segments.columns and column != "metadata":
        return segments[column].cast(pl.String)
    if "metadata" not in segments.columns:
        return None
    found = False
    out: list[str | None] = []
    for raw in segments["metadata"]:
        meta = json.loads(raw) if raw else {}
        v = meta.get(column)
        found |= column in meta
        out.append(None if v is None else str(v))
    return pl.Series(column, out, dtype=pl.String) if found else None


def _available(segments: pl.DataFrame) -> list[str]:
    keys = {c for c in segments.columns if c != "metadata"}
    if "metadata" in segments.columns:
        for raw in segments["metadata"]:
            if raw:
                keys.update(k for k in json.loads(raw) if not k.startswith("_"))
    return sorted(keys)


def leakage_report(segments: pl.DataFrame, group_columns: list[str] | None = None) -> list[LeakageRow]:
    """Per group column and split, how many of the split's groups also occur in another split.

    ``group_columns`` names segments columns or metadata keys; a name that is
    neither raises ConfigError naming the available ones. Without it, every one
    of ``dialog_id``, ``speaker``, ``video``, ``source`` that the segments carry
    is reported. Either way the ``media`` and ``audio`` files follow when the
    segments have them (none of these: an empty list). Segments without a split or a group value
    are ignored. Rows come in column order, then split order train, val, test,
    then any other split name sorted.
    """
    if "split" not in segments.columns:
        raise ConfigError("the segments have no split column")
    named = list(group_columns) if group_columns is not None else []
    names = list(dict.fromkeys([*(named or GROUP_KEYS), *MEDIA_KEYS]))
    rows: list[LeakageRow] = []
    for col in names:
        values = group_values(segments, col)
        if values is None:
            if col in named:
                raise ConfigError(f"no column or metadata key {col!r} to group by; available: {', '.join(_available(segments)) or '(none)'}")
            continue
        df = pl.DataFrame({"split": segments["split"].cast(pl.String), "group": values}).drop_nulls()
        by_split = {s: set(g) for s, g in df.group_by("split").agg(pl.col("group").unique()).iter_rows()}
        order = {"train": 0, "val": 1, "test": 2}
        for split in sorted(by_split, key=lambda s: (order.get(s, 3), s)):
            mine = by_split[split]
            others = {s: by_split[s] & mine for s in by_split if s != split}
            shared = set().union(*others.values()) if others else set()
            where = tuple(sorted((s for s, inter in others.items() if inter), key=lambda s: (order.get(s, 3), s)))
            rows.append(LeakageRow(col, split, len(mine), len(shared), where))
    return rows


def leakage_lines(rows: list[LeakageRow], *, only_leaking: bool = False) -> list[str]:
    """Human lines, one per row (or only rows with shared groups)."""
    return [r.line() for r in rows if r.shared or not only_leaking]


@dataclass(frozen=True)
class FoldLeakRow:
    """One (column, repeat) of a cross-fitting run: ``shared`` of its ``groups`` values occur in more than one fold."""

    column: str
    repeat: int
    groups: int
    shared: int

    def line(self) -> str:
        return f"{self.column}: {self.shared} of {self.groups} values occur in more than one fold (repeat {self.repeat})"


def fold_leakage(segments: pl.DataFrame, folds: pl.DataFrame, columns: list[str] | None = None) -> list[FoldLeakRow]:
    """Per column (``media``, ``audio`` and ``columns``, those the segments have) and repeat, how many values
    sit in more than one fold: a model then predicts a segment whose file (or group) it was trained on.
    ``folds``: segment_id, repeat, fold (as ``models.crossfit.read_folds`` returns)."""
    out: list[FoldLeakRow] = []
    for col in dict.fromkeys([*MEDIA_KEYS, *(columns or [])]):
        values = group_values(segments, col)
        if values is None:
            continue
        vals = pl.DataFrame({"segment_id": segments["segment_id"], "value": values}).drop_nulls()
        j = folds.select("segment_id", "repeat", "fold").join(vals, on="segment_id", how="inner")
        for (rep,), d in j.group_by(["repeat"], maintain_order=True):
            per = d.group_by("value").agg(pl.col("fold").n_unique().alias("k"))
            out.append(FoldLeakRow(col, int(cast(int, rep)), per.height, int((per["k"] > 1).sum())))
    return sorted(out, key=lambda r: (r.column, r.repeat))
