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


def segment_words(store: FeatureStore, segment_id: str, group: str = "align", prosody: str = "word_prosody") -> dict:
    """One segment's words with times and, where ``prosody`` holds them, per-word pitch and
    intensity (for the explorer); ``reason`` says why there are none."""
    if not store.has_group(group):
        return {"words": [], "reason": f"no {group!r} group: run `ambiguity extract --extractor align`"}
    st = store.features(group, columns=["segment_id", "status", "error"], segment_ids=[segment_id], status=None)
    if st.is_empty():
        return {"words": [], "reason": "not aligned yet"}
    if st["status"][0] != "ok":
        return {"words": [], "reason": f"{st['status'][0]}: {st['error'][0]}"}
    rows = words(store, group, segment_ids=[segment_id]).drop("segment_id", "phones").to_dicts()
    if store.has_group(prosody):
        p = store.features(prosody, columns=["segment_id", "word_pitch", "word_intensity"], segment_ids=[segment_id])
        pitch = p["word_pitch"].to_list()[0] if not p.is_empty() else None
        loud = p["word_intensity"].to_list()[0] if not p.is_empty() else None
        if pitch is not None and loud is not None and len(pitch) == len(rows) == len(loud):
            for r, f0, db in zip(rows, pitch, loud, strict=True):
                r["pitch"], r["intensity"] = _finite(f0), _finite(db)
    return {"words": rows, "reason": None}


def _finite(v: float | None) -> float | None:
    """JSON has no NaN: an unvoiced word's pitch is null."""
    return None if v is None or v != v else float(v)
