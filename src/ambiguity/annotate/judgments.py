"""Human judgments in the shapes they come in: long tables, vote-count tables, and the CREMA-D layout.

A *long* table has one row per vote: ``item, rater, condition, label`` (and
optionally ``confidence`` and ``gold``). A *counts* table has one row per item
and condition: ``item, condition``, one count column per class (``--classes``
names them; any other column is refused) and optionally ``gold`` and ``n`` or
``numResponses`` (checked against the counts). Each condition maps to what the
raters saw (``audio``, ``video`` or ``all``); a condition with no mapping is
refused. The CREMA-D preset reads ``tabulatedVotes.csv`` as it ships: the
condition is the leading digit of the row id (1 voice, 2 face, 3 audio-visual),
gold, actor, sentence and intensity come from the file name
(``ActorID_Sentence_Emotion_Level``), demographics are joined by actor.

Saving writes three things: label-only segments (no media) for items that are
not yet segments; the ``judgments`` table (counts per item and condition) and,
for long tables, the ``ratings`` table (one row per vote); and the humans as
predictors ``human:<modality>`` in the predictions table under the ``human``
scheme, with the vote shares as probabilities and the plurality as the
prediction (null on a tie).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow as pa

from ambiguity.constants import MODALITIES, Scheme
from ambiguity.errors import ManifestError, MissingGroupError, StoreError
from ambiguity.models.predictions import PREDICTIONS, PREDICTIONS_SCHEMA, migrate_predictions, prediction_table
from ambiguity.segments import read_table
from ambiguity.stats.crowd import soft_labels
from ambiguity.stores import schema as S
from ambiguity.stores.tables import JUDGMENTS, RATINGS, SEGMENTS

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore

#: What a condition can show: one modality, or everything (the audio-visual condition).
TARGETS = ("audio", "video", "text", "all")
#: The CREMA-D layout: conditions by the row id's leading digit, the emotion codes of the file names.
CREMA_CONDITIONS = {"1": "voice", "2": "face", "3": "audio-visual"}
CREMA_MAP = {"voice": "audio", "face": "video", "audio-visual": "all"}
CREMA_EMOTIONS = {"ANG": "A", "DIS": "D", "FEA": "F", "HAP": "H", "NEU": "N", "SAD": "S"}
CREMA_CLASSES = ("A", "D", "F", "H", "N", "S")
_CREMA_KNOWN = {"", "fileName", "numResponses", "agreement", "emoVote"}  # plus the mean*/median* intensity columns
PRESETS = ("crema-d",)

JUDGMENTS_SCHEMA = S.table_schema(
    ["key", "segment_id", "condition", "modality", "gold", "classes", "counts", "n", "source", "created_at"],
    {"counts": pa.list_(pa.int64()), "n": pa.int64()},
)
RATINGS_SCHEMA = S.table_schema(
    ["key", "segment_id", "condition", "modality", "rater", "label", "confidence", "source", "created_at"],
    {"confidence": pa.float64()},
)


@dataclass(frozen=True)
class Judgments:
    """Votes per item and condition (``votes``: item, condition, modality, gold, counts), the classes in count
    order, per-item metadata (``meta``: item plus columns), and the votes one by one when rater ids exist."""

    votes: pl.DataFrame
    classes: tuple[str, ...]
    meta: pl.DataFrame
    ratings: pl.DataFrame | None
    source: str

    def summary(self) -> str:
        conds = self.votes.group_by("condition", "modality", maintain_order=True).agg(pl.len().alias("n"))
        parts = ", ".join(f"{r['condition']} -> {r['modality']} ({r['n']} items)" for r in conds.iter_rows(named=True))
        raters = f", {self.ratings['rater'].n_unique()} raters" if self.ratings is not None else ""
        return (f"{self.votes['item'].n_unique()} items, {int(np.asarray(self.votes['counts'].to_list()).sum())} votes"
                f"{raters}; classes {', '.join(self.classes)}; {parts}")


def _fail(src: str, problems: list[str], param: str | tuple[str, ...] | None = None) -> ManifestError:
    """One line: the first problem, and how many more there are."""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return ManifestError(src, [problems[0] + more], param=param)


def parse_condition_map(pairs: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    """``["voice=audio", "face=video"]`` (or a mapping) as a dict, each target checked."""
    out = dict(pairs) if isinstance(pairs, Mapping) else {}
    for p in [] if isinstance(pairs, Mapping) else list(pairs or []):
        if "=" not in p:
            raise ManifestError("conditions", [f"{p!r}: use CONDITION=MODALITY (e.g. voice=audio)"], param="conditions")
        k, v = p.split("=", 1)
        out[k.strip()] = v.strip()
    bad = {k: v for k, v in out.items() if v not in TARGETS}
    if bad:
        k, v = next(iter(bad.items()))
        raise ManifestError("conditions", [f"{k}={v}: a condition shows one of {', '.join(TARGETS)}"], param="conditions")
    return out


def _modalities(conditions: Sequence[str], mapping: Mapping[str, str], src: str) -> list[str]:
    lacking = sorted({c for c in conditions if c not in mapping and c not in TARGETS})
    if lacking:
        raise _fail(src, [f"condition {c!r} has no mapping; pass conditions {c}=audio|video|all" for c in lacking],
                    param="conditions")
    return [mapping.get(c, c) for c in conditions]


def _ints(df: pl.DataFrame, cols: Sequence[str], src: str) -> np.ndarray:
    """Count columns as integers >= 0; the first bad cell is named by its row (the header is row 1)."""
    out = np.zeros((df.height, len(cols)), dtype=np.int64)
    problems = []
    for j, c in enumerate(cols):
        raw = df[c].cast(pl.String).str.strip_chars().to_list()
        vals = df[c].cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False).to_list()
        for i, (r, v) in enumerate(zip(raw, vals, strict=True)):
            if v is None or not np.isfinite(v) or v != int(v) or v < 0:
                problems.append(f"row {i + 2}: count {c}={r!r} is not a non-negative integer")
            else:
                out[i, j] = int(v)
    if problems:
        raise _fail(src, problems)
    return out


def _check_n(df: pl.DataFrame, counts: np.ndarray, src: str) -> None:
    col = next((c for c in ("numResponses", "n") if c in df.columns), None)
    if col is None:
        return
    n = _ints(df, [col], src)[:, 0]
    bad = np.flatnonzero(counts.sum(axis=1) != n)
    if bad.size:
        raise _fail(src, [f"row {i + 2}: counts add to {int(counts[i].sum())}, {col} says {int(n[i])}" for i in bad])


def _check_gold(votes: pl.DataFrame, classes: Sequence[str], src: str) -> None:
    missing = votes.filter(pl.col("gold").is_null() | (pl.col("gold") == ""))["item"].unique(maintain_order=True).to_list()
    if missing:
        raise _fail(src, [f"item {i!r} has no gold label (a gold column, or a labelled segment in the store)" for i in missing])
    unknown = sorted(set(votes["gold"].to_list()) - set(classes))
    if unknown:
        raise _fail(src, [f"gold label {g!r} is not a class ({', '.join(classes)})" for g in unknown])


def _votes(items, conditions, modalities, gold, counts: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame({"item": list(items), "condition": list(conditions), "modality": list(modalities),
                         "gold": list(gold), "counts": counts.tolist()},
                        schema={"item": pl.String, "condition": pl.String, "modality": pl.String, "gold": pl.String,
                                "counts": pl.List(pl.Int64)})


def _duplicates(votes: pl.DataFrame, src: str) -> None:
    dup = votes.filter(pl.struct("item", "condition").is_duplicated())
    if dup.height:
        raise _fail(src, [f"item {r['item']!r} appears twice in condition {r['condition']!r}" for r in dup.iter_rows(named=True)])
    dup = votes.filter(pl.struct("item", "modality").is_duplicated())
    if dup.height:
        raise _fail(src, [f"item {dup['item'][0]!r}: two conditions map to {dup['modality'][0]!r}; map them one to one"])


def read_counts(path: str | Path, *, classes: Sequence[str] | None = None, conditions: Mapping[str, str] | None = None,
                gold: Mapping[str, str] | None = None) -> Judgments:
    """A vote-count table (item, condition, one column per class[, gold][, n | numResponses]).

    ``classes``: the count columns (default: every other column); ``gold``: labels of items whose table row has
    none (the store's, when saving into one).
    """
    src = str(path)
    df = read_table(Path(path))
    for req in ("item", "condition"):
        if req not in df.columns:
            raise _fail(src, [f"missing column {req!r} (a counts table has item, condition and one column per class)"])
    known = {"item", "condition", "gold", "n", "numResponses"}
    cls = [str(c) for c in classes] if classes else [c for c in df.columns if c not in known]
    absent = [c for c in cls if c not in df.columns]
    if absent:
        raise _fail(src, [f"class {c!r} has no count column" for c in absent])
    unknown = [c for c in df.columns if c not in known and c not in cls]
    if unknown:
        raise _fail(src, [f"unknown class column {c!r}: not among the classes {', '.join(cls)}" for c in unknown])
    if len(cls) < 2:
        raise _fail(src, [f"need at least two class columns; found {cls or 'none'}"])
    counts = _ints(df, cls, src)
    _check_n(df, counts, src)
    items = df["item"].cast(pl.String).to_list()
    conds = df["condition"].cast(pl.String).to_list()
    g = df["gold"].cast(pl.String).to_list() if "gold" in df.columns else [None] * df.height
    g = [x if x else (gold or {}).get(i) for x, i in zip(g, items, strict=True)]
    votes = _votes(items, conds, _modalities(conds, conditions or {}, src), g, counts)
    _duplicates(votes, src)
    _check_gold(votes, cls, src)
    return Judgments(votes, tuple(cls), pl.DataFrame({"item": votes["item"].unique(maintain_order=True)}), None, src)


def read_long(path: str | Path, *, classes: Sequence[str] | None = None, conditions: Mapping[str, str] | None = None,
              gold: Mapping[str, str] | None = None) -> Judgments:
    """A long table (item, rater, condition, label[, confidence][, gold]): one row per vote, counted per item and
    condition. A rater who labels one item twice in one condition is refused."""
    src = str(path)
    df = read_table(Path(path))
    lacking = [c for c in ("item", "rater", "condition", "label") if c not in df.columns]
    if lacking:
        raise _fail(src, [f"missing column {c!r} (a long table has item, rater, condition, label)" for c in lacking])
    df = df.with_columns(pl.col(c).cast(pl.String).str.strip_chars() for c in ("item", "rater", "condition", "label"))
    empty = [f"row {i + 2}: empty {c}" for c in ("item", "rater", "condition", "label")
             for i in np.flatnonzero(df[c].is_null().to_numpy() | (df[c] == "").fill_null(True).to_numpy())]
    if empty:
        raise _fail(src, empty)
    twice = df.with_row_index("row").filter(pl.struct("item", "rater", "condition").is_duplicated())
    if twice.height:
        raise _fail(src, [f"row {r['row'] + 2}: rater {r['rater']!r} labels item {r['item']!r} more than once in condition "
                          f"{r['condition']!r}" for r in twice.iter_rows(named=True)])
    cls = [str(c) for c in classes] if classes else sorted(df["label"].unique().to_list())
    bad = sorted(set(df["label"].to_list()) - set(cls))
    if bad:
        raise _fail(src, [f"label {b!r} is not a class ({', '.join(cls)})" for b in bad])
    conf = df["confidence"].cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False) if "confidence" in df.columns \
        else pl.Series([None] * df.height, dtype=pl.Float64)
    df = df.with_columns(conf.alias("confidence"))
    mods = dict(zip(df["condition"].unique().to_list(),
                    _modalities(df["condition"].unique().to_list(), conditions or {}, src), strict=True))
    df = df.with_columns(pl.col("condition").replace_strict(mods).alias("modality"))
    golds = dict(gold or {})
    if "gold" in df.columns:
        per = df.filter(pl.col("gold").is_not_null() & (pl.col("gold") != "")).group_by("item").agg(pl.col("gold").unique())
        clash = per.filter(pl.col("gold").list.len() > 1)
        if clash.height:
            raise _fail(src, [f"item {i!r} has two gold labels" for i in clash["item"].to_list()])
        golds |= {r["item"]: r["gold"][0] for r in per.iter_rows(named=True)}
    index = {c: j for j, c in enumerate(cls)}
    grouped = df.group_by("item", "condition", "modality", maintain_order=True).agg(pl.col("label"))
    counts = np.zeros((grouped.height, len(cls)), dtype=np.int64)
    for i, labels in enumerate(grouped["label"].to_list()):
        np.add.at(counts[i], [index[x] for x in labels], 1)
    items = grouped["item"].to_list()
    votes = _votes(items, grouped["condition"], grouped["modality"], [golds.get(i) for i in items], counts)
    _duplicates(votes, src)
    _check_gold(votes, cls, src)
    ratings = df.select("item", "condition", "modality", "rater", "label", "confidence")
    return Judgments(votes, tuple(cls), pl.DataFrame({"item": votes["item"].unique(maintain_order=True)}), ratings, src)


def read_crema_d(path: str | Path, demographics: str | Path | None = None,
                 conditions: Mapping[str, str] | None = None) -> Judgments:
    """CREMA-D's ``tabulatedVotes.csv`` (and ``VideoDemographics.csv``; default: beside it, if there)."""
    src = str(path)
    df = read_table(Path(path))
    lacking = [c for c in ("", "fileName", "numResponses", *CREMA_CLASSES) if c not in df.columns]
    if lacking:
        raise _fail(src, [f"missing column {c!r} of the CREMA-D layout" for c in lacking])
    extra = [c for c in df.columns if c not in _CREMA_KNOWN and c not in CREMA_CLASSES
             and not c.startswith(("mean", "median"))]
    if extra:
        raise _fail(src, [f"unknown class column {c!r}: CREMA-D's classes are {', '.join(CREMA_CLASSES)}" for c in extra])
    counts = _ints(df, CREMA_CLASSES, src)
    _check_n(df, counts, src)
    ids = df[""].cast(pl.String).str.strip_chars().to_list()
    unknown = [f"row {i + 2}: row id {r!r} does not start with 1, 2 or 3 (the condition)" for i, r in enumerate(ids)
               if not r or r[0] not in CREMA_CONDITIONS]
    if unknown:
        raise _fail(src, unknown)
    conds = [CREMA_CONDITIONS[r[0]] for r in ids]
    names = df["fileName"].cast(pl.String).to_list()
    parts = [str(n).split("_") for n in names]
    badname = [f"row {i + 2}: file name {n!r} is not ActorID_Sentence_Emotion_Level" for i, (n, p) in
               enumerate(zip(names, parts, strict=True)) if len(p) != 4]
    if badname:
        raise _fail(src, badname)
    golds = [CREMA_EMOTIONS.get(p[2]) for p in parts]
    mapping = {**CREMA_MAP, **(conditions or {})}
    votes = _votes(names, conds, _modalities(conds, mapping, src), golds, counts)
    _duplicates(votes, src)
    _check_gold(votes, CREMA_CLASSES, src)
    meta = pl.DataFrame({"item": names, "actor": [p[0] for p in parts], "sentence": [p[1] for p in parts],
                         "intensity": [p[3] for p in parts]}).unique("item", maintain_order=True)
    demo = Path(demographics) if demographics else Path(path).with_name("VideoDemographics.csv")
    if demographics or demo.exists():
        d = read_table(demo)
        if "ActorID" not in d.columns:
            raise _fail(str(demo), ["missing column 'ActorID'"])
        d = d.rename({c: c.lower() for c in d.columns if c != "ActorID"}).rename({"ActorID": "actor"})
        meta = meta.join(d.with_columns(pl.col("actor").cast(pl.String)), on="actor", how="left")
        if "age" in meta.columns:
            meta = meta.with_columns(pl.col("age").cast(pl.Int64, strict=False))
    return Judgments(votes, CREMA_CLASSES, meta, None, src)


def read_judgments_file(path: str | Path, *, layout: str, preset: str | None = None, classes: Sequence[str] | None = None,
                        conditions: Sequence[str] | Mapping[str, str] | None = None, demographics: str | Path | None = None,
                        gold: Mapping[str, str] | None = None) -> Judgments:
    """Dispatch on ``preset`` (``crema-d``) or ``layout`` (``long`` | ``counts``)."""
    mapping = parse_condition_map(conditions)
    if preset == "crema-d":
        return read_crema_d(path, demographics, mapping)
    if preset:
        raise ManifestError(str(path), [f"unknown preset {preset!r}: use one of {', '.join(PRESETS)}"])
    if layout == "long":
        return read_long(path, classes=classes, conditions=mapping, gold=gold)
    if layout == "counts":
        return read_counts(path, classes=classes, conditions=mapping, gold=gold)
    raise ManifestError(str(path), [f"unknown layout {layout!r}: use long or counts"])


# -- the store ------------------------------------------------------------------------------------
def store_gold(store: FeatureStore) -> dict[str, str]:
    """Labels of the store's segments (gold for judgments whose table has none)."""
    if not SEGMENTS.exists(store):
        return {}
    segs = store.segments(["segment_id", "label"]).drop_nulls("label")
    return dict(zip(segs["segment_id"].to_list(), segs["label"].to_list(), strict=True))


def human_model(modality: str) -> str:
    """The predictor of the people who saw ``modality`` (``all``: the audio-visual condition)."""
    return f"human:{modality}"


def modalities_shown(modality: str) -> list[str]:
    """What a condition showed, as the predictions table's ``modalities`` (``all``: every modality)."""
    return list(MODALITIES) if modality == "all" else [modality]


def save_judgments(store: FeatureStore, j: Judgments) -> dict[str, int]:
    """Write the judgments into the store: new label-only segments, the judgments (and ratings) tables, and one
    predictor ``human:<modality>`` per condition under the ``human`` scheme. Refuses an item whose segment has
    another label than its gold. Returns rows written per table."""

    now = S.now()
    gold = j.votes.unique("item", maintain_order=True).select("item", "gold")
    segs = store.segments(["segment_id", "label", "split", "metadata"]) if SEGMENTS.exists(store) else None
    have = {} if segs is None else {r["segment_id"]: r for r in segs.iter_rows(named=True)}
    clash = [(r["item"], r["gold"], have[r["item"]]["label"]) for r in gold.iter_rows(named=True)
             if r["item"] in have and have[r["item"]]["label"] not in (None, r["gold"])]
    if clash:
        raise _fail(j.source, [f"item {i!r}: gold {g!r} but its segment is labelled {lab!r}" for i, g, lab in clash])
    meta = {r["item"]: {k: v for k, v in r.items() if k != "item" and v is not None} for r in j.meta.iter_rows(named=True)}
    known = [i for i in gold["item"].to_list() if i in have]
    old_rows = {} if not known else {r["segment_id"]: r for r in store.segments().filter(
        pl.col("segment_id").is_in(known)).iter_rows(named=True)}
    rows = []
    for r in gold.iter_rows(named=True):  # a known segment keeps its media, split and metadata; a new one has none
        old = old_rows.get(r["item"]) or {"segment_id": r["item"], "media": None, "audio": None, "start_s": None,
                                            "end_s": None, "transcript": None, "split": None, "metadata": None}
        extra = json.loads(old["metadata"]) if old["metadata"] else {}
        rows.append({**old, "label": r["gold"],
                     "metadata": json.dumps({**extra, **meta.get(r["item"], {})}, sort_keys=True, default=str)})
    store.upsert_segments(pa.Table.from_pylist(rows, schema=S.SEGMENTS_SCHEMA))
    v = j.votes
    store.upsert(JUDGMENTS, pa.Table.from_pydict({
        "key": [f"{i}|{c}" for i, c in zip(v["item"], v["condition"], strict=True)],
        "segment_id": v["item"].to_list(), "condition": v["condition"].to_list(), "modality": v["modality"].to_list(),
        "gold": v["gold"].to_list(), "classes": [list(j.classes)] * v.height, "counts": v["counts"].to_list(),
        "n": np.asarray(v["counts"].to_list()).sum(axis=1).tolist(), "source": [j.source] * v.height,
        "created_at": [now] * v.height}, schema=JUDGMENTS_SCHEMA), key="key", schema=JUDGMENTS_SCHEMA)
    written: dict[str, int] = {SEGMENTS: len(rows), JUDGMENTS: v.height}
    if j.ratings is not None:
        rt = j.ratings
        store.upsert(RATINGS, pa.Table.from_pydict({
            "key": [f"{a}|{b}|{c}" for a, b, c in zip(rt["item"], rt["condition"], rt["rater"], strict=True)],
            "segment_id": rt["item"].to_list(), "condition": rt["condition"].to_list(), "modality": rt["modality"].to_list(),
            "rater": rt["rater"].to_list(), "label": rt["label"].to_list(), "confidence": rt["confidence"].to_list(),
            "source": [j.source] * rt.height, "created_at": [now] * rt.height}, schema=RATINGS_SCHEMA),
            key="key", schema=RATINGS_SCHEMA)
        written[RATINGS] = rt.height
    soft = soft_labels(v, j.classes)
    split: dict[str, str | None] = {x["segment_id"]: x["split"] for x in rows}
    migrate_predictions(store)
    for m in soft["modality"].unique(maintain_order=True).to_list():
        g = soft.filter(pl.col("modality") == m)
        model = human_model(m)
        t = prediction_table(
            model=model, kind="human", arch="human", modalities=modalities_shown(m), groups=[],
            segment_ids=g["item"].to_list(), splits=[split.get(i) for i in g["item"].to_list()],  # type: ignore[misc]
            labels=g["gold"].to_list(), classes=j.classes, probs=np.asarray(g["dist"].to_list()),
            config={"source": j.source, "condition": g["condition"][0]}, scheme=Scheme.HUMAN)
        t = t.set_column(t.schema.get_field_index("predicted"), "predicted",
                         pa.array([None if tie else p for p, tie in zip(g["plurality"], g["tie"], strict=True)], pa.string()))
        store.upsert(PREDICTIONS, t, key="key", schema=PREDICTIONS_SCHEMA)
        written[model] = g.height
    return written


def read_judgments(store: FeatureStore) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """The store's judgments as a votes frame (item, condition, modality, gold, counts, and each segment's metadata
    keys as columns) and the classes."""
    if not store.has_table(JUDGMENTS):
        raise MissingGroupError(f"the store at {store.uri} has no human judgments: run `ambiguity annotations import "
                                "FILE --layout counts|long` or `ambiguity annotations import FILE --preset crema-d` first")
    df = store.read(JUDGMENTS)
    classes = {tuple(c) for c in df["classes"].to_list()}
    if len(classes) != 1:
        raise StoreError(f"the judgments hold {len(classes)} different class lists: import one set of classes per store")
    votes = df.select(pl.col("segment_id").alias("item"), "condition", "modality", "gold", "counts").sort("item", "condition")
    segs = store.segments(["segment_id", "metadata"]).filter(pl.col("segment_id").is_in(votes["item"].unique().to_list()))
    meta = pl.DataFrame([{"item": r["segment_id"], **(json.loads(r["metadata"]) if r["metadata"] else {})}
                         for r in segs.iter_rows(named=True)], infer_schema_length=None)
    keep = [c for c in meta.columns if c not in votes.columns or c == "item"]
    return votes.join(meta.select(keep), on="item", how="left"), next(iter(classes))


def read_ratings(store: FeatureStore) -> pl.DataFrame:
    """The votes one by one (item, condition, modality, rater, label, confidence); empty without rater ids."""
    if not store.has_table(RATINGS):
        return pl.DataFrame(schema={"item": pl.String, "condition": pl.String, "modality": pl.String,
                                    "rater": pl.String, "label": pl.String, "confidence": pl.Float64})
    return store.read(RATINGS).select(pl.col("segment_id").alias("item"), "condition", "modality", "rater", "label",
                                      "confidence")
