"""Cross-fitted predictions as (segment x repeat) matrices, read without a join or a Python object per row.

A cross-fitting run stores one row per (model, repeat, segment). Joining two models' rows on
(segment_id, repeat) as strings, with each row's label, split and class list, held about 0.4 GB per
model pair at 10^5 segments x 3 repeats and 3.9 GB at 10^6 (bench/million.py, docs/benchmarks.md).
Here each model's rows are read with three columns (segment_id, repeat, p_correct; two more with
more than two classes), the segment ids are mapped to positions in a sorted index (a 64-bit
hash and a binary search, :class:`SegmentIndex`), batch by batch, and the values are scattered into dense
``(n_segments, n_repeats)`` arrays. Aligning two models is then array indexing (n log n in the rows, for the search).
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


class SegmentIndex:
    """Positions of segment ids in a fixed list of unique ids, for batches of rows, without a join.

    The ids are hashed once (polars' 64-bit hash) and sorted; a batch's ids are hashed and looked up
    by binary search, and every hit is confirmed by comparing the strings, so a hash collision can
    only ever cost a miss, never a wrong row (and with colliding index ids it falls back to an
    ``Enum`` cast). Memory: 16 bytes per index id, plus the batch. An ``Enum`` cast per batch would
    rebuild a hash of all the ids each time (0.6 s per cast at 10^6 ids, measured).
    """

    def __init__(self, ids: pl.Series):
        self.ids = ids.cast(pl.String).alias("segment_id")
        h = self.ids.hash(seed=0).to_numpy()
        self._order = np.argsort(h, kind="stable")
        self._sorted = h[self._order]
        self._enum = pl.Enum(self.ids) if len(h) > 1 and (np.diff(self._sorted) == 0).any() else None

    def __len__(self) -> int:
        return len(self.ids)

    def positions(self, ids: pl.Series) -> np.ndarray:
        """The position of each id in the index (int64), -1 where it is not there."""
        ids = ids.cast(pl.String)
        if self._enum is not None:
            return ids.cast(self._enum, strict=False).to_physical().cast(pl.Int64).fill_null(-1).to_numpy()
        if not len(self._sorted):
            return np.full(len(ids), -1, np.int64)
        h = ids.hash(seed=0).to_numpy()
        pos = np.minimum(np.searchsorted(self._sorted, h), len(self._sorted) - 1)
        row = np.where(self._sorted[pos] == h, self._order[pos], -1).astype(np.int64)
        hit = np.flatnonzero(row >= 0)
        same = (self.ids.gather(row[hit]) == ids.gather(hit)).fill_null(False).to_numpy()
        row[hit[~same]] = -1
        return row


def segment_index(store: FeatureStore, run: CrossfitRun, splits=None) -> pl.DataFrame:
    """The segments a model's run predicted in its first repeat (sorted by id), with the label and split its rows
    carry. A finished run predicts every segment in every repeat; :func:`read_repeated` refuses rows outside."""
    meta = PREDICTIONS.read(store, ["segment_id", "label", "split"], model=run.model, scheme=Scheme.CROSSFIT,
                            run_id=run.run_id, split=splits, repeat=0)
    return meta.unique("segment_id", keep="first").sort("segment_id")


def _max_repeat(store: FeatureStore, run: CrossfitRun, splits) -> int:
    rep = PREDICTIONS.read(store, ["repeat"], model=run.model, scheme=Scheme.CROSSFIT, run_id=run.run_id, split=splits)
    return int(rep["repeat"].to_numpy().max(initial=0))


#: Rows per batch when a model's cross-fitted rows are scattered (memory of one batch, not of 3 x 10^6 rows).
BATCH_ROWS = 1 << 18


def read_repeated(store: FeatureStore, run: CrossfitRun, index: SegmentIndex, splits=None,
                  threshold: float = 0.5, *, n_classes: int | None = None, own: bool = False) -> Repeated:
    """``run.model``'s cross-fitted rows scattered onto ``index``, batch by batch.

    Right means p(true label) > ``threshold`` with two classes, else the predicted label is the true one
    (:mod:`ambiguity.stats.assign`). Rows of segments not in the index are left out, unless ``own`` (the
    index was built from this model's first repeat): then such a row means an unfinished run. An unfinished
    run (a segment with rows in some repeats only) is refused.
    """
    from ambiguity.stats.assign import check_threshold

    k = n_classes or len(run.classes) or 2
    if k > 2:
        check_threshold(k, threshold)
    cols = ["segment_id", "repeat", "p_correct"] + (["predicted", "label"] if k > 2 else [])
    repeats = run.repeats or _max_repeat(store, run, splits) + 1  # an imported run may not say how many
    n = len(index)
    p = np.full((n, repeats), np.nan)
    present = np.zeros((n, repeats), bool)
    right = np.zeros((n, repeats), bool)
    outside = 0
    for df in PREDICTIONS.batches(store, cols, batch_size=BATCH_ROWS, model=run.model, scheme=Scheme.CROSSFIT,
                                  run_id=run.run_id, split=splits):
        row = index.positions(df["segment_id"])
        rep = df["repeat"].to_numpy().astype(np.int64)
        if ((rep >= repeats) | (rep < 0)).any():
            raise StatsError(f"model {run.model}: a repeat outside 0..{repeats - 1} in run {run.run_id}")
        keep = row >= 0
        outside += int((~keep).sum())
        r, c, pc = row[keep], rep[keep], df["p_correct"].to_numpy()[keep]
        p[r, c] = pc
        present[r, c] = True
        right[r, c] = pc > threshold if k <= 2 else (df["predicted"] == df["label"]).fill_null(False).to_numpy()[keep]
    seen = present.sum(axis=1)
    if (own and outside) or (run.repeats and ((seen > 0) & (seen != run.repeats)).any()):
        from ambiguity.models.crossfit import finished_units

        done = len(finished_units(store, run.run_id))
        raise StatsError(f"the cross-fitting run of {run.model} is unfinished ({done} of {(run.folds or 0) * repeats} "
                         "(repeat, fold) done): run the same `ambiguity train ... --folds K` again to resume")
    return Repeated(p, right, present)
