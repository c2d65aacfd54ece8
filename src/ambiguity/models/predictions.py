"""The ``predictions`` and ``dynamics`` tables: schema, writing, reading, importing.

One row per (model, segment) of the fixed split, or per (model, repeat,
segment) of a cross-fitted run: its split and label, the class probabilities,
the predicted label, ``p_correct`` (the probability of the true label), the
fusion attention per input (0 for an absent one), ``inputs`` (the feature groups
the prediction saw: a fusion model sees only the groups a segment has), and the
training configuration. ``scheme`` is
``fixed`` (one train/val/test split; ``fold`` and ``repeat`` are null) or
``crossfit`` (every segment predicted out of fold; see
:mod:`ambiguity.models.crossfit`). Fixed rows are keyed
``f"{model}|{segment_id}"``, cross-fitted ones
``f"{model}|crossfit|{repeat}|{segment_id}"``; rewriting a model on the fixed
scheme replaces all of its fixed rows (the rows of an earlier run that the new
one does not cover are deleted) and leaves its cross-fitted rows alone. A
store written before ``scheme`` existed is migrated on the next write (every
old row is ``fixed``) and read as such meanwhile.

``dynamics`` holds the training dynamics of dataset cartography (Swayamdipta
et al. 2020) per model and training segment: ``p_correct`` after each epoch,
their mean (confidence), standard deviation (variability) and the share of
epochs in which the prediction was right (correctness).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import polars as pl
import pyarrow as pa

from ambiguity.constants import Scheme
from ambiguity.errors import ManifestError, MissingGroupError, StoreError
from ambiguity.segments import read_table
from ambiguity.stores import schema as S
from ambiguity.stores.tables import DYNAMICS, PREDICTIONS, Not, Table

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore

#: |sum(probs) - 1| above this is refused on import.
SUM_TOLERANCE = 1e-3
_MAX_PROBLEMS = 50

PREDICTIONS_SCHEMA = S.table_schema(
    # kind: probe | fusion | finetuned | imported; arch: logistic | mlp | fusion | whatever an import says;
    # config: JSON, the training configuration, seed included; scheme: fixed | crossfit
    ["key", "model", "kind", "arch", "modalities", "groups", "segment_id", "split", "label", "classes", "probs",
     "predicted", "p_correct", "attention", "config", "seed", "run_id", "created_at", "scheme", "fold", "repeat",
     "inputs"],
    {
        "probs": pa.list_(pa.float32()),
        "p_correct": pa.float64(),
        "attention": pa.list_(pa.float32()),  # one weight per input group (fusion only; 0 for an absent one)
        "inputs": pa.list_(pa.string()),  # the groups this prediction saw (null: imported, unknown)
    },
)
#: Human judgments as predictors (``human:audio`` ...; ambiguity.annotate.judgments): their own scheme, never mixed
#: with the model schemes (keys ``f"{model}|human|{segment_id}"``, fold and repeat null).
HUMAN = Scheme.HUMAN

DYNAMICS_SCHEMA = S.table_schema(
    ["key", "model", "segment_id", "split", "label", "p_correct_epochs", "confidence", "variability", "correctness",
     "epochs", "run_id"],
    {"p_correct_epochs": pa.list_(pa.float32()), "confidence": pa.float64(), "variability": pa.float64(),
     "correctness": pa.float64(), "epochs": pa.int32()},
)


def new_run_id() -> str:
    return uuid.uuid4().hex


def prediction_table(
    *,
    model: str,
    kind: str,
    arch: str,
    modalities: Sequence[str],
    groups: Sequence[str],
    segment_ids: Sequence[str],
    splits: Sequence[str],
    labels: Sequence[str],
    classes: Sequence[str],
    probs: np.ndarray,
    attention: np.ndarray | None = None,
    config: dict[str, Any] | None = None,
    seed: int | None = None,
    run_id: str | None = None,
    scheme: str = "fixed",
    fold: Sequence[int] | None = None,
    repeat: int | None = None,
    inputs: Sequence[Sequence[str]] | None = None,
) -> pa.Table:
    """Rows of the predictions table for one model; ``probs`` is (n, len(classes)).

    ``scheme="crossfit"`` needs ``repeat`` and the held-out ``fold`` of each row. ``inputs``: the groups
    each row's prediction saw (default: all of ``groups``).
    """
    probs = np.asarray(probs, dtype=np.float64)
    n = len(segment_ids)
    classes = [str(c) for c in classes]
    if probs.shape != (n, len(classes)):
        raise StoreError(f"probs has shape {probs.shape}, expected ({n}, {len(classes)})")
    index = {c: i for i, c in enumerate(classes)}
    missing = sorted({lab for lab in labels if lab not in index})
    if missing:
        raise StoreError(f"model {model!r}: labels {missing} are not among its classes {classes}")
    true_idx = np.array([index[lab] for lab in labels], dtype=np.int64)
    p_correct = probs[np.arange(n), true_idx] if n else np.zeros(0)
    predicted = [classes[i] for i in probs.argmax(axis=1)] if n else []
    if scheme not in Scheme.STORED:
        raise StoreError(f"scheme {scheme!r}: use one of {', '.join(Scheme.STORED)}")
    if scheme == "crossfit" and (repeat is None or fold is None or len(fold) != n):
        raise StoreError("cross-fitted predictions need a repeat and one fold per row")
    if inputs is not None and len(inputs) != n:
        raise StoreError(f"inputs has {len(inputs)} rows, expected {n}")
    run_id = run_id or new_run_id()
    now = S.now()
    keys = ([f"{model}|{s}" for s in segment_ids] if scheme == "fixed" else [f"{model}|human|{s}" for s in segment_ids]
            if scheme == HUMAN else [f"{model}|crossfit|{repeat}|{s}" for s in segment_ids])
    return pa.table(
        {
            "key": keys,
            "model": [model] * n,
            "kind": [kind] * n,
            "arch": [arch] * n,
            "modalities": [list(modalities)] * n,
            "groups": [list(groups)] * n,
            "segment_id": list(segment_ids),
            "split": list(splits),
            "label": list(labels),
            "classes": [classes] * n,
            "probs": [row.astype(np.float32).tolist() for row in probs],
            "predicted": predicted,
            "p_correct": p_correct.astype(np.float64),
            "attention": [a.astype(np.float32).tolist() for a in attention] if attention is not None else [None] * n,
            "config": [json.dumps(config or {}, sort_keys=True, default=str)] * n,
            "seed": [seed] * n,
            "run_id": [run_id] * n,
            "created_at": [now] * n,
            "scheme": [scheme] * n,
            "fold": [int(f) for f in (fold or [])] if scheme == "crossfit" else [None] * n,
            "repeat": [int(repeat or 0)] * n if scheme == "crossfit" else [None] * n,
            "inputs": [list(i) for i in inputs] if inputs is not None else [list(groups) or None] * n,
        },
        schema=PREDICTIONS_SCHEMA,
    )


def dynamics_table(
    *, model: str, segment_ids: Sequence[str], splits: Sequence[str], labels: Sequence[str],
    p_correct_epochs: np.ndarray, correct_epochs: np.ndarray, run_id: str,
) -> pa.Table:
    """Cartography rows: ``p_correct_epochs`` and ``correct_epochs`` are (n, epochs)."""
    pce = np.asarray(p_correct_epochs, dtype=np.float64)
    n, epochs = pce.shape
    return pa.table(
        {
            "key": [f"{model}|{s}" for s in segment_ids],
            "model": [model] * n,
            "segment_id": list(segment_ids),
            "split": list(splits),
            "label": list(labels),
            "p_correct_epochs": [r.astype(np.float32).tolist() for r in pce],
            "confidence": pce.mean(axis=1) if epochs else np.full(n, np.nan),
            # Population SD over epochs, as in Swayamdipta et al. (2020).
            "variability": pce.std(axis=1) if epochs else np.full(n, np.nan),
            "correctness": np.asarray(correct_epochs, dtype=np.float64).mean(axis=1) if epochs else np.full(n, np.nan),
            "epochs": [epochs] * n,
            "run_id": [run_id] * n,
        },
        schema=DYNAMICS_SCHEMA,
    )


def _replace_model(store: FeatureStore, table: Table, data: pa.Table, schema: pa.Schema, **scope: str) -> None:
    """Upsert a model's rows, then delete its rows from earlier runs that this one does not cover."""
    if data.num_rows == 0:
        return
    models = set(data.column("model").to_pylist())
    run_ids = set(data.column("run_id").to_pylist())
    if len(models) != 1 or len(run_ids) != 1:
        raise StoreError("write one model of one run at a time")
    store.upsert(table, data, key="key", schema=schema)
    (model,), (run_id,) = models, run_ids
    table.delete(store, model=model, run_id=Not(run_id), **scope)


