"""The ambiguity score of a segment: a weighted mean of components, each in [0, 1].

Each component is 1 where a segment looks most ambiguous by that measure (``conflict``
is ``ambiguity.stats.conflicts``' JSD, divided by its maximum ``min(log2 K, log2 C)`` for
``K`` models and ``C`` classes; ``disagreement`` is ``ambiguity.stats.quadrant_tables.quadrant_stability``):

==============  ======================================================================  ========================
component       value                                                                   needs
==============  ======================================================================  ========================
disagreement    P(red or green) over cross-fitting repeats, mean over unimodal models    ``train --folds K``
committee       vote entropy of the unimodal and fusion models' predicted labels        ``ambiguity train``
confidence      ``1 - |2 c - 1|`` of the cartography confidence ``c`` (1 at c = 0.5)     ``ambiguity train``
variability     ``min(1, 2 v)`` of the cartography variability ``v`` (SD over epochs)  ``ambiguity train``
knn             share of the k nearest neighbours (an embedding) with another label    an embedding group
conflict        Jensen-Shannon divergence of the unimodal models' predictions (base 2)  two unimodal models
annotators      ``(1 - m) / (1 - 1/C)``, ``m`` the majority share of the judgments      annotations
==============  ======================================================================  ========================

Out of sample only. ``committee`` and ``conflict`` read out-of-sample predictions
(:func:`ambiguity.stats.conflicts.mean_probs`: cross-fitted where every model
has them, else the fixed split's test segments only), the same scheme for both.
``confidence`` and ``variability`` come from training epochs, so they exist for
training segments only and are in sample by construction: their weight is 0
unless set (``--weight confidence=1``).

The score is ``sum_c w_c s_c / sum_c w_c`` over the components a segment has,
so it lies in [0, 1]; ``n_components`` says how many went in. Only segments
that have **every** available component (positive weight, at least one segment
with a value) are ranked (:func:`ranked`; ``complete`` says which): a missing
component is never counted as 0 and never lets a segment with fewer components
compete with the others. Weights default to 1 (0 for the cartography
components) and are set with ``weights={"knn": 2, "committee": 0}`` (CLI:
``--weight knn=2``). The variability of values in [0, 1] is at most 0.5, hence
the factor 2.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from ambiguity.errors import AmbiguityError, StatsError
from ambiguity.models.dataset import group_modality
from ambiguity.models.predictions import model_summary, read_dynamics
from ambiguity.stats.boundary_store import boundary
from ambiguity.stats.conflicts import conflict_scores, mean_probs
from ambiguity.stats.quadrant_tables import quadrant_stability, resolve_model, unimodal_models
from ambiguity.stats.select import vote_entropy
from ambiguity.stats.stability import of_kind
from ambiguity.stores.schema import table_name
from ambiguity.stores.tables import ANNOTATIONS, DYNAMICS, PREDICTIONS, TASKS

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore

COMPONENTS: dict[str, str] = {
    "disagreement": "run `ambiguity train GROUPS --folds 5` (cross-fitted quadrants)",
    "committee": "run `ambiguity train` (predictions of the unimodal and fusion models)",
    "confidence": "run `ambiguity train` (training dynamics)",
    "variability": "run `ambiguity train` (training dynamics)",
    "knn": "name an embedding group (--embedding GROUP, e.g. text.minilm)",
    "conflict": "train at least two unimodal models (`ambiguity train GROUPS --folds 5`, or `ambiguity train` for test segments)",
    "annotators": "collect annotations (`ambiguity annotate serve` or `ambiguity annotations import`)",
}
#: in sample (training segments only, from training epochs): off unless a weight is given
IN_SAMPLE = ("confidence", "variability")
DEFAULT_WEIGHTS: dict[str, float] = {c: 0.0 if c in IN_SAMPLE else 1.0 for c in COMPONENTS}


def check_weights(weights: Mapping[str, Any] | None) -> dict[str, float]:
    """Default weights updated by ``weights``; refuses unknown names and negative or non-finite values."""
    out = dict(DEFAULT_WEIGHTS)
    for k, v in (weights or {}).items():
        if k not in COMPONENTS:
            raise StatsError(f"unknown score component {k!r}: use {', '.join(COMPONENTS)}")
        try:
            w = float(v)
        except (TypeError, ValueError):
            raise StatsError(f"weight of {k!r} must be a number, got {v!r}") from None
        if not math.isfinite(w) or w < 0:
            raise StatsError(f"weight of {k!r} must be finite and >= 0, got {v!r}")
        out[k] = w
    if not any(out.values()):
        raise StatsError("every weight is 0: give at least one component a positive weight")
    return out


def combine(components: pl.DataFrame, weights: Mapping[str, Any] | None = None) -> pl.DataFrame:
    """Add ``score`` and ``n_components`` to a frame with one column per component (nulls where missing)."""
    w = check_weights(weights)
    cols = [c for c in COMPONENTS if c in components.columns and w[c] > 0]
    if not cols:
        return components.with_columns(pl.lit(None, pl.Float64).alias("score"), pl.lit(0, pl.Int64).alias("n_components"))
    num = pl.sum_horizontal([pl.col(c).fill_null(0.0) * w[c] for c in cols])
    den = pl.sum_horizontal([pl.col(c).is_not_null().cast(pl.Float64) * w[c] for c in cols])
    n = pl.sum_horizontal([pl.col(c).is_not_null().cast(pl.Int64) for c in cols])
    return components.with_columns(
        pl.when(den > 0).then(num / den).otherwise(None).alias("score"), n.alias("n_components")
    )


@dataclass(frozen=True)
class ScoreResult:
    """Per-segment components and score, and what each missing component needs."""

    frame: pl.DataFrame
    weights: dict[str, float]
    available: tuple[str, ...]
    missing: dict[str, str] = field(default_factory=dict)

    def to_polars(self) -> pl.DataFrame:
        return self.frame

    def complete(self) -> pl.DataFrame:
        """The segments that have every available component: the only ones ranked."""
        return self.frame.filter(pl.col("score").is_not_null() & (pl.col("n_components") == len(self.available)))

    def top(self, n: int) -> pl.DataFrame:
        return self.complete().sort(["score", "segment_id"], descending=[True, False]).head(n)


def _committee(store: FeatureStore) -> pl.DataFrame:
    """Vote entropy of every model's out-of-sample prediction (one scheme, see the module notes)."""

    # models only: people (the human scheme) are never mixed into a committee of models
    models = sorted(of_kind(model_summary(store), human=False)["model"].to_list())
    if len(models) < 2:
        raise StatsError("the committee needs at least two models")
    meta, P, classes, _ = mean_probs(store, models)
    if len(set(classes)) > 1:
        raise StatsError("the models were trained on different classes")
    every = ~np.isnan(P).any(axis=(1, 2))  # predicted by every model
    if not every.any():
        raise StatsError("no segment is predicted by every model")
    return pl.DataFrame({"segment_id": meta["segment_id"].filter(pl.Series(every)),
                         "committee": vote_entropy(P[every].transpose(1, 0, 2))})


