"""The words table: one row per aligned word, read from an alignment feature group.

The ``align`` extractor stores one row per segment with its words as lists (the store keeps
one row per segment in every group); :func:`words` turns that into one row per word:
segment_id, word_index, word, start, end, confidence, phones. Times are seconds from the
segment's start; add the segment's ``start_s`` for times in the source file.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from ambiguity.stores.lance import FeatureStore

#: The list columns of an alignment group, and the words-table column each becomes.
LISTS = {"words": "word", "word_start": "start", "word_end": "end", "word_confidence": "confidence", "word_phones": "phones"}
SCHEMA = {
    "segment_id": pl.String, "word_index": pl.Int32, "word": pl.String, "start": pl.Float64,
    "end": pl.Float64, "confidence": pl.Float64, "phones": pl.String,
}


def words(store: FeatureStore, group: str = "align", segment_ids: Sequence[str] | None = None) -> pl.DataFrame:
    """One row per word of the group's ``ok`` segments, in segment and word order."""
    frame = store.features(group, columns=["segment_id", *LISTS], segment_ids=segment_ids)
    if frame.is_empty():
        return pl.DataFrame(schema=SCHEMA)
    out = (
        frame.with_columns(pl.int_ranges(0, pl.col("words").list.len(), dtype=pl.Int32).alias("word_index"))
        .explode(["words", "word_start", "word_end", "word_confidence", "word_phones", "word_index"])
        .rename(LISTS)
    )
    return out.select(list(SCHEMA)).cast(SCHEMA).sort(["segment_id", "word_index"])  # type: ignore[arg-type]


def word_status(store: FeatureStore, group: str = "align") -> pl.DataFrame:
    """segment_id, status, error of every segment the group holds: why a segment has no words."""
    return store.group_status(group)
