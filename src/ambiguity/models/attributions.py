"""Attributions of a saved fusion model over the store's segments, and the ``attributions`` table.

One row per (model, target, segment, modality): ``phi`` (its Shapley value),
``phi_se`` (standard error; null when exact), ``v_all`` and ``v_empty`` (the
segment's v(N) and v(∅)), ``dominant`` (the segment's modality with the largest
|phi|), ``interactions`` (its Shapley interaction index with each modality in the
model's order, null on itself and when sampled), and provenance: the method, the
number of sampled orders and seed, the model's run_id, this run's run_id, the
package version and the time. Rewriting a (model, target) replaces all of its rows.

Segments that are not ``ok`` in every feature group the model reads, or whose label
is not among the model's classes, are left out and counted (``dropped``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import polars as pl
import pyarrow as pa

from ambiguity.errors import MissingGroupError, ModelError
from ambiguity.models import shapley as A
from ambiguity.stores import schema as S
from ambiguity.stores.sql import quote, quote_list

if TYPE_CHECKING:
    from ambiguity.models.saved import SavedModel
    from ambiguity.stores.lance import FeatureStore

ATTRIBUTIONS = "attributions"

ATTRIBUTIONS_SCHEMA = S.table_schema(
    ["key", "model", "target", "segment_id", "split", "label", "modality", "group", "phi", "phi_se", "v_all",
     "v_empty", "dominant", "interactions", "method", "n_permutations", "seed", "model_run_id", "run_id",
     "package_version", "created_at"],
    {"phi": pa.float64(), "phi_se": pa.float64(), "v_all": pa.float64(), "v_empty": pa.float64(),
     "interactions": pa.list_(pa.float64()), "n_permutations": pa.int64()},
)

V_EMPTY = "v(∅) = the target computed from the class prior of the model's training split"


@dataclass
class AttributionResult:
    """The long table (one row per segment and modality) and what was left out."""

    model: str
    target: str
    method: str
    modalities: tuple[str, ...]
    frame: pl.DataFrame
    dropped: dict[str, int] = field(default_factory=dict)
    n_permutations: int = 0

    def wide(self) -> pl.DataFrame:
        return wide(self.frame)

    def summary(self) -> str:
        n = self.frame["segment_id"].n_unique() if self.frame.height else 0
        line = (f"{self.model}: {self.method} Shapley values of {self.target} for {n} segments x "
                f"{len(self.modalities)} modalities ({', '.join(self.modalities)})")
        if self.dropped:
            line += "; left out: " + ", ".join(f"{v} ({k})" for k, v in self.dropped.items())
        if n:
            w = self.wide()
            eff = np.abs(w.select(pl.sum_horizontal([f"phi_{m}" for m in self.modalities])).to_series().to_numpy()
                         - (w["v_all"] - w["v_empty"]).to_numpy()).max()
            dom = w["dominant"].value_counts().sort("count", descending=True)
            line += f"\n  max |sum(phi) - (v_all - v_empty)| = {eff:.2e}; dominant: " + ", ".join(
                f"{r['dominant']} {r['count']}" for r in dom.iter_rows(named=True))
        return line


@dataclass
class Prepared:
    """A saved model's standardised inputs for the usable segments of some splits."""

    model: SavedModel
    segment_ids: list[str]
    splits: list[str]
    labels: list[str]
    y: np.ndarray  # index of the true class among the model's classes
    Z: list[np.ndarray]
    dropped: dict[str, int]


