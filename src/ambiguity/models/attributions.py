"""Attributions of a saved fusion model over the store's segments, and the ``attributions`` table.

Out of sample only. On the **crossfit** scheme every segment is attributed by the
(repeat, fold) fusion model that held its fold out (the ``models`` table keeps
each one; the ``fits`` table records what it was fitted on), once per repeat; a
reader averages over the repeats (:func:`wide`: mean and SD per segment and
player). On the **fixed** scheme the one fixed-split model attributes the
segments of ``splits``, by default the test split only (val chose its epoch).
``scheme='auto'`` takes crossfit when the model has fold models, else fixed.

One row per (model, target, scheme, repeat, segment, player): ``phi`` (its
Shapley value; null when the player's input is absent, ``present`` false),
``phi_se`` (standard error; null when exact), ``share`` (phi over the sum of
|phi| of the segment's present players), ``v_all`` and ``v_empty`` (the
segment's v(N) and v(∅)), ``dominant`` (the player with the largest |phi|),
``interactions`` (the Shapley interaction index with each of ``players``, null
on itself and when sampled), and provenance: ``model_run_id`` (the fit whose
model produced the number: the fixed run's id, or ``run_id|repeat|fold``, the
``fits`` key), the method, the number of sampled orders and seed, this run's
``run_id``, the package version and the time. The players are the fusion
model's feature groups (``player`` = ``group``), each with its modality.
Rewriting a (model, target, scheme) replaces all of its rows.

Segments that are not ``ok`` in every feature group the model reads, or whose label
is not among the model's classes, are left out and counted (``dropped``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import polars as pl
import pyarrow as pa

from ambiguity.constants import Scheme
from ambiguity.errors import MissingGroupError, ModelError
from ambiguity.models import shapley as A
from ambiguity.models.crossfit import read_fits
from ambiguity.models.dataset import apply_standardiser, load_dataset
from ambiguity.stores import schema as S
from ambiguity.stores.tables import ATTRIBUTIONS, Not
from ambiguity.version import __version__

if TYPE_CHECKING:
    from ambiguity.models.saved import SavedModel
    from ambiguity.stores.lance import FeatureStore

#: The fixed scheme's default: the segments no choice of the model depended on (val chose the epoch).
FIXED_DEFAULT_SPLITS = ("test",)

ATTRIBUTIONS_SCHEMA = S.table_schema(
    ["key", "model", "target", "scheme", "repeat", "fold", "segment_id", "split", "label", "player", "modality", "group",
     "present", "phi", "phi_se", "share", "v_all", "v_empty", "dominant", "interactions", "players", "method",
     "n_permutations", "seed", "model_run_id", "run_id", "package_version", "created_at"],
    {"repeat": pa.int32(), "fold": pa.int32(), "present": pa.bool_(), "phi": pa.float64(), "phi_se": pa.float64(),
     "share": pa.float64(), "v_all": pa.float64(), "v_empty": pa.float64(), "interactions": pa.list_(pa.float64()),
     "players": pa.list_(pa.string()), "n_permutations": pa.int64()},
)

V_EMPTY = "v(∅) = the target computed from the class prior of the segments the model was fitted on"


@dataclass
class AttributionResult:
    """The long table (one row per segment, repeat and player) and what was left out."""

    model: str
    target: str
    method: str
    modalities: tuple[str, ...]
    frame: pl.DataFrame
    dropped: dict[str, int] = field(default_factory=dict)
    n_permutations: int = 0
    scheme: str = "fixed"

    def wide(self) -> pl.DataFrame:
        return wide(self.frame)

    def caption(self) -> str:
        return caption(self.frame, self.model)

    def summary(self) -> str:
        n = self.frame["segment_id"].n_unique() if self.frame.height else 0
        players = list(dict.fromkeys(self.frame["player"].to_list())) if self.frame.height else []
        line = (f"{self.model}: {self.method} Shapley values of {self.target} for {n} segments x "
                f"{len(players or self.modalities)} players ({', '.join(players or self.modalities)}); {self.caption()}")
        if self.dropped:
            line += "; left out: " + ", ".join(f"{v} ({k})" for k, v in self.dropped.items())
        if n:
            eff = efficiency_gap(self.frame)
            dom = self.wide()["dominant"].value_counts().sort(["count", "dominant"], descending=[True, False])
            line += f"\n  max |sum(phi) - (v_all - v_empty)| = {eff:.2e}; dominant: " + ", ".join(
                f"{r['dominant']} {r['count']}" for r in dom.iter_rows(named=True))
        return line


def efficiency_gap(frame: pl.DataFrame) -> float:
    """max over (segment, repeat) of |sum of phi - (v_all - v_empty)| (each fold model's own efficiency)."""
    by = frame.group_by(["segment_id", "repeat"]).agg(pl.col("phi").sum(), pl.col("v_all").first(), pl.col("v_empty").first())
    gap = (by["phi"] - (by["v_all"] - by["v_empty"])).abs().to_numpy()
    return float(gap.max()) if len(gap) else 0.0


def caption(frame: pl.DataFrame, model: str) -> str:
    """Which segments were attributed, and by which model(s)."""
    if frame.height == 0:
        return "no segment attributed"
    n = frame["segment_id"].n_unique()
    if frame["scheme"][0] == "crossfit":
        reps = frame["repeat"].n_unique()
        fits = frame.select("repeat", "fold").unique().height
        return (f"crossfit scheme: each of {n} segments attributed by the {model} model of its held-out fold "
                f"({fits} fold models, {reps} repeat(s); mean over repeats)")
    splits = "+".join(sorted(frame["split"].unique().to_list()))
    return f"fixed scheme: the {n} {splits} segments, attributed by the one fixed-split {model} model"


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
    present: np.ndarray  # (n, M) bool


def prepare(store: FeatureStore, model, splits: Sequence[str] | None = None, *, ids: Sequence[str] | None = None) -> Prepared:
    """Load ``model`` and its groups' features for the segments of ``splits`` (default all) and, when
    given, of ``ids`` only, standardised as in training. Segments not ok in a group, or whose label the
    model lacks, are left out and counted."""
    from ambiguity.models.saved import load_model  # imports torch: 1.3 s CPU to import

    sm = load_model(store, model) if isinstance(model, str) else model  # a name or a SavedModel
    ds = load_dataset(store, sm.groups, need_split=sm.scheme == "fixed", partial=True)  # absent inputs: present false
    dropped = dict(ds.dropped)
    rows = np.arange(len(ds.segment_ids))
    if ids is not None:
        rows = rows[np.isin(np.asarray(ds.segment_ids, dtype=object), list(ids))]
    if splits is not None:
        rows = rows[np.isin(ds.split[rows], list(splits))]
        if len(rows) == 0 and ids is None:
            raise ModelError(f"no usable segment in split(s) {', '.join(splits)}")
    for x, d, g in zip(ds.X, cast("Sequence[int]", sm.model.input_dims), sm.groups, strict=True):
        if x.shape[1] != d:
            raise ModelError(f"feature group {g!r} has {x.shape[1]} columns now; model {sm.name!r} was trained on {d}: retrain it")
    cidx = {c: i for i, c in enumerate(sm.classes)}
    labels = np.array(ds.labels, dtype=object)
    known = np.array([lab in cidx for lab in labels[rows]], dtype=bool)
    if (~known).any():
        dropped["label not among the model's classes"] = int((~known).sum())
        rows = rows[known]
    y = np.array([cidx[lab] for lab in labels[rows]], dtype=np.int64)
    Z = [apply_standardiser(x[rows], m, s)[0] for x, m, s in zip(ds.X, sm.mean, sm.sd, strict=True)]
    have = getattr(ds, "present", None)
    present = np.ones((len(rows), len(sm.groups)), bool) if have is None else np.asarray(have, bool)[rows]
    return Prepared(sm, [ds.segment_ids[i] for i in rows], [str(s) for s in ds.split[rows].tolist()],
                    labels[rows].tolist(), y, Z, dropped, present)


# -- which scheme ----------------------------------------------------------------------------------
def resolve_scheme(store: FeatureStore, model: str, scheme: str = "auto") -> str:
    """``fixed`` or ``crossfit`` for attributing ``model``; auto: crossfit when it has fold models."""
    from ambiguity.models.saved import fold_models, saved_models  # imports torch: 1.3 s CPU to import

    if scheme not in Scheme.CHOICES:
        raise ModelError(f"scheme {scheme!r}: use auto, fixed or crossfit")
    has_cf = fold_models(store, model).height > 0
    if scheme == "crossfit" and not has_cf:
        raise MissingGroupError(
            f"no cross-fitted fold models of {model!r}: run `ambiguity train GROUPS --folds 5` (it keeps every fold's "
            "model), or attribute the fixed split (scheme fixed)", param="scheme")
    if scheme == "auto":
        scheme = "crossfit" if has_cf else "fixed"
    if scheme == "fixed" and model not in saved_models(store) and not has_cf:
        from ambiguity.models.saved import load_model  # imports torch: 1.3 s CPU to import

        load_model(store, model)  # its error says what the store has and what to run
    return scheme


def attribute(
    store: FeatureStore,
    model: str = "fusion",
    *,
    scheme: str = "auto",
    splits: Sequence[str] | None = None,
    target: str = "p_correct",
    method: str = "auto",
    n_permutations: int | None = None,
    seed: int = 0,
    chunk: int = 8192,
    write: bool = True,
    pool: bool = False,
) -> AttributionResult:
    """Shapley values of each player of fusion model ``model``, out of sample (see the module notes).

    ``splits``: on fixed, the splits attributed (default test); on crossfit, an optional filter of the
    ingest splits (default every labelled segment).
    """
    from ambiguity.models.saved import load_model  # imports torch: 1.3 s CPU to import

    scheme = resolve_scheme(store, model, scheme)
    units: list[tuple[SavedModel, list[str] | None]]
    if scheme == "fixed":
        sm = load_model(store, model)
        units = [(sm, None)]
        splits = tuple(splits) if splits else FIXED_DEFAULT_SPLITS
    else:
        units = list(fold_units(store, model))
        sm = units[0][0]
    A.check_maskable(sm.model, f"model {model!r} ({sm.arch} on {', '.join(sm.groups)})")
    tgt = A.parse_target(target, sm.classes)
    # players: one per feature group, or with pool one per modality holding its groups
    plist = A.players(sm.groups, sm.modalities, pool=pool)
    A.resolve_method(method, len(plist), n_permutations)  # refuse before reading anything
    frames: list[pl.DataFrame] = []
    dropped: dict[str, int] = {}
    res = None
    for unit, test_ids in units:
        pr = prepare(store, unit, splits, ids=test_ids)
        dropped = {k: max(v, dropped.get(k, 0)) for k, v in pr.dropped.items()}
        if not pr.segment_ids:
            continue
        tidx = pr.y if tgt.cls is None else np.full(len(pr.y), unit.classes.index(tgt.cls), dtype=np.int64)
        res = A.shapley_values(unit.model, pr.Z, tidx, unit.class_prior, kind=tgt.kind, method=method,
                               n_permutations=n_permutations, seed=seed, chunk=chunk, present=pr.present,
                               members=[p.inputs for p in plist])
        frames.append(_long_frame(model, tgt.name, pr, res, seed, plist))
    if not frames:
        raise ModelError(f"no usable segment to attribute{' in split(s) ' + ', '.join(splits) if splits else ''}")
    run_id = __import__("uuid").uuid4().hex
    frame = pl.concat(frames).with_columns(pl.lit(run_id).alias("run_id"))
    assert res is not None
    out = AttributionResult(model, tgt.name, res.method, sm.modalities, frame, dropped, res.n_permutations, scheme)
    if write and frame.height:
        write_attributions(store, frame)
    return out


def fold_units(store: FeatureStore, model: str) -> list[tuple[SavedModel, list[str]]]:
    """Each saved (repeat, fold) model of ``model`` with the segments its fold held out (from ``fits``)."""
    from ambiguity.models.saved import fold_models, load_model  # imports torch: 1.3 s CPU to import

    fm = fold_models(store, model)
    runs = fm["run_id"].unique().to_list()
    if len(runs) != 1:
        raise ModelError(f"model {model!r} has fold models of {len(runs)} cross-fitting runs: rerun `ambiguity train ... --folds K`")
    fits = read_fits(store, runs[0])
    held = {(int(r["repeat"]), int(r["fold"])): r for r in fits.iter_rows(named=True) if model in (r["models"] or [])}
    have = {(int(r), int(k)) for r, k in zip(fm["repeat"].to_list(), fm["fold"].to_list(), strict=True)}
    if set(held) - have:
        raise ModelError(f"{len(set(held) - have)} finished (repeat, fold) fit(s) of {model!r} have no saved model "
                         "(trained by an older version): rerun `ambiguity train GROUPS --folds K`")
    out = []
    for r, k in sorted(held):
        sm = load_model(store, model, repeat=r, fold=k, run_id=runs[0])
        test, train = held[(r, k)]["test_ids"], set(held[(r, k)]["train_ids"]) | set(held[(r, k)]["val_ids"])
        if train & set(test):  # the fits table says this model saw a segment it would attribute: never
            raise ModelError(f"fit {runs[0]}|{r}|{k} lists segments both fitted on and held out: rerun cross-fitting")
        out.append((sm, list(test)))
    return out


def _long_frame(model: str, target: str, pr: Prepared, res: A.ShapleyResult, seed: int,
                plist: Sequence[A.Player] | None = None) -> pl.DataFrame:
    sm = pr.model
    n, m = res.phi.shape
    plist = list(plist) if plist is not None else A.players(sm.groups, sm.modalities)
    players = [p.name for p in plist]
    present = np.asarray(res.present, dtype=bool)  # per player (pooled: any of its groups)
    phi = np.where(present, res.phi, np.nan)
    absolute = np.nansum(np.abs(phi), axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(absolute > 0, phi / absolute, np.nan)
    dom_idx = np.nanargmax(np.where(present, np.abs(res.phi), -1.0), axis=1) if n else np.zeros(0, int)
    dom = np.array(players, dtype=object)[dom_idx] if n else np.array([], dtype=object)
    inter = None
    if res.interactions is not None:
        inter = [[None if np.isnan(v) else float(v) for v in res.interactions[i, j]] for i in range(n) for j in range(m)]
    crossfit = sm.scheme == "crossfit"
    now = S.now()
    rep = lambda a: np.repeat(np.asarray(a, dtype=object), m).tolist()  # noqa: E731
    nm = n * m
    tag = f"crossfit|{sm.repeat}" if crossfit else "fixed"
    data = {
        "key": [f"{model}|{target}|{tag}|{s}|{p}" for s in pr.segment_ids for p in players],
        "model": [model] * nm, "target": [target] * nm, "scheme": [sm.scheme] * nm,
        "repeat": [sm.repeat] * nm, "fold": [sm.fold] * nm,
        "segment_id": rep(pr.segment_ids), "split": rep(pr.splits), "label": rep(pr.labels),
        "player": players * n, "modality": [p.modality for p in plist] * n, "group": [p.group for p in plist] * n,
        "present": present.reshape(-1).tolist(), "phi": phi.reshape(-1), "phi_se": res.se.reshape(-1),
        "share": share.reshape(-1), "v_all": np.repeat(res.v_all, m), "v_empty": np.repeat(res.v_empty, m),
        "dominant": rep(dom), "interactions": inter if inter is not None else [None] * nm, "players": [players] * nm,
        "method": [res.method] * nm, "n_permutations": [res.n_permutations] * nm, "seed": [seed] * nm,
        "model_run_id": [sm.fit_id] * nm, "run_id": [""] * nm,
        "package_version": [__version__] * nm, "created_at": [now] * nm,
    }
    table = pa.table(data, schema=ATTRIBUTIONS_SCHEMA)
    return cast(pl.DataFrame, pl.from_arrow(table)).with_columns(pl.col("phi_se", "phi", "share").fill_nan(None))


def write_attributions(store: FeatureStore, frame: pl.DataFrame) -> None:
    """Upsert the rows of one (model, target, scheme, run), then delete that triple's older rows."""
    table = frame.to_arrow().select(ATTRIBUTIONS_SCHEMA.names).cast(ATTRIBUTIONS_SCHEMA)
    (model,), (target,), (scheme,), (run_id,) = (set(frame[c].to_list()) for c in ("model", "target", "scheme", "run_id"))
    if store.has_table(ATTRIBUTIONS) and store.schema(ATTRIBUTIONS).names != ATTRIBUTIONS_SCHEMA.names:
        store.drop(ATTRIBUTIONS)  # written before schemes existed: in-sample values, recomputed on request
    prov = S.provenance("attribution", "2", {"v_empty": V_EMPTY}, "attribution")
    store.upsert(ATTRIBUTIONS, table, key="key", schema=S.with_provenance(ATTRIBUTIONS_SCHEMA, prov))
    ATTRIBUTIONS.delete(store, model=model, target=target, scheme=scheme, run_id=Not(run_id))


def read_attributions(store: FeatureStore, model: str | None = None, target: str | None = "p_correct",
                      splits: Sequence[str] | None = None, scheme: str = "auto") -> pl.DataFrame:
    """The long attributions table of one scheme (auto: crossfit where the store has it), filtered as asked."""
    if not store.has_table(ATTRIBUTIONS) or "scheme" not in store.schema(ATTRIBUTIONS).names:
        raise MissingGroupError(f"the store at {store.uri} has no attributions: run `ambiguity attribute`")
    if scheme not in Scheme.CHOICES:
        raise ModelError(f"scheme {scheme!r}: use auto, fixed or crossfit")
    df = ATTRIBUTIONS.read(store, model=model, target=target, split=None if splits is None else list(splits))
    have = set(df["scheme"].unique().to_list())
    if scheme == "auto":
        scheme = "crossfit" if "crossfit" in have else "fixed"
    df = df.filter(pl.col("scheme") == scheme)
    if df.height == 0:
        what = store.read(ATTRIBUTIONS, ["model", "target", "scheme"]).unique().sort(["model", "target", "scheme"])
        raise MissingGroupError(
            f"no {scheme} attributions for model {model!r}, target {target!r} (run `ambiguity attribute --scheme {scheme}`); "
            "the store has: " + (", ".join(f"{r['model']} ({r['target']}, {r['scheme']})" for r in what.iter_rows(named=True)) or "none")
        )
    return df


def check_same_scheme(attributions: pl.DataFrame, quadrants: pl.DataFrame) -> str:
    """The scheme shared by attributions and quadrants; refuses a mix (e.g. crossfit quadrants, fixed attributions)."""
    a = set(attributions["scheme"].unique().to_list())
    q = set(quadrants["scheme"].unique().to_list()) if "scheme" in quadrants.columns else a
    if len(a | q) > 1:
        raise ModelError(f"schemes cannot be mixed: the quadrants are {', '.join(sorted(q))}, the attributions "
                         f"{', '.join(sorted(a))}; run `ambiguity attribute --scheme {next(iter(q))}` or choose "
                         f"scheme {next(iter(a))} for the quadrants", param="scheme")
    return next(iter(a))


def _column(frame: pl.DataFrame) -> str:
    """The wide table's column key: the modality when each player has its own, else the player (group)."""
    per = frame.select("player", "modality").unique()
    return "modality" if per["modality"].n_unique() == per.height else "player"


def wide(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per segment: segment_id, split, label, phi_<m>..., v_all, v_empty, dominant, scheme, n_repeats,
    sd_<m>... (columns per modality, or per player when two players share a modality).

    On crossfit each value is the mean over the repeats (sd_<m>: its SD, null with one repeat); the dominant
    player is the one with the largest |mean phi|. On fixed there is one value per segment (sd null).
    """
    if frame.select(["model", "target"]).unique().height > 1:
        raise ModelError("wide(): the frame mixes models or targets; filter to one")
    if frame["scheme"].n_unique() > 1:
        raise ModelError("wide(): the frame mixes the fixed and crossfit schemes; filter to one")
    key = _column(frame)
    names = list(dict.fromkeys(frame[key].to_list()))
    agg = frame.group_by(["segment_id", key]).agg(
        pl.col("split").first(), pl.col("label").first(), pl.col("phi").mean(), pl.col("phi").std().alias("sd"),
        pl.col("v_all").mean(), pl.col("v_empty").mean(), pl.col("repeat").n_unique().alias("n_repeats"),
        pl.col("scheme").first())
    phi = agg.pivot(on=key, index="segment_id", values="phi").rename({m: f"phi_{m}" for m in names})
    sd = agg.pivot(on=key, index="segment_id", values="sd").rename({m: f"sd_{m}" for m in names})
    base = agg.group_by("segment_id").agg(pl.col("split", "label", "v_all", "v_empty", "scheme").first(),
                                          pl.col("n_repeats").max())
    out = base.join(phi, on="segment_id").join(sd, on="segment_id").sort("segment_id")
    mat = np.abs(out.select([f"phi_{m}" for m in names]).to_numpy().astype(float))
    dom = [names[int(np.nanargmax(r))] if np.isfinite(r).any() else None for r in mat]
    out = out.with_columns(pl.Series("dominant", dom, dtype=pl.String))
    return out.select(["segment_id", "split", "label", *[f"phi_{m}" for m in names], "v_all", "v_empty", "dominant",
                       "scheme", "n_repeats", *[f"sd_{m}" for m in names]])


def interaction_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """segment_id, modality_a, modality_b, interaction: one row per pair (a before b in the model's order),
    the mean over repeats on crossfit."""
    key = _column(frame)
    mods = list(dict.fromkeys(frame[key].to_list()))
    rows = frame.filter(pl.col("interactions").is_not_null()).select(["segment_id", key, "interactions"])
    out: dict[str, list[Any]] = {"segment_id": [], "modality_a": [], "modality_b": [], "interaction": []}
    for r in rows.iter_rows(named=True):
        i = mods.index(r[key])
        for j in range(i + 1, len(mods)):
            out["segment_id"].append(r["segment_id"])
            out["modality_a"].append(r[key])
            out["modality_b"].append(mods[j])
            out["interaction"].append(r["interactions"][j])
    schema = {"segment_id": pl.String, "modality_a": pl.String, "modality_b": pl.String, "interaction": pl.Float64}
    return (pl.DataFrame(out, schema=schema).group_by(["segment_id", "modality_a", "modality_b"], maintain_order=True)
            .agg(pl.col("interaction").mean()))


def provenance(store: FeatureStore) -> dict:
    return S.read_provenance(store.schema(ATTRIBUTIONS)) if store.has_table(ATTRIBUTIONS) else {}


def export(frame: pl.DataFrame, path) -> None:
    """Write the long table to CSV, Parquet or JSON(L) by the file's suffix (list columns as JSON text in CSV)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame.write_parquet(path)
    elif suffix in (".json", ".jsonl", ".ndjson"):
        frame.write_ndjson(path)
    elif suffix in (".csv", ".tsv", ""):
        flat = frame.with_columns(pl.col("interactions", "players").map_elements(
            lambda v: json.dumps(list(v)) if v is not None else None, return_dtype=pl.String))
        flat.write_csv(path, separator="\t" if suffix == ".tsv" else ",")
    else:
        raise ModelError(f"out {path}: use a .csv, .tsv, .parquet or .jsonl file", param="out")
