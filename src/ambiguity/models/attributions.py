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
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import polars as pl
import pyarrow as pa

from ambiguity.constants import Scheme
from ambiguity.errors import MissingGroupError, ModelError
from ambiguity.models import attribution_plan as P
from ambiguity.models import shapley as A
from ambiguity.models.attribution_plan import Prepared, fold_units, prepare  # noqa: F401  (reliance reads them here)
from ambiguity.stores import schema as S
from ambiguity.stores.tables import ATTRIBUTIONS, Not
from ambiguity.version import __version__

if TYPE_CHECKING:
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


class AttributionResult:
    """The long table (one row per segment, repeat and player) and what was left out.

    ``frame`` is the whole long table: held in memory when nothing was written (``write=False``), else
    read back from the store on first use (one run's rows). :meth:`summary` needs neither: its
    numbers were tallied batch by batch while attributing.
    """

    def __init__(self, model: str, target: str, method: str, modalities: tuple[str, ...], frame: pl.DataFrame | None,
                 dropped: dict[str, int] | None = None, n_permutations: int = 0, scheme: str = "fixed", *,
                 store: FeatureStore | None = None, run_id: str = "", tally: Tally | None = None,
                 players: Sequence[str] = ()):
        self.model, self.target, self.method, self.modalities = model, target, method, modalities
        self.dropped = dropped or {}
        self.n_permutations, self.scheme, self.run_id = n_permutations, scheme, run_id
        self.players = list(players)
        self._frame, self._store = frame, store
        self.tally = tally or Tally()
        if tally is None and frame is not None and frame.height:
            self.tally.add(frame)

    @property
    def frame(self) -> pl.DataFrame:
        if self._frame is None:
            assert self._store is not None  # written: read back this run's rows
            self._frame = ATTRIBUTIONS.read(self._store, model=self.model, target=self.target, scheme=self.scheme,
                                            run_id=self.run_id)
        return self._frame

    def batches(self, size: int = 1 << 16) -> Iterator[pl.DataFrame]:
        """The long table in batches (from the store when written): memory of one batch."""
        if self._frame is not None or self._store is None:
            yield self.frame
            return
        yield from ATTRIBUTIONS.batches(self._store, batch_size=size, model=self.model, target=self.target,
                                        scheme=self.scheme, run_id=self.run_id)

    def wide(self) -> pl.DataFrame:
        return wide(self.frame)

    def caption(self) -> str:
        return self.tally.caption(self.model)

    def summary(self) -> str:
        t = self.tally
        players = self.players or list(self.modalities)
        line = (f"{self.model}: {self.method} Shapley values of {self.target} for {t.n} segments x "
                f"{len(players)} players ({', '.join(players)}); {self.caption()}")
        if self.dropped:
            line += "; left out: " + ", ".join(f"{v} ({k})" for k, v in self.dropped.items())
        if t.n:
            dom = pl.DataFrame({"dominant": list(t.dominant), "count": list(t.dominant.values())},
                               schema={"dominant": pl.String, "count": pl.Int64})
            dom = dom.sort(["count", "dominant"], descending=[True, False])
            line += f"\n  max |sum(phi) - (v_all - v_empty)| = {t.eff:.2e}; dominant: " + ", ".join(
                f"{r['dominant']} {r['count']}" for r in dom.iter_rows(named=True))
        return line


@dataclass
class Tally:
    """What the summary and caption say about a run, added up batch by batch (a segment's repeats in one batch)."""

    n: int = 0
    eff: float = 0.0
    dominant: dict[str | None, int] = field(default_factory=dict)
    fits: set[tuple[int | None, int | None]] = field(default_factory=set)
    splits: set[str] = field(default_factory=set)
    scheme: str = ""

    def add(self, frame: pl.DataFrame) -> None:
        self.n += frame["segment_id"].n_unique()
        self.eff = max(self.eff, efficiency_gap(frame))
        for d, c in wide(frame)["dominant"].value_counts().iter_rows():
            self.dominant[d] = self.dominant.get(d, 0) + c
        self.fits |= set(frame.select("repeat", "fold").unique().iter_rows())
        self.splits |= set(frame["split"].unique().to_list())
        self.scheme = frame["scheme"][0]

    def caption(self, model: str) -> str:
        return _caption(model, self.n, self.scheme, len({r for r, _ in self.fits}), len(self.fits), self.splits)