def _disagreement(store: FeatureStore, unimodal: list[str], fusion: str,
                  stability: Mapping[str, pl.DataFrame] | None = None) -> pl.DataFrame:
    """Mean over the unimodal models of P(red or green) across repeats (stats.quadrants.quadrant_stability);
    a frame in ``stability`` is used instead of computing that model's again."""
    have = stability or {}
    parts = [(have[m] if m in have else quadrant_stability(store, m, fusion)).select("segment_id", "disagreement_p")
             for m in unimodal]
    return pl.concat(parts).group_by("segment_id").agg(pl.col("disagreement_p").mean().alias("disagreement"))


def _conflict(store: FeatureStore) -> pl.DataFrame:
    """JSD of the unimodal models' distributions (bits), divided by its maximum min(log2 K, log2 C)."""
    c = conflict_scores(store)
    n_classes = len(read_classes(store))
    top = pl.min_horizontal(pl.col("n_models").cast(pl.Float64).log(2), pl.lit(math.log2(max(n_classes, 2))))
    return c.select("segment_id", (pl.col("jsd") / top).clip(0, 1).alias("conflict"))


def read_classes(store: FeatureStore) -> list[str]:
    # either scheme (a store trained only with --folds has no fixed rows); one row is enough: a whole
    # read of this list column was ~0.5 GB at 10^6 segments x 16 rows (bench/million.py)
    return list(PREDICTIONS.read(store, ["classes"], limit=1)["classes"][0])


