"""The committee behind ``ambiguity select``: the store's unimodal and fusion models, refitted.

The predictions table holds labelled segments only, so the committee is refitted
on the labelled segments with each model's stored training configuration (groups,
architecture, seed, epochs, ...) and then predicts the segments without a label.
Those are out of sample by construction: no model saw them (they have no label to
train on), whatever the scheme the store's models were trained on. Unlabelled rows ride along in the same
:class:`~ambiguity.models.dataset.Dataset` under the split ``unlabelled``: training
uses the ``train`` split only and picks the epoch on ``val``, so they never
influence a model, and the fit's predictions cover them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from ambiguity.errors import ModelError
from ambiguity.models.dataset import Dataset, group_matrix, load_dataset
from ambiguity.models.predictions import read_predictions
from ambiguity.models.spec import TrainConfig

if TYPE_CHECKING:
    from ambiguity.models.spec import TrainConfig
    from ambiguity.stores.lance import FeatureStore


UNLABELLED = "unlabelled"


@dataclass(frozen=True)
class Member:
    name: str
    groups: tuple[str, ...]
    config: TrainConfig


def members_from_store(store: FeatureStore) -> list[Member]:
    """One member per model of the predictions table that ``ambiguity train`` made (it names its groups)."""

    df = read_predictions(store, columns=["model", "groups", "config"]).unique("model", keep="first").sort("model")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    out = []
    for r in df.iter_rows(named=True):
        if not r["groups"]:
            continue  # imported predictions: nothing to refit
        cfg = json.loads(r["config"] or "{}")
        out.append(Member(r["model"], tuple(r["groups"]), TrainConfig(**{k: v for k, v in cfg.items() if k in known})))
    if len(out) < 2:
        raise ModelError("selection needs a committee of at least two trained models (run `ambiguity train GROUP GROUP ...`)")
    return out


def with_unlabelled(store: FeatureStore, groups: Sequence[str]):
    """The labelled dataset of ``groups`` plus every unlabelled segment that is ok in all of them."""

    ds = load_dataset(store, groups)
    seg = store.segments(["segment_id", "label"]).filter(pl.col("label").is_null())
    ids = set(seg["segment_id"].to_list())
    mats = []
    for g in ds.groups:
        st = store.group_status(g)
        ids &= set(st.filter(pl.col("status") == "ok")["segment_id"].to_list())
    new = sorted(ids)
    if not new:
        raise ModelError(f"no segment without a label is ok in every group of the committee ({', '.join(ds.groups)})")
    for g in ds.groups:
        gid, arr, _ = group_matrix(store, g)
        pos = {s: i for i, s in enumerate(gid)}
        mats.append(arr[[pos[s] for s in new]])
    return Dataset(
        ds.groups, ds.modalities, ds.segment_ids + new, [np.concatenate([a, b]) for a, b in zip(ds.X, mats, strict=True)],
        ds.labels + [""] * len(new), ds.classes, np.concatenate([ds.y, np.zeros(len(new), np.int64)]),
        np.concatenate([ds.split, np.array([UNLABELLED] * len(new))]), dict(ds.dropped), ds.feature_names,
    ), new


def committee_probs(ds, members: Sequence[Member]) -> np.ndarray:
    """Fit every member on ``ds`` (train split, epoch chosen on val): (members, rows, classes) probabilities."""
    from ambiguity.models.training import fit  # imports torch: 1.5 s CPU to import

    return np.stack([fit(ds.subset(list(m.groups)), m.config).probs for m in members])


def unlabelled_committee(store: FeatureStore) -> tuple[list[str], np.ndarray, list[Member], list[str]]:
    """(unlabelled ids, their committee probabilities (M, n, C), the members, the classes)."""
    members = members_from_store(store)
    groups = list(dict.fromkeys(g for m in members for g in m.groups))
    ds, new = with_unlabelled(store, groups)
    probs = committee_probs(ds, members)
    rows = np.flatnonzero(ds.split == UNLABELLED)
    return new, probs[:, rows, :], members, list(ds.classes)
