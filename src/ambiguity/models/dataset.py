"""The data a model trains on: feature groups of the store as aligned matrices, with which inputs each segment has.

Segments without a label or a split are dropped and counted. Missing is normal: a
segment whose row in a feature group is not ``ok`` (failed, empty or missing; e.g.
no video track, so no landmarks) lacks that input, recorded in ``Dataset.present``.
Features are standardised with the mean and SD of the train split only. No torch
here: readers of the store (attribution tables, the committee) use it without
importing a network library.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from ambiguity.errors import ConfigError, ModelError
from ambiguity.extractors.registry import entries
from ambiguity.stores import schema as S

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore


# -- data -------------------------------------------------------------------------------------
@dataclass
class Dataset:
    """Aligned inputs of one or more feature groups; rows sorted by segment_id."""

    groups: tuple[str, ...]
    modalities: tuple[str, ...]
    segment_ids: list[str]
    X: list[np.ndarray]  # one float32 (n, d_g) array per group
    labels: list[str]
    classes: list[str]
    y: np.ndarray  # class index per row
    split: np.ndarray  # "train" | "val" | "test" per row
    dropped: dict[str, int] = field(default_factory=dict)
    feature_names: list[list[str]] = field(default_factory=list)
    #: (n, G) bool: the segment is ok in the group (an absent input's row of X is NaN); None: all present
    present: np.ndarray | None = None

    def __post_init__(self):
        if self.present is None:
            self.present = np.ones((len(self.segment_ids), len(self.groups)), dtype=bool)

    @property
    def mask(self) -> np.ndarray:
        """:attr:`present`, never None."""
        assert self.present is not None  # set in __post_init__
        return self.present

    def index(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)

    def subset(self, groups: Sequence[str]) -> Dataset:
        """The same rows with only some of the groups."""
        pos = [self.groups.index(g) for g in groups]
        return Dataset(
            tuple(groups), tuple(self.modalities[i] for i in pos), self.segment_ids, [self.X[i] for i in pos],
            self.labels, self.classes, self.y, self.split, dict(self.dropped), [self.feature_names[i] for i in pos],
            self.mask[:, pos],
        )

    def rows(self, keep: np.ndarray) -> Dataset:
        """Only the rows where ``keep`` (bool, n) is true, in order."""
        idx = np.flatnonzero(keep)
        return dataclasses.replace(
            self, segment_ids=[self.segment_ids[i] for i in idx], X=[x[idx] for x in self.X],
            labels=[self.labels[i] for i in idx], y=self.y[idx], split=self.split[idx], dropped=dict(self.dropped),
            present=self.mask[idx],
        )

    def for_model(self, groups: Sequence[str], maskable: bool) -> Dataset:
        """The groups of one model and the rows it can see: rows with at least one of its inputs when it
        can mask absent inputs (fusion), else rows with all of them (a probe, a unimodal model)."""
        sub = self.subset(groups)
        have = np.asarray(sub.mask.any(axis=1) if maskable else sub.mask.all(axis=1))
        if have.all():
            return sub
        out = sub.rows(have)
        out.dropped[f"no input among {', '.join(groups)}" if maskable else f"not ok in {', '.join(groups)}"] = int((~have).sum())
        return out

    def inputs(self) -> list[list[str]]:
        """Per row, the groups it has (what a fusion prediction saw)."""
        return [[g for g, p in zip(self.groups, row, strict=True) if p] for row in self.mask.tolist()]


def group_modality(store: FeatureStore, group: str) -> str:
    """The modality of a feature group: from its provenance, else its extractor's class, else its name."""
    prov = store.groups().get(group, {})
    if prov.get("modality"):
        return str(prov["modality"])
    name = prov.get("extractor") or group.split(".")[0]
    try:
        entry = entries().get(name)
        if entry is not None and entry.cls is not None:
            return entry.cls.modality
    except Exception:  # a broken plugin registry must not stop training
        pass
    return group.split(".")[0]


def group_matrix(store: FeatureStore, group: str,
                 segment_ids: Sequence[str] | None = None) -> tuple[list[str], np.ndarray, list[str]]:
    """ids, an (n, d) float32 array and the column names of a group's ``ok`` rows (of ``segment_ids`` only, when given)."""
    schema = store.schema(S.table_name(group))
    if "vector" in schema.names:
        ids, arr = store.vectors(group, segment_ids=segment_ids)
        return ids, arr, [f"{group}[{i}]" for i in range(arr.shape[1])]
    df = store.features(group, segment_ids=segment_ids)
    cols = [c for c, t in df.schema.items() if c not in ("segment_id", "status", "error") and t.is_numeric()]
    if not cols:
        raise ModelError(f"feature group {group!r} has neither a vector column nor numeric feature columns")
    arr = df.select(cols).cast({c: pl.Float64 for c in cols}).to_numpy().astype(np.float32)
    return df["segment_id"].to_list(), arr, cols