def _dynamics(store: FeatureStore) -> pl.DataFrame:
    # the mean over models: each model's training run is one view of how hard the segment is to learn
    d = read_dynamics(store).select("model", "segment_id", "confidence", "variability")
    d = d.group_by("segment_id").agg(pl.col("confidence").mean(), pl.col("variability").mean())
    return d.select(
        "segment_id",
        (1 - (2 * pl.col("confidence") - 1).abs()).clip(0, 1).alias("confidence"),
        (2 * pl.col("variability")).clip(0, 1).alias("variability"),
    )


def _knn(store: FeatureStore, group: str, k: int) -> pl.DataFrame:
    res = boundary(store, group, k=k, n_permutations=0)
    return res.segments.select("segment_id", pl.col("other_share").alias("knn"))


def _annotators(store: FeatureStore) -> pl.DataFrame:
    a = ANNOTATIONS.read(store, ["task", "segment_id", "judgment", "annotator"])
    if a.height == 0:
        raise StatsError("no annotations")
    tasks = TASKS.read(store, ["task", "choices"]).unique("task") if TASKS.exists(store) else pl.DataFrame()
    n_choices = {r["task"]: len(json.loads(r["choices"] or "[]")) for r in tasks.iter_rows(named=True)}
    counts = a.group_by("task", "segment_id", "judgment").len("n")
    per = counts.group_by("task", "segment_id").agg(pl.col("n").sum().alias("total"), pl.col("n").max().alias("top"), pl.len().alias("k"))
    per = per.filter(pl.col("total") >= 2)
    per = per.with_columns(pl.col("task").replace_strict(n_choices, default=None, return_dtype=pl.Int64).alias("C"))
    per = per.with_columns(pl.max_horizontal(pl.col("C").fill_null(2), pl.col("k"), pl.lit(2)).alias("C"))
    per = per.with_columns(((1 - pl.col("top") / pl.col("total")) / (1 - 1 / pl.col("C"))).clip(0, 1).alias("annotators"))
    return per.group_by("segment_id").agg(pl.col("annotators").mean())


def ambiguity_scores(
    store: FeatureStore,
    *,
    unimodal: str | None = None,
    fusion: str | None = None,
    embedding: str | None = None,
    k: int = 10,
    weights: Mapping[str, Any] | None = None,
    stability: Mapping[str, pl.DataFrame] | None = None,
) -> ScoreResult:

    """Every score component the store allows, and their weighted mean (see the module notes).

    ``unimodal``/``fusion`` pick the pairs whose cross-fitted disagreement is used (default:
    every unimodal model with the store's fusion model; the component is the mean over pairs);
    ``embedding`` names the vector group of the kNN component (none: no kNN component).
    Missing inputs leave their component out and say what to run (``missing``). ``stability``: cross-fitted
    quadrant frames already computed (every labelled segment, threshold 0.5, no stability cut), by unimodal
    model, used instead of computing them again (the report passes its own).
    """
    w = check_weights(weights)
    seg = store.segments(["segment_id"]).sort("segment_id")
    frame = seg
    missing: dict[str, str] = {}
    pair = _pair(store, unimodal, fusion)

    def add(names: tuple[str, ...], fn, *args) -> None:
        nonlocal frame
        try:
            part = fn(*args)
        except (AmbiguityError, ValueError, KeyError, TypeError) as exc:
            for n in names:  # the error's own advice when it has one
                missing[n] = str(exc) if "run `" in str(exc) else f"{COMPONENTS[n]} ({exc})"
            return
        frame = frame.join(part.select("segment_id", *names), on="segment_id", how="left")

    if pair is None:
        missing["disagreement"] = COMPONENTS["disagreement"]
    else:
        add(("disagreement",), _disagreement, store, *pair, stability)
    if PREDICTIONS.exists(store):
        add(("committee",), _committee, store)
    else:
        missing["committee"] = COMPONENTS["committee"]
    if not any(w[c] for c in IN_SAMPLE):
        for c in IN_SAMPLE:
            missing[c] = "in sample (training segments only): off by default; give it a weight to include it"
    elif DYNAMICS.exists(store):
        add(("confidence", "variability"), _dynamics, store)
    else:
        missing["confidence"] = missing["variability"] = COMPONENTS["confidence"]
    if embedding:
        add(("knn",), _knn, store, embedding, k)
    else:
        missing["knn"] = COMPONENTS["knn"]
    if pair is None:
        missing["conflict"] = COMPONENTS["conflict"]
    else:
        add(("conflict",), _conflict, store)
    if ANNOTATIONS.exists(store):
        add(("annotators",), _annotators, store)
    else:
        missing["annotators"] = COMPONENTS["annotators"]
    for c in COMPONENTS:
        if c not in frame.columns:
            frame = frame.with_columns(pl.lit(None, pl.Float64).alias(c))
    frame = combine(frame.select("segment_id", *COMPONENTS), w)
    available = tuple(c for c in COMPONENTS if c not in missing and w[c] > 0 and frame[c].null_count() < frame.height)
    for c in COMPONENTS:
        if c not in available and c not in missing:
            missing[c] = "weight 0" if not w[c] else COMPONENTS[c] + " (no segment has a value)"
    return ScoreResult(frame.select("segment_id", "score", "n_components", *COMPONENTS), w, available, missing)