def migrate_predictions(store: FeatureStore) -> None:
    """Give a predictions table written before schemes (or inputs) existed the missing columns.

    Every old row came from the fixed split, and saw every group of its model. The
    table is small (one row per model and segment), so it is rewritten whole rather
    than altered in place.
    """
    if not store.has_table(PREDICTIONS) or set(PREDICTIONS_SCHEMA.names) <= set(store.schema(PREDICTIONS).names):
        return
    old = store.read(PREDICTIONS).to_arrow()
    n = old.num_rows
    cols = {name: old.column(name) for name in old.column_names}
    if "scheme" not in cols:
        cols.update({"scheme": pa.array(["fixed"] * n), "fold": pa.array([None] * n, pa.int32()),
                     "repeat": pa.array([None] * n, pa.int32())})
    if "inputs" not in cols:
        cols["inputs"] = old.column("groups")
    table = pa.table({f.name: cols[f.name] for f in PREDICTIONS_SCHEMA}).cast(PREDICTIONS_SCHEMA)
    store.drop(PREDICTIONS)
    store.upsert(PREDICTIONS, table, key="key", schema=PREDICTIONS_SCHEMA)


def write_predictions(store: FeatureStore, data: pa.Table) -> None:
    """Fixed-scheme rows of one model: they replace its earlier fixed rows."""
    migrate_predictions(store)
    schemes = set(data.column("scheme").to_pylist()) if "scheme" in data.column_names else {"fixed"}
    if schemes != {"fixed"}:
        raise StoreError("write_predictions takes fixed-scheme rows; cross-fitted rows go through write_crossfit_rows")
    _replace_model(store, PREDICTIONS, data, PREDICTIONS_SCHEMA, scheme=Scheme.FIXED)