def prepare(store: FeatureStore, model, splits: Sequence[str] | None = None) -> Prepared:
    """Load ``model`` and its groups' features for the segments of ``splits`` (default all), standardised
    as in training. Segments not ok in a group, or whose label the model lacks, are left out and counted."""
    from ambiguity.models.saved import load_model
    from ambiguity.models.training import apply_standardiser, load_dataset

    sm = load_model(store, model) if isinstance(model, str) else model  # a name or a SavedModel
    model = sm.name
    ds = load_dataset(store, sm.groups)
    dropped = dict(ds.dropped)
    rows = np.arange(len(ds.segment_ids))
    if splits is not None:
        rows = rows[np.isin(ds.split, list(splits))]
        if len(rows) == 0:
            raise ModelError(f"no usable segment in split(s) {', '.join(splits)}")
    for x, d, g in zip(ds.X, cast("Sequence[int]", sm.model.input_dims), sm.groups, strict=True):
        if x.shape[1] != d:
            raise ModelError(f"feature group {g!r} has {x.shape[1]} columns now; model {model!r} was trained on {d}: retrain it")
    cidx = {c: i for i, c in enumerate(sm.classes)}
    labels = np.array(ds.labels, dtype=object)
    known = np.array([lab in cidx for lab in labels[rows]], dtype=bool)
    if (~known).any():
        dropped["label not among the model's classes"] = int((~known).sum())
        rows = rows[known]
    y = np.array([cidx[lab] for lab in labels[rows]], dtype=np.int64)
    Z = [apply_standardiser(x[rows], m, s)[0] for x, m, s in zip(ds.X, sm.mean, sm.sd, strict=True)]
    return Prepared(sm, [ds.segment_ids[i] for i in rows], ds.split[rows].tolist(), labels[rows].tolist(), y, Z, dropped)


def attribute(
    store: FeatureStore,
    model: str = "fusion",
    *,
    splits: Sequence[str] | None = None,
    target: str = "p_correct",
    method: str = "auto",
    n_permutations: int | None = None,
    seed: int = 0,
    chunk: int = 8192,
    write: bool = True,
) -> AttributionResult:

    """Shapley values of each modality of fusion model ``model`` for the segments of ``splits`` (default all)."""
    from ambiguity.models.saved import load_model

    sm = load_model(store, model)
    A.check_maskable(sm.model, f"model {model!r} ({sm.arch} on {', '.join(sm.groups)})")
    tgt = A.parse_target(target, sm.classes)
    A.resolve_method(method, len(sm.groups), n_permutations)  # refuse before reading anything
    pr = prepare(store, sm, splits)
    tidx = pr.y if tgt.cls is None else np.full(len(pr.y), sm.classes.index(tgt.cls), dtype=np.int64)
    res = A.shapley_values(pr.model.model, pr.Z, tidx, sm.class_prior, kind=tgt.kind, method=method,
                           n_permutations=n_permutations, seed=seed, chunk=chunk)
    frame = _long_frame(model, tgt.name, pr.model, pr.segment_ids, pr.splits, pr.labels, res, seed)
    out = AttributionResult(model, tgt.name, res.method, sm.modalities, frame, pr.dropped, res.n_permutations)
    if write and frame.height:
        write_attributions(store, frame)
    return out


def _long_frame(model, target, sm, ids, splits, labels, res: A.ShapleyResult, seed) -> pl.DataFrame:
    from ambiguity.version import __version__

    n, m = res.phi.shape
    mods = list(sm.modalities)
    run_id = __import__("uuid").uuid4().hex
    dom = np.array(mods, dtype=object)[res.dominant] if n else np.array([], dtype=object)
    inter = None
    if res.interactions is not None:
        inter = [[None if np.isnan(v) else float(v) for v in res.interactions[i, j]] for i in range(n) for j in range(m)]
    now = S.now()
    rep = lambda a: np.repeat(np.asarray(a, dtype=object), m).tolist()  # noqa: E731
    data = {
        "key": [f"{model}|{target}|{s}|{mod}" for s in ids for mod in mods],
        "model": [model] * (n * m), "target": [target] * (n * m),
        "segment_id": rep(ids), "split": rep(splits), "label": rep(labels),
        "modality": mods * n, "group": list(sm.groups) * n,
        "phi": res.phi.reshape(-1), "phi_se": res.se.reshape(-1),
        "v_all": np.repeat(res.v_all, m), "v_empty": np.repeat(res.v_empty, m),
        "dominant": rep(dom), "interactions": inter if inter is not None else [None] * (n * m),
        "method": [res.method] * (n * m), "n_permutations": [res.n_permutations] * (n * m), "seed": [seed] * (n * m),
        "model_run_id": [sm.run_id] * (n * m), "run_id": [run_id] * (n * m),
        "package_version": [__version__] * (n * m), "created_at": [now] * (n * m),
    }
    table = pa.table(data, schema=ATTRIBUTIONS_SCHEMA)
    return cast(pl.DataFrame, pl.from_arrow(table)).with_columns(pl.col("phi_se").fill_nan(None))