def _pair(store: FeatureStore, unimodal: str | None, fusion: str | None) -> tuple[list[str], str] | None:
    if not PREDICTIONS.exists(store):
        return None
    uni = [resolve_model(store, unimodal)] if unimodal else sorted(unimodal_models(store))
    fus = resolve_model(store, fusion) if fusion else fusion_model(store)
    return (uni, fus) if uni and fus else None


def default_embedding(store: FeatureStore) -> str | None:
    """The kNN component's default vector group: the store's text embedding, else its first vector group."""

    vec = [g for g in store.groups() if "vector" in store.schema(table_name(g)).names]
    text = [g for g in vec if group_modality(store, g) == "text"]
    found = text or vec
    return found[0] if found else None


def fusion_model(store: FeatureStore) -> str | None:
    """The store's model that saw several modalities ("fusion" when there are several and one has that name)."""
    s = model_summary(store)
    multi = [r["model"] for r in s.iter_rows(named=True) if len(r["modalities"] or []) > 1]
    if len(multi) == 1:
        return multi[0]
    return "fusion" if "fusion" in multi else None


def rank(store: FeatureStore, top: int = 50, **kwargs: Any) -> pl.DataFrame:
    """The ``top`` most ambiguous segments with label, split and transcript (kwargs: :func:`ambiguity_scores`);
    only segments with every available component compete (:meth:`ScoreResult.complete`).

    Columns: rank, segment_id, score, n_components, one column per available
    component, label, split, transcript. Ties are broken by segment id.
    """
    return ranked(store, ambiguity_scores(store, **kwargs), top)


def ranked(store: FeatureStore, res: ScoreResult, top: int) -> pl.DataFrame:
    """:func:`rank` of an already computed :class:`ScoreResult`."""
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise StatsError(f"top must be a positive integer, got {top!r}")
    if not res.available:
        raise StatsError("no score component is available: " + "; ".join(f"{k}: {v}" for k, v in res.missing.items()))
    best = res.top(top)
    if best.height == 0:
        raise StatsError(f"no segment has every available component ({', '.join(res.available)}): lower the weight of "
                         "a component to 0 to rank without it")
    seg = store.segments(["segment_id", "label", "split", "transcript"])
    out = best.join(seg, on="segment_id", how="left")
    out = out.with_columns(pl.int_range(1, out.height + 1, dtype=pl.Int64).alias("rank"))
    comps = [c for c in COMPONENTS if c in res.available]
    return out.select("rank", "segment_id", "score", "n_components", *comps, "label", "split", "transcript")