def write_crossfit_rows(store: FeatureStore, data: pa.Table) -> None:
    """Upsert cross-fitted rows (any models, one run): a rerun of a fold overwrites, never duplicates."""
    migrate_predictions(store)
    store.upsert(PREDICTIONS, data, key="key", schema=PREDICTIONS_SCHEMA)


def delete_crossfit(store: FeatureStore, models: Sequence[str], keep_run: str | None = None) -> None:
    """Delete the cross-fitted rows of ``models`` (except those of run ``keep_run``)."""
    if not models or not store.has_table(PREDICTIONS) or "scheme" not in store.schema(PREDICTIONS).names:
        return
    PREDICTIONS.delete(store, scheme=Scheme.CROSSFIT, model=list(models), run_id=Not(keep_run or None))


def write_dynamics(store: FeatureStore, data: pa.Table) -> None:
    _replace_model(store, DYNAMICS, data, DYNAMICS_SCHEMA)


def _listed(values: Sequence[str] | None) -> list[str] | None:
    """A filter of names: None (any) stays None; a string or list becomes the list (empty: no row)."""
    return None if values is None else [values] if isinstance(values, str) else list(values)


def read_predictions(
    store: FeatureStore, models: Sequence[str] | None = None, splits: Sequence[str] | None = None, scheme: str | None = "fixed",
    columns: Sequence[str] | None = None,
) -> pl.DataFrame:

    """Prediction rows as polars (all models and splits unless named) of one ``scheme`` (None: both).

    ``columns`` reads only those (pushed into the scan: at 10^6 segments x 4 models x 3 repeats the
    per-row config, probs and lists are most of the memory)."""
    if not store.has_table(PREDICTIONS):
        raise MissingGroupError(f"the store at {store.uri} has no predictions: run `ambiguity train` or `ambiguity predictions import`")
    if scheme is not None and scheme not in Scheme.STORED:
        raise StoreError(f"scheme {scheme!r}: use one of {', '.join(Scheme.STORED)}")
    names = store.schema(PREDICTIONS).names
    want = None if columns is None else [c for c in dict.fromkeys([*columns, *(["groups"] if "inputs" in columns else [])]) if c in names]
    if "scheme" not in names:  # written before schemes existed: all fixed
        if scheme == "crossfit":
            return cast(pl.DataFrame, pl.from_arrow(PREDICTIONS_SCHEMA.empty_table()))
        df = PREDICTIONS.read(store, want, model=_listed(models), split=_listed(splits))
        df = df.with_columns(pl.lit("fixed").alias("scheme"), pl.lit(None, pl.Int32).alias("fold"),
                             pl.lit(None, pl.Int32).alias("repeat"))
    else:
        df = PREDICTIONS.read(store, want, model=_listed(models), split=_listed(splits), scheme=scheme or None)
    if "inputs" not in names and "groups" in df.columns:  # written before inputs existed: every row saw all of its model's groups
        df = df.with_columns(pl.col("groups").alias("inputs"))
    return df if columns is None else df.select(columns)