def efficiency_gap(frame: pl.DataFrame) -> float:
    """max over (segment, repeat) of |sum of phi - (v_all - v_empty)| (each fold model's own efficiency)."""
    by = frame.group_by(["segment_id", "repeat"]).agg(pl.col("phi").sum(), pl.col("v_all").first(), pl.col("v_empty").first())
    gap = (by["phi"] - (by["v_all"] - by["v_empty"])).abs().to_numpy()
    return float(gap.max()) if len(gap) else 0.0


def caption(frame: pl.DataFrame, model: str) -> str:
    """Which segments were attributed, and by which model(s)."""
    if frame.height == 0:
        return "no segment attributed"
    fits = frame.select("repeat", "fold").unique()
    return _caption(model, frame["segment_id"].n_unique(), frame["scheme"][0], fits["repeat"].n_unique(), fits.height,
                    set(frame["split"].unique().to_list()))


def _caption(model: str, n: int, scheme: str, reps: int, fits: int, splits: set[str]) -> str:
    if n == 0:
        return "no segment attributed"
    if scheme == "crossfit":
        return (f"crossfit scheme: each of {n} segments attributed by the {model} model of its held-out fold "
                f"({fits} fold models, {reps} repeat(s); mean over repeats)")
    return f"fixed scheme: the {n} {'+'.join(sorted(splits))} segments, attributed by the one fixed-split {model} model"


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
    batch: int = P.BATCH,
) -> AttributionResult:
    """Shapley values of each player of fusion model ``model``, out of sample (see the module notes).

    ``splits``: on fixed, the splits attributed (default test); on crossfit, an optional filter of the
    ingest splits (default every labelled segment). About ``batch`` segments x repeats are read, attributed
    and written at a time (``chunk`` rows per pass through the model): memory is bounded by them, not the store.
    """
    from ambiguity.models.saved import load_model  # imports torch: 1.3 s CPU to import

    scheme = resolve_scheme(store, model, scheme)
    held: pl.DataFrame | None = None
    if scheme == "fixed":
        units = [load_model(store, model)]
        splits = tuple(splits) if splits else FIXED_DEFAULT_SPLITS
    else:
        units, held = P.fold_plan(store, model)
    sm = units[0]
    A.check_maskable(sm.model, f"model {model!r} ({sm.arch} on {', '.join(sm.groups)})")
    tgt = A.parse_target(target, sm.classes)
    # players: one per feature group, or with pool one per modality holding its groups
    plist = A.players(sm.groups, sm.modalities, pool=pool)
    method = A.resolve_method(method, len(plist), n_permutations)  # refuse before reading anything
    plan = P.make_plan(store, units, held, splits)
    if plan.rows.height == 0:
        raise ModelError(f"no usable segment to attribute{' in split(s) ' + ', '.join(splits) if splits else ''}")
    run_id, now = uuid.uuid4().hex, S.now()
    tally, kept, n_perm, written = Tally(), [], 0, 0
    for parts in P.batches(store, plan, batch):
        frames = []
        for b in parts:
            unit = b.model
            tidx = b.y if tgt.cls is None else np.full(len(b.y), unit.classes.index(tgt.cls), dtype=np.int64)
            res = A.concat(list(A.iter_shapley(unit.model, b.chunks(tidx, chunk), unit.class_prior, kind=tgt.kind,
                                               method=method, n_permutations=n_permutations, seed=seed,
                                               members=[p.inputs for p in plist])), len(plist))
            n_perm = res.n_permutations
            frames.append(_long_frame(model, tgt.name, b, res, seed, plist, run_id=run_id, now=now))
        frame = pl.concat(frames)
        tally.add(frame)
        if write:
            _write_batch(store, frame, first=written == 0)
            written += 1
        else:
            kept.append(frame)
    if written:
        ATTRIBUTIONS.delete(store, model=model, target=tgt.name, scheme=scheme, run_id=Not(run_id))
        if written > 1:  # one fragment and one version per batch: merge them once
            store.compact([ATTRIBUTIONS])
    return AttributionResult(model, tgt.name, method, sm.modalities, pl.concat(kept) if kept else None, plan.dropped,
                             n_perm, scheme, store=store if written else None, run_id=run_id, tally=tally,
                             players=[p.name for p in plist])