def load_dataset(store: FeatureStore, groups: Sequence[str], *, require: Sequence[str] = (), need_split: bool = True,
                 partial: bool = False) -> Dataset:
    """Inputs of ``groups`` for every labelled segment that is ``ok`` in ``groups`` and ``require``.

    ``need_split=False`` (cross-fitting) keeps labelled segments without a split too. ``partial=True``
    keeps a segment that is ok in at least one of ``groups`` (and in every group of ``require``): its
    absent inputs are NaN rows and :attr:`Dataset.present` says which it has.
    """
    groups = list(dict.fromkeys(groups))
    if not groups:
        raise ConfigError("name at least one feature group to train on")
    have = store.groups()
    missing = [g for g in (*groups, *require) if g not in have]
    if missing:
        raise ModelError(f"no feature group {', '.join(missing)}; the store has: {', '.join(have) or 'none'}")
    segs = store.segments(["segment_id", "label", "split"]).sort("segment_id")
    dropped: dict[str, int] = {}
    if need_split:
        labelled = segs.filter(segs["label"].is_not_null() & segs["split"].is_in(list(S.SPLITS)))
    else:
        labelled = segs.filter(segs["label"].is_not_null())
    if segs.height - labelled.height:
        dropped["no label or split" if need_split else "no label"] = segs.height - labelled.height
    keep = set(labelled["segment_id"].to_list())
    mats: dict[str, tuple[dict[str, int], np.ndarray, list[str]]] = {}
    oks: dict[str, set[str]] = {}
    for g in dict.fromkeys([*groups, *require]):
        st = store.group_status(g)
        ok = set(st.filter(st["status"] == "ok")["segment_id"].to_list())
        oks[g] = ok
        if g in groups:
            ids, arr, names = group_matrix(store, g)
            mats[g] = ({s: i for i, s in enumerate(ids)}, arr, names)
        if g in require or not partial:
            lost = keep - ok
            if lost:
                dropped[f"not ok in {g}"] = len(lost)
            keep &= ok
    if partial:
        some = set().union(*(oks[g] for g in groups))
        if keep - some:
            dropped[f"ok in none of {', '.join(groups)}"] = len(keep - some)
        keep &= some
    rows = labelled.filter(labelled["segment_id"].is_in(list(keep)))
    ids = rows["segment_id"].to_list()
    if not ids:
        every = "any" if partial else "every"
        raise ModelError(f"no labelled segment is ok in {every} group of {', '.join(groups)}")
    labels = rows["label"].to_list()
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise ModelError(f"the labelled segments have one class only ({classes[0]!r}): nothing to classify")
    cidx = {c: i for i, c in enumerate(classes)}
    X = []
    present = np.array([[s in oks[g] for g in groups] for s in ids], dtype=bool).reshape(len(ids), len(groups))
    for j, g in enumerate(groups):
        pos, arr, _ = mats[g]
        x = np.full((len(ids), arr.shape[1]), np.nan, dtype=np.float32)
        col = present[:, j]
        x[col] = arr[[pos[s] for s, h in zip(ids, col, strict=True) if h]]
        X.append(x)
    return Dataset(
        tuple(groups), tuple(group_modality(store, g) for g in groups), ids, X, labels, classes,
        np.array([cidx[c] for c in labels], dtype=np.int64), np.array(rows["split"].to_list()), dropped,
        [mats[g][2] for g in groups], present,
    )


def standardiser(X: np.ndarray, train_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and SD per column of the train rows (NaN/Inf ignored); 0 and 1 where undefined or constant."""
    X = np.asarray(X, dtype=np.float64)
    tr = np.where(np.isfinite(X[train_idx]), X[train_idx], np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        mean = np.nanmean(tr, axis=0)
        sd = np.nanstd(tr, axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
    return mean, sd


def apply_standardiser(X: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, int]:
    """z-scores with a saved mean and SD; non-finite values become 0 (the train mean)."""
    X = np.asarray(X, dtype=np.float64)
    bad = ~np.isfinite(X)
    with np.errstate(all="ignore"):
        Z = (np.where(bad, np.nan, X) - mean) / sd
    Z[bad] = 0.0
    return Z.astype(np.float32), int(bad.sum())


def standardise(X: np.ndarray, train_idx: np.ndarray) -> tuple[np.ndarray, int]:
    """z-scores with the train split's mean and SD; non-finite values become 0 (the train mean).

    Returns the standardised array and the number of non-finite values replaced.
    A constant feature (SD 0) is centred and left unscaled.
    """
    return apply_standardiser(X, *standardiser(X, train_idx))
