"""Which segments each saved fusion model attributes, and their inputs, one batch of segments at a time.

Out of sample: on the fixed scheme the one fixed-split model attributes the segments of the asked
splits; on crossfit each (repeat, fold) model attributes the segments its fold held out (the ``fits``
table), once per repeat. The :class:`Plan` is one row per (segment, model): the segment's split,
label and class index, and which of the model's feature groups it is ``ok`` in. Making it reads a few
columns of the segments table and each group's status, never the features.

:func:`batches` then reads the features of one batch of segments at a time (only their rows, only the
model's groups) and standardises them chunk by chunk as the model was trained, so memory is bounded by
the batch size, not by the store: at 10^6 segments the 384-d embedding alone is 1.5 GB as float32.
A segment's rows of every repeat are in the same batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import numpy as np
import polars as pl

from ambiguity.errors import ModelError
from ambiguity.models.dataset import apply_standardiser, group_matrix, load_dataset
from ambiguity.stores import schema as S
from ambiguity.stores.tables import FITS

if TYPE_CHECKING:
    from ambiguity.models.saved import SavedModel
    from ambiguity.stores.lance import FeatureStore

#: Rows (segment x repeat) attributed and written together, a segment's repeats in one batch: the output
#: rows, and the features of at most this many segments (a 384-d group: 77 MB of float32), whatever the store.
BATCH = 50_000


@dataclass
class Plan:
    """``rows``: segment_id (sorted), split, label, y (class index), unit (index into ``units``), and
    ``_p0``... (ok in the model's j-th group); ``dropped``: segments left out, by reason."""

    units: list[SavedModel]
    rows: pl.DataFrame
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def groups(self) -> tuple[str, ...]:
        return self.units[0].groups


@dataclass
class Batch:
    """The segments of one batch that one model attributes, with their raw inputs (NaN rows where absent)."""

    model: SavedModel
    segment_ids: pl.Series
    splits: pl.Series
    labels: pl.Series
    y: np.ndarray
    present: np.ndarray  # (n, G) bool
    X: list[np.ndarray]  # per group, the whole batch's (b, d_g) float32 inputs as stored (NaN rows where absent)
    pos: np.ndarray  # (n,) this model's rows of X

    def chunks(self, tidx: np.ndarray, size: int) -> Iterator[tuple[list[np.ndarray], np.ndarray, np.ndarray]]:
        """(standardised inputs, target index, present) of ``size`` rows at a time (the float64
        standardisation never holds more than a chunk)."""
        sm = self.model
        for s in range(0, len(self.y), size):
            sl = slice(s, s + size)
            z = [apply_standardiser(x[self.pos[sl]], m, sd)[0] for x, m, sd in zip(self.X, sm.mean, sm.sd, strict=True)]
            yield z, tidx[sl], self.present[sl]


def fold_plan(store: FeatureStore, model: str) -> tuple[list[SavedModel], pl.DataFrame]:
    """Each saved (repeat, fold) model of ``model`` (sorted) and a frame of (segment_id, unit): the segments
    its fold held out, from ``fits``, read one fit at a time. Refuses a model that saw a segment it would attribute."""
    from ambiguity.models.saved import fold_models, load_model  # imports torch: 1.3 s CPU to import

    fm = fold_models(store, model)
    runs = fm["run_id"].unique().to_list()
    if len(runs) != 1:
        raise ModelError(f"model {model!r} has fold models of {len(runs)} cross-fitting runs: rerun `ambiguity train ... --folds K`")
    have = {(int(r), int(k)) for r, k in zip(fm["repeat"].to_list(), fm["fold"].to_list(), strict=True)}
    held: dict[tuple[int, int], pl.Series] = {}
    cols = ["repeat", "fold", "models", "train_ids", "val_ids", "test_ids"]
    for fit in FITS.batches(store, cols, batch_size=1, run_id=runs[0]):  # one fit's id lists at a time
        r, k, models = int(fit["repeat"][0]), int(fit["fold"][0]), fit["models"][0]
        if model not in (models.to_list() if models is not None else []):
            continue
        test = fit["test_ids"].explode().drop_nulls()
        seen = pl.concat([fit["train_ids"].explode(), fit["val_ids"].explode()]).drop_nulls()
        if test.is_in(seen).any():  # the fits table says this model saw a segment it would attribute: never
            raise ModelError(f"fit {runs[0]}|{r}|{k} lists segments both fitted on and held out: rerun cross-fitting")
        held[(r, k)] = test
    if set(held) - have:
        raise ModelError(f"{len(set(held) - have)} finished (repeat, fold) fit(s) of {model!r} have no saved model "
                         "(trained by an older version): rerun `ambiguity train GROUPS --folds K`")
    units = [load_model(store, model, repeat=r, fold=k, run_id=runs[0]) for r, k in sorted(held)]
    frame = pl.concat([pl.DataFrame({"segment_id": held[rk], "unit": pl.Series([u] * len(held[rk]), dtype=pl.Int32)})
                       for u, rk in enumerate(sorted(held))]) if held else pl.DataFrame(
        schema={"segment_id": pl.String, "unit": pl.Int32})
    return units, frame


def make_plan(store: FeatureStore, units: list[SavedModel], held: pl.DataFrame | None,
              splits: Sequence[str] | None) -> Plan:
    """The rows to attribute: labelled segments ok in at least one of the model's groups, held out by their
    unit (``held``: segment_id, unit; None: the one fixed-split model), in ``splits`` when given, with a
    label among the model's classes. Segments left out are counted, as training counts them."""
    sm = units[0]
    groups = sm.groups
    have = store.groups()
    missing = [g for g in groups if g not in have]
    if missing:
        raise ModelError(f"no feature group {', '.join(missing)}; the store has: {', '.join(have) or 'none'}")
    need_split = sm.scheme == "fixed"
    segs = store.segments(["segment_id", "label", "split"])
    usable = pl.col("label").is_not_null()
    rows = segs.filter(usable & pl.col("split").is_in(list(S.SPLITS)) if need_split else usable)
    dropped: dict[str, int] = {}
    if segs.height - rows.height:
        dropped["no label or split" if need_split else "no label"] = segs.height - rows.height
    del segs
    pcols = [f"_p{j}" for j in range(len(groups))]
    for p, g in zip(pcols, groups, strict=True):
        st = store.group_status(g)
        rows = rows.with_columns(pl.col("segment_id").is_in(st.filter(pl.col("status") == "ok")["segment_id"]).alias(p))
    some = pl.any_horizontal(pcols)
    none = rows.height - int(rows.select(some.sum()).item())
    if none:
        dropped[f"ok in none of {', '.join(groups)}"] = none
    rows = rows.filter(some)
    if rows.height == 0:
        raise ModelError(f"no labelled segment is ok in any group of {', '.join(groups)}")
    if rows["label"].n_unique() < 2:
        raise ModelError(f"the labelled segments have one class only ({rows['label'][0]!r}): nothing to classify")
    if held is None:
        rows = rows.with_columns(pl.lit(0, dtype=pl.Int32).alias("unit"))
    else:
        rows = rows.join(held, on="segment_id", how="inner")
    if splits is not None:
        rows = rows.filter(pl.col("split").is_in(list(splits)))
        if rows.height == 0 and held is None:
            raise ModelError(f"no usable segment in split(s) {', '.join(splits)}")
    known = pl.col("label").is_in(list(sm.classes))
    unknown = rows.filter(~known)["segment_id"].n_unique()
    if unknown:
        dropped["label not among the model's classes"] = unknown
    cidx = {c: i for i, c in enumerate(sm.classes)}
    rows = (rows.filter(known).with_columns(pl.col("label").replace_strict(cidx, return_dtype=pl.Int64).alias("y"))
            .sort(["segment_id", "unit"]))
    return Plan(units, rows.select("segment_id", "split", "label", "y", "unit", *pcols), dropped)


def _read_group(store: FeatureStore, group: str, ids: pl.Series, want: pl.Series, dim: int,
                name: str) -> tuple[np.ndarray, np.ndarray]:
    """(len(ids), dim) float32 inputs of ``group`` for the sorted ``ids`` (NaN rows where not read) and which
    rows were read; only the rows of ``want`` (a subset of ``ids``) are asked for."""
    x = np.full((len(ids), dim), np.nan, dtype=np.float32)
    got = np.zeros(len(ids), dtype=bool)
    if len(want) == 0:
        return x, got
    found, arr, _ = group_matrix(store, group, segment_ids=want.to_list())
    if arr.shape[1] != dim:
        raise ModelError(f"feature group {group!r} has {arr.shape[1]} columns now; model {name!r} was trained on {dim}: retrain it")
    f = pl.Series(found, dtype=pl.String)
    pos = ids.search_sorted(f, side="left").to_numpy()
    ok = (pos < len(ids)) & (ids.gather(np.minimum(pos, len(ids) - 1)) == f).to_numpy()
    x[pos[ok]] = arr[ok]
    got[pos[ok]] = True
    return x, got


def batches(store: FeatureStore, plan: Plan, size: int = BATCH) -> Iterator[list[Batch]]:
    """Per batch of about ``size`` rows of the plan (segments x repeats, a segment's repeats together, in
    segment_id order), one :class:`Batch` per model that attributes some of them."""
    if size < 1:
        raise ModelError(f"batch={size}: use a positive number of segments")
    rows = plan.rows
    col = rows["segment_id"]
    uniq = col.unique(maintain_order=True)  # rows are sorted by segment_id
    per = max(1, size * len(uniq) // max(rows.height, 1))  # segments per batch: size / repeats per segment
    sm0 = plan.units[0]
    dims = cast("Sequence[int]", sm0.model.input_dims)
    for s in range(0, len(uniq), per):
        ids = uniq.slice(s, per)
        lo = int(col.search_sorted(ids[0], side="left"))
        hi = int(col.search_sorted(ids[-1], side="right"))
        part = rows.slice(lo, hi - lo)
        first = part.unique(subset="segment_id", keep="first", maintain_order=True)  # aligned with ids
        X, present = [], []
        for j, (g, d) in enumerate(zip(plan.groups, dims, strict=True)):
            x, got = _read_group(store, g, ids, first.filter(pl.col(f"_p{j}"))["segment_id"], d, sm0.name)
            X.append(x)
            present.append(got)
        pres = np.stack(present, axis=1)
        if not pres.any(axis=1).all():  # a group changed since the plan was made
            raise ModelError(f"{int((~pres.any(axis=1)).sum())} segment(s) lost every input of {', '.join(plan.groups)} "
                             "while being attributed (the store changed): rerun `ambiguity attribute`")
        pos_all = ids.search_sorted(part["segment_id"], side="left").to_numpy()
        units = part["unit"].to_numpy()
        out = []
        for u in np.unique(units):
            sel = np.flatnonzero(units == u)
            pos, sub = pos_all[sel], part[sel]
            out.append(Batch(plan.units[int(u)], sub["segment_id"], sub["split"], sub["label"], np.array(sub["y"].to_numpy(), dtype=np.int64),
                             pres[pos], X, pos))
        yield out


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
    model lacks, are left out and counted. Whole arrays in memory (reliance permutes across segments);
    attribution streams through :func:`make_plan` and :func:`batches` instead."""
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


def fold_units(store: FeatureStore, model: str) -> list[tuple[SavedModel, list[str]]]:
    """Each saved (repeat, fold) model of ``model`` with the segments its fold held out (from ``fits``)."""
    units, held = fold_plan(store, model)
    by = held.partition_by("unit", as_dict=True, include_key=False)
    return [(sm, by[(u,)]["segment_id"].to_list() if (u,) in by else []) for u, sm in enumerate(units)]