def read_dynamics(store: FeatureStore, models: Sequence[str] | None = None) -> pl.DataFrame:
    if not store.has_table(DYNAMICS):
        raise MissingGroupError(f"the store at {store.uri} has no training dynamics: run `ambiguity train`")
    return DYNAMICS.read(store, model=_listed(models))


def model_summary(store: FeatureStore) -> pl.DataFrame:
    """One row per model: kind, arch, modalities, groups, rows, schemes (sorted list of the schemes it has).

    The rows are counted batch by batch and each model's description read from its first row, so
    memory stays that of one batch (a whole read of these columns was 4.6 GB at 10^6 segments with
    4 models x (1 fixed + 3 cross-fitted) rows each; bench/million.py).
    """
    if not store.has_table(PREDICTIONS):
        raise MissingGroupError(f"the store at {store.uri} has no predictions: run `ambiguity train` or `ambiguity predictions import`")
    has_scheme = "scheme" in store.schema(PREDICTIONS).names
    parts = []
    for df in PREDICTIONS.batches(store, ["model", "scheme"] if has_scheme else ["model"], batch_size=1 << 16):
        parts.append(df.group_by(df.columns).len())
    key = ["model", "scheme"] if has_scheme else ["model"]
    counts = (pl.concat(parts).group_by(key).agg(pl.col("len").sum()) if parts
              else pl.DataFrame(schema={"model": pl.String, "scheme": pl.String, "len": pl.UInt32}))
    if not has_scheme:
        counts = counts.with_columns(pl.lit("fixed").alias("scheme"))
    per = counts.group_by("model").agg(pl.col("len").sum().alias("rows"), pl.col("scheme").unique().sort().alias("schemes"))
    desc = pl.concat([
        PREDICTIONS.read(store, ["model", "kind", "arch", "modalities", "groups"], model=m, limit=1)
        for m in per["model"].to_list()
    ]) if per.height else pl.DataFrame(schema={c: pl.String for c in ("model", "kind", "arch")} | {"modalities": pl.List(pl.String), "groups": pl.List(pl.String)})
    return desc.join(per.with_columns(pl.col("rows").cast(pl.UInt32)), on="model", how="left").select(
        "model", "kind", "arch", "modalities", "groups", "rows", "schemes").sort("model")


# -- import ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImportReport:
    models: dict[str, int]  # model -> rows written
    classes: tuple[str, ...]
    source: str

    def summary(self) -> str:
        parts = ", ".join(f"{m} ({n} rows)" for m, n in sorted(self.models.items()))
        return f"imported {parts} from {self.source}; classes {', '.join(self.classes)}"


_RESERVED = {"segment_id", "model", "modalities", "split", "label", "predicted"}


def _class_name(column: str) -> str:
    for prefix in ("prob_", "p_"):
        if column.startswith(prefix) and len(column) > len(prefix):
            return column[len(prefix) :]
    return column