def write_attributions(store: FeatureStore, frame: pl.DataFrame) -> None:
    """Upsert the rows of one (model, target, run), then delete that (model, target)'s older rows."""
    table = frame.to_arrow().select(ATTRIBUTIONS_SCHEMA.names).cast(ATTRIBUTIONS_SCHEMA)
    (model,), (target,), (run_id,) = (set(frame[c].to_list()) for c in ("model", "target", "run_id"))
    prov = S.provenance("attribution", "1", {"v_empty": V_EMPTY}, "attribution")
    store.upsert(ATTRIBUTIONS, table, key="key", schema=S.with_provenance(ATTRIBUTIONS_SCHEMA, prov))
    store.delete(ATTRIBUTIONS, f"model = {quote(model)} AND target = {quote(target)} AND run_id != {quote(run_id)}")


def read_attributions(store: FeatureStore, model: str | None = None, target: str | None = "p_correct",
                      splits: Sequence[str] | None = None) -> pl.DataFrame:
    """The long attributions table (one row per segment and modality), filtered as asked."""
    if not store.has_table(ATTRIBUTIONS):
        raise MissingGroupError(f"the store at {store.uri} has no attributions: run `ambiguity attribute`")
    parts = []
    if model is not None:
        parts.append(f"model = {quote(model)}")
    if target is not None:
        parts.append(f"target = {quote(target)}")
    if splits is not None:
        parts.append("split IN " + quote_list(splits) if splits else "false")
    df = store.read(ATTRIBUTIONS, where=" AND ".join(parts) or None)
    if df.height == 0:
        have = store.read(ATTRIBUTIONS, ["model", "target"]).unique().sort(["model", "target"])
        raise MissingGroupError(
            f"no attributions for model {model!r}, target {target!r}; the store has: "
            + (", ".join(f"{r['model']} ({r['target']})" for r in have.iter_rows(named=True)) or "none")
        )
    return df


def wide(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per segment: segment_id, split, label, phi_<modality>..., v_all, v_empty, dominant."""
    if frame.select(["model", "target"]).unique().height > 1:
        raise ModelError("wide(): the frame mixes models or targets; filter to one")
    mods = list(dict.fromkeys(frame["modality"].to_list()))
    w = frame.pivot(on="modality", index=["segment_id", "split", "label", "v_all", "v_empty", "dominant"],
                    values="phi", aggregate_function="first")
    return w.rename({m: f"phi_{m}" for m in mods}).select(
        ["segment_id", "split", "label", *[f"phi_{m}" for m in mods], "v_all", "v_empty", "dominant"]).sort("segment_id")


def interaction_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """segment_id, modality_a, modality_b, interaction: one row per pair (a before b in the model's order)."""
    mods = list(dict.fromkeys(frame["modality"].to_list()))
    rows = frame.filter(pl.col("interactions").is_not_null()).select(["segment_id", "modality", "interactions"])
    out: dict[str, list[Any]] = {"segment_id": [], "modality_a": [], "modality_b": [], "interaction": []}
    for r in rows.iter_rows(named=True):
        i = mods.index(r["modality"])
        for j in range(i + 1, len(mods)):
            out["segment_id"].append(r["segment_id"])
            out["modality_a"].append(r["modality"])
            out["modality_b"].append(mods[j])
            out["interaction"].append(r["interactions"][j])
    return pl.DataFrame(out, schema={"segment_id": pl.String, "modality_a": pl.String, "modality_b": pl.String, "interaction": pl.Float64})


def provenance(store: FeatureStore) -> dict:
    return S.read_provenance(store.schema(ATTRIBUTIONS)) if store.has_table(ATTRIBUTIONS) else {}


def export(frame: pl.DataFrame, path) -> None:
    """Write the long table to CSV, Parquet or JSON(L) by the file's suffix (interactions as JSON text in CSV)."""
    from pathlib import Path

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame.write_parquet(path)
    elif suffix in (".json", ".jsonl", ".ndjson"):
        frame.write_ndjson(path)
    elif suffix in (".csv", ".tsv", ""):
        flat = frame.with_columns(pl.col("interactions").map_elements(
            lambda v: json.dumps(list(v)) if v is not None else None, return_dtype=pl.String))
        flat.write_csv(path, separator="\t" if suffix == ".tsv" else ",")
    else:
        raise ModelError(f"--out {path}: use a .csv, .tsv, .parquet or .jsonl file")