def _long_frame(model: str, target: str, pr: P.Prepared | P.Batch, res: A.ShapleyResult, seed: int,
                plist: Sequence[A.Player] | None = None, *, run_id: str = "", now: str | None = None) -> pl.DataFrame:
    """The rows of one model's segments, built column by column (no Python object per row)."""
    sm = pr.model
    n, m = res.phi.shape
    plist = list(plist) if plist is not None else A.players(sm.groups, sm.modalities)
    players = [p.name for p in plist]
    present = np.asarray(res.present, dtype=bool)  # per player (pooled: any of its groups)
    phi = np.where(present, res.phi, np.nan)
    absolute = np.nansum(np.abs(phi), axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(absolute > 0, phi / absolute, np.nan)
    dom_idx = np.nanargmax(np.where(present, np.abs(res.phi), -1.0), axis=1) if n else np.zeros(0, np.int64)
    nm = n * m
    seg = np.repeat(np.arange(n), m)
    who = np.tile(np.arange(m), n)
    if res.interactions is not None:
        flat = np.ascontiguousarray(res.interactions, dtype=np.float64).reshape(-1)
        inter = pa.ListArray.from_arrays(pa.array(np.arange(0, nm * m + 1, m, dtype=np.int32)),
                                         pa.array(flat, mask=np.isnan(flat)))
    else:
        inter = pa.nulls(nm, pa.list_(pa.float64()))
    names = pa.array(players, pa.string()).take(pa.array(np.tile(np.arange(m), nm)))  # each row's list of players
    tag = f"crossfit|{sm.repeat}" if sm.scheme == "crossfit" else "fixed"
    ids = pl.Series(pr.segment_ids, dtype=pl.String).gather(seg)
    pnames = pl.Series(players, dtype=pl.String).gather(who)
    frame = pl.DataFrame({
        "segment_id": ids, "split": pl.Series(pr.splits, dtype=pl.String).gather(seg),
        "label": pl.Series(pr.labels, dtype=pl.String).gather(seg), "player": pnames,
        "modality": pl.Series([p.modality for p in plist], dtype=pl.String).gather(who),
        "group": pl.Series([p.group for p in plist], dtype=pl.String).gather(who),
        "present": present.reshape(-1), "phi": phi.reshape(-1), "phi_se": res.se.reshape(-1), "share": share.reshape(-1),
        "v_all": np.repeat(res.v_all, m), "v_empty": np.repeat(res.v_empty, m),
        "dominant": pl.Series(players, dtype=pl.String).gather(np.repeat(dom_idx, m)),
    })
    frame = frame.with_columns(key=pl.lit(f"{model}|{target}|{tag}|") + pl.col("segment_id") + "|" + pl.col("player"))
    consts = {"model": model, "target": target, "scheme": sm.scheme, "repeat": sm.repeat, "fold": sm.fold,
              "method": res.method, "n_permutations": res.n_permutations, "seed": seed, "model_run_id": sm.fit_id,
              "run_id": run_id, "package_version": __version__, "created_at": now or S.now()}
    types = {"repeat": pl.Int32, "fold": pl.Int32, "n_permutations": pl.Int64, "seed": pl.Int64}
    frame = frame.with_columns([pl.lit(v, dtype=types.get(k, pl.String)).alias(k) for k, v in consts.items()])
    frame = frame.with_columns(pl.Series("interactions", inter), pl.Series("players", pa.ListArray.from_arrays(
        pa.array(np.arange(0, nm * m + 1, m, dtype=np.int32)), names)), pl.col("phi_se", "phi", "share").fill_nan(None))
    return cast(pl.DataFrame, pl.from_arrow(frame.select(ATTRIBUTIONS_SCHEMA.names).to_arrow().cast(ATTRIBUTIONS_SCHEMA)))


def _write_batch(store: FeatureStore, frame: pl.DataFrame, *, first: bool) -> None:
    """Append one batch of a run's rows (the first batch creates the table, with its key and provenance);
    after the last batch the caller deletes the (model, target, scheme)'s rows of other runs."""
    table = frame.to_arrow().select(ATTRIBUTIONS_SCHEMA.names).cast(ATTRIBUTIONS_SCHEMA)
    if first and store.has_table(ATTRIBUTIONS) and store.schema(ATTRIBUTIONS).names != ATTRIBUTIONS_SCHEMA.names:
        store.drop(ATTRIBUTIONS)  # written before schemes existed: in-sample values, recomputed on request
    if store.has_table(ATTRIBUTIONS):
        store.append(ATTRIBUTIONS, table)
        return
    prov = S.provenance("attribution", "2", {"v_empty": V_EMPTY}, "attribution")
    store.upsert(ATTRIBUTIONS, table, key="key", schema=S.with_provenance(ATTRIBUTIONS_SCHEMA, prov))


def write_attributions(store: FeatureStore, frame: pl.DataFrame) -> None:
    """Write the rows of one (model, target, scheme, run), then delete that triple's rows of other runs."""
    (model,), (target,), (scheme,), (run_id,) = (set(frame[c].unique().to_list()) for c in ("model", "target", "scheme", "run_id"))
    _write_batch(store, frame, first=True)
    ATTRIBUTIONS.delete(store, model=model, target=target, scheme=scheme, run_id=Not(run_id))


#: What :func:`wide`, :func:`caption` and :func:`check_same_scheme` read: the rest (keys, interactions,
#: provenance) stays on disk.
WIDE_COLUMNS = ("model", "target", "scheme", "repeat", "fold", "segment_id", "split", "label", "player", "modality",
                "phi", "v_all", "v_empty")


def read_attributions(store: FeatureStore, model: str | None = None, target: str | None = "p_correct",
                      splits: Sequence[str] | None = None, scheme: str = "auto",
                      columns: Sequence[str] | None = None) -> pl.DataFrame:
    """The long attributions table of one scheme (auto: crossfit where the store has it), filtered as asked;
    ``columns``: only these (e.g. :data:`WIDE_COLUMNS`; default all). While a rerun is being written the
    table holds two runs of a (model, target, scheme): only the newest is read."""
    if not store.has_table(ATTRIBUTIONS) or "scheme" not in store.schema(ATTRIBUTIONS).names:
        raise MissingGroupError(f"the store at {store.uri} has no attributions: run `ambiguity attribute`")
    if scheme not in Scheme.CHOICES:
        raise ModelError(f"scheme {scheme!r}: use auto, fixed or crossfit")
    cols = None if columns is None else list(dict.fromkeys([*columns, "model", "target", "scheme", "run_id", "created_at"]))
    df = ATTRIBUTIONS.read(store, cols, model=model, target=target, split=None if splits is None else list(splits))
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
    runs = df.group_by("model", "target", "run_id").agg(pl.col("created_at").max())
    if runs.height > runs.select("model", "target").n_unique():  # a rerun in progress: its rows only
        newest = runs.sort("created_at", "run_id").group_by("model", "target").agg(pl.col("run_id").last())
        df = df.join(newest, on=["model", "target", "run_id"], how="semi")
    return df if columns is None else df.select(columns)


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
    finite = np.isfinite(mat)
    idx = np.where(finite, mat, -1.0).argmax(axis=1) if mat.size else np.zeros(len(mat), np.int64)
    dom = pl.Series(names, dtype=pl.String).gather(idx) if len(names) else pl.Series([None] * len(mat), dtype=pl.String)
    out = out.with_columns(pl.when(pl.Series(finite.any(axis=1))).then(dom).otherwise(None).alias("dominant"))
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


def export(frame: pl.DataFrame | Iterable[pl.DataFrame], path) -> int:
    """Write the long table (a frame, or batches of it) to CSV, Parquet or JSON(L) by the file's suffix (list
    columns as JSON text in CSV), one batch at a time; returns the number of rows written."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".json", ".jsonl", ".ndjson", ".csv", ".tsv", ""):
        raise ModelError(f"out {path}: use a .csv, .tsv, .parquet or .jsonl file", param="out")
    frames = [frame] if isinstance(frame, pl.DataFrame) else frame
    rows, writer = 0, None
    with open(path, "wb") as fh:
        for f in frames:
            if suffix == ".parquet":
                import pyarrow.parquet as pq  # only for a .parquet export

                table = f.to_arrow()
                writer = writer or pq.ParquetWriter(fh, table.schema)
                writer.write_table(table)
            elif suffix in (".json", ".jsonl", ".ndjson"):
                f.write_ndjson(fh)
            else:
                flat = f.with_columns(pl.col("interactions", "players").map_elements(
                    lambda v: json.dumps(list(v)) if v is not None else None, return_dtype=pl.String))
                flat.write_csv(fh, separator="\t" if suffix == ".tsv" else ",", include_header=rows == 0)
            rows += f.height
        if writer is not None:
            writer.close()
    return rows