def import_predictions(store: FeatureStore, path: str | Path, *, kind: str = "imported") -> ImportReport:
    """Validate and write predictions made by a user's own model.

    The file (CSV or Parquet) has ``segment_id``, ``model`` and one probability
    column per class, named by the class label as it appears in the segments
    table, optionally prefixed ``p_`` or ``prob_`` (``p_1`` is class ``1``).
    An optional ``modalities`` column (``text``, or ``text+audio+video``) says
    what the model saw, so that ``quadrants`` can tell unimodal from fusion.
    Every problem is reported with its row number (the header is row 1, as a
    spreadsheet shows it): unknown segments, duplicates, NaN or infinite
    probabilities, probabilities outside [0, 1], and rows whose probabilities
    do not sum to 1 (within 1e-3). Split and label come from the store.
    """
    path = Path(path)
    src = str(path)
    df = read_table(path)
    problems: list[str] = []
    for req in ("segment_id", "model"):
        if req not in df.columns:
            problems.append(f"missing column {req!r}")
    prob_cols = [c for c in df.columns if c not in _RESERVED]
    if len(prob_cols) < 2:
        problems.append(f"need one probability column per class (at least two); found {prob_cols or 'none'}")
    if problems:
        raise ManifestError(src, problems)
    classes = [_class_name(c) for c in prob_cols]
    if len(set(classes)) != len(classes):
        raise ManifestError(src, [f"probability columns {prob_cols} name a class twice"])
    n = df.height
    if n == 0:
        raise ManifestError(src, ["the file has no rows"])

    ids = df["segment_id"].cast(pl.String).to_list()
    models = df["model"].cast(pl.String).to_list()
    segs = store.segments(["segment_id", "label", "split"])
    store_labels = set(segs["label"].drop_nulls().unique().to_list())
    segs = segs.filter(pl.col("segment_id").is_in(list({i for i in ids if i})))
    known = {r["segment_id"]: (r["label"], r["split"]) for r in segs.iter_rows(named=True)}
    mods = df["modalities"].cast(pl.String).to_list() if "modalities" in df.columns else [None] * df.height
    extra = sorted(set(classes) - store_labels)
    if extra:
        problems.append(f"class column(s) {extra} are not labels in the store (labels: {sorted(store_labels)})")

    probs = np.full((n, len(classes)), np.nan)
    for j, c in enumerate(prob_cols):
        col = df[c]
        as_f = col.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False) if col.dtype == pl.String else col.cast(pl.Float64, strict=False)
        raw = col.cast(pl.String).to_list()
        vals = as_f.to_list()
        for i in range(n):
            if vals[i] is None:
                problems.append(f"row {i + 2}: {c} {raw[i]!r} is not a number")
            else:
                probs[i, j] = vals[i]
    seen: dict[tuple[str, str], int] = {}
    for i in range(n):
        row = i + 2
        sid, model = ids[i], models[i]
        if not sid:
            problems.append(f"row {row}: empty segment_id")
        elif sid not in known:
            problems.append(f"row {row}: segment_id {sid!r} is not in the store")
        elif known[sid][0] is None:
            problems.append(f"row {row}: segment {sid!r} has no label in the store")
        elif known[sid][0] not in classes:
            problems.append(f"row {row}: label {known[sid][0]!r} of segment {sid!r} has no probability column")
        if not model:
            problems.append(f"row {row}: empty model")
        if sid and model:
            if (model, sid) in seen:
                problems.append(f"row {row}: duplicate of row {seen[(model, sid)]} (model {model!r}, segment {sid!r})")
            else:
                seen[(model, sid)] = row
        p = probs[i]
        if np.isnan(p).all():
            continue
        if not np.isfinite(p).all():
            bad = [prob_cols[j] for j in np.flatnonzero(~np.isfinite(p))]
            problems.append(f"row {row}: {', '.join(bad)} not finite (NaN or Inf)")
        elif (p < 0).any() or (p > 1).any():
            problems.append(f"row {row}: probabilities must lie in [0, 1]; got {p.tolist()}")
        elif not math.isclose(p.sum(), 1.0, abs_tol=SUM_TOLERANCE):
            problems.append(f"row {row}: probabilities sum to {p.sum():.6g}, not 1")
    if problems:
        if len(problems) > _MAX_PROBLEMS:
            problems = problems[:_MAX_PROBLEMS] + [f"... and {len(problems) - _MAX_PROBLEMS} more"]
        raise ManifestError(src, problems)

    model_mods: dict[str, set[str]] = {}
    for model, m in zip(models, mods, strict=True):
        model_mods.setdefault(model, set()).add((m or "").strip())
    for model, ms in model_mods.items():
        if len(ms) > 1:
            problems.append(f"model {model!r} has differing modalities {sorted(ms)} across rows")
    if problems:
        raise ManifestError(src, problems)

    written = {}
    models_arr = np.array(models, dtype=object)
    for model in sorted(set(models)):
        idx = np.flatnonzero(models_arr == model)
        sids = [ids[i] for i in idx]
        (m,) = model_mods[model]
        modalities = [x.strip() for x in m.replace(",", "+").split("+") if x.strip()]
        table = prediction_table(
            model=model, kind=kind, arch=kind, modalities=modalities, groups=[],
            segment_ids=sids, splits=[known[s][1] for s in sids], labels=[known[s][0] for s in sids],
            classes=classes, probs=probs[idx], config={"source": src},
        )
        write_predictions(store, table)
        written[model] = len(idx)
    return ImportReport(written, tuple(classes), src)
