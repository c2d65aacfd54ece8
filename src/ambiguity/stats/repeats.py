"""Cross-fitted predictions as (segment x repeat) matrices, read without a join or a Python object per row.

A cross-fitting run stores one row per (model, repeat, segment). Joining two models' rows on
(segment_id, repeat) as strings, with each row's label, split and class list, held about 0.4 GB per
model pair at 10^5 segments x 3 repeats and 3.9 GB at 10^6 (bench/million.py, docs/benchmarks.md).
Here each model's rows are read with three columns (segment_id, repeat, p_correct; two more with
more than two classes), the segment ids are mapped once to positions in a sorted index (a polars
``Enum``: one hash of the ids, then 4 bytes per row), and the values are scattered into dense
``(n_segments, n_repeats)`` arrays. Aligning two models is then array indexing, linear in the rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from ambiguity.constants import Scheme
from ambiguity.errors import StatsError
from ambiguity.stores.tables import PREDICTIONS, Not

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore


@dataclass(frozen=True)
class CrossfitRun:
    """The settings of a model's cross-fitting run, read from one row."""

    model: str
    run_id: str
    folds: int | None
    repeats: int | None
    group_by: str | None
    classes: tuple[str, ...]


@dataclass(frozen=True)
class Repeated:
    """One model's cross-fitted predictions on an index of segments: ``p`` is p(true label) and ``right``
    whether the prediction was right, both (n_segments, n_repeats); ``present`` says which cells have a row."""

    p: np.ndarray
    right: np.ndarray
    present: np.ndarray


def crossfit_run(store: FeatureStore, model: str, splits=None) -> CrossfitRun:
    """The run behind ``model``'s cross-fitted rows (in ``splits``); refuses none, or rows of two runs."""
    first = PREDICTIONS.read(store, ["run_id", "config", "classes"], model=model, scheme=Scheme.CROSSFIT,
                             split=splits, limit=1)
    if first.height == 0:
        raise StatsError(f"no cross-fitted predictions for {model}{' in splits ' + '+'.join(splits) if splits else ''}: "
                         "run `ambiguity train GROUPS --folds 5` first")
    run = first["run_id"][0]
    if PREDICTIONS.n_rows(store, model=model, scheme=Scheme.CROSSFIT, split=splits, run_id=Not(run)):
        others = PREDICTIONS.read(store, ["run_id"], model=model, scheme=Scheme.CROSSFIT, split=splits)["run_id"].n_unique()
        raise StatsError(f"model {model} has rows of {others} cross-fitting runs: rerun `ambiguity train ... --folds K` "
                         "to finish one")
    cfg = json.loads(first["config"][0] or "{}")
    classes = first["classes"].to_list()[0] or []
    return CrossfitRun(model, run, cfg.get("folds"), cfg.get("repeats"), cfg.get("group_by"), tuple(classes))


def segment_index(store: FeatureStore, run: CrossfitRun, splits=None) -> pl.DataFrame:
    """The segments a model's run predicted (sorted by id), with the label and split its rows carry."""
    meta = PREDICTIONS.read(store, ["segment_id", "label", "split"], model=run.model, scheme=Scheme.CROSSFIT,
                            split=splits)
    return meta.unique("segment_id", keep="first").sort("segment_id")


def read_repeated(store: FeatureStore, run: CrossfitRun, index: pl.DataFrame, splits=None,
                  threshold: float = 0.5) -> Repeated:
    """``run.model``'s cross-fitted rows scattered onto ``index`` (rows of segments not in it are left out).

    Right means p(true label) > ``threshold`` with two classes, else the predicted label is the true one
    (:mod:`ambiguity.stats.assign`). Refuses an unfinished run: a segment with rows in some repeats only.
    """
    from ambiguity.stats.assign import check_threshold

    k = len(run.classes) or 2
    cols = ["segment_id", "repeat", "p_correct"] + (["predicted", "label"] if k > 2 else [])
    if k > 2:
        check_threshold(k, threshold)
    df = PREDICTIONS.read(store, cols, model=run.model, scheme=Scheme.CROSSFIT, run_id=run.run_id, split=splits)
    repeats = run.repeats or int(df["repeat"].to_numpy().max(initial=-1)) + 1
    n = index.height
    row = df["segment_id"].cast(pl.Enum(index["segment_id"]), strict=False).to_physical().to_numpy()
    rep = df["repeat"].to_numpy()
    p_correct = df["p_correct"].to_numpy()
    ok = (df["predicted"] == df["label"]).fill_null(False).to_numpy() if k > 2 else None
    del df
    keep = ~np.isnan(row) if row.dtype.kind == "f" else np.ones(len(row), bool)  # null codes come back as NaN
    if (rep[keep] >= repeats).any() or (rep[keep] < 0).any():
        raise StatsError(f"model {run.model}: a repeat outside 0..{repeats - 1} in run {run.run_id}")
    r, c = row[keep].astype(np.int64), rep[keep].astype(np.int64)
    p = np.full((n, repeats), np.nan)
    p[r, c] = p_correct[keep]
    present = np.zeros((n, repeats), bool)
    present[r, c] = True
    right = np.zeros((n, repeats), bool)
    right[r, c] = (p_correct[keep] > threshold) if ok is None else ok[keep]
    seen = present.sum(axis=1)
    if run.repeats and ((seen > 0) & (seen != run.repeats)).any():
        from ambiguity.models.crossfit import finished_units

        done = len(finished_units(store, run.run_id))
        raise StatsError(f"the cross-fitting run of {run.model} is unfinished ({done} of {(run.folds or 0) * run.repeats} "
                         "(repeat, fold) done): run the same `ambiguity train ... --folds K` again to resume")
    return Repeated(p, right, present)
