"""Confidence quadrants, per-model performance (Table 1) and pairwise disagreement (Table 2).

With two classes a model is *right* on a segment when its probability of the
true label, ``p_correct``, is **strictly greater** than the threshold (0.5 by
default), as in the paper's Figure 2; the boundary case ``p_correct ==
threshold`` counts as *wrong*. With more classes a model is right when its
predicted label (argmax) is the true one (:mod:`ambiguity.stats.assign`), and
every caption says which rule was used. Quadrants of a (unimodal, fusion) pair of models:

=========  ===============  ===============
quadrant   unimodal         fusion
=========  ===============  ===============
red        right            wrong
green      wrong            right
blue       right            right
yellow     wrong            wrong
=========  ===============  ===============

With two classes and threshold 0.5, "right" equals "the predicted label is
the true one" (except for an exact 0.5 tie). With more classes
``p_correct > 0.5`` is sufficient but not necessary for a right argmax (a
segment predicted correctly with ``p_correct = 0.4`` would land among the
wrong ones), which is why the argmax decides there.

Table 2's disagreement rate of two models is the share of segments (that both
predicted) whose *predicted labels* differ; its percentile bootstrap CI uses
the fact that the mean of ``n`` binary values resampled with replacement is
distributed exactly as ``Binomial(n, rate) / n``, so the bootstrap replicates
are drawn from that binomial directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from ambiguity.constants import QUADRANT_MEANING, QUADRANTS, Scheme
from ambiguity.errors import StatsError
from ambiguity.stats.assign import check_threshold, is_right, rule
from ambiguity.stats.stability import (
    SHARE_COLUMNS,
    RepeatedDisagreement,
    SchemeUsed,
    of_kind,
    pair_frame,
    rate_matrix,
    resolve_scheme,
)
from ambiguity.stores.schema import parse_splits
from ambiguity.stores.tables import PREDICTIONS

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore


# -- pure functions ------------------------------------------------------------------------------
def quadrant_counts(quadrants: Sequence[str] | np.ndarray | pl.Series) -> dict[str, int]:
    """Segments per quadrant, every quadrant present (zero if empty). Counted in polars: no Python string per row."""
    q = quadrants if isinstance(quadrants, pl.Series) else pl.Series(np.asarray(quadrants, dtype=object).tolist(), dtype=pl.String)
    vc = q.cast(pl.String).value_counts()
    got = dict(zip(vc[vc.columns[0]].to_list(), vc["count"].to_list(), strict=True))
    unknown = set(got) - set(QUADRANTS)
    if unknown:
        raise StatsError(f"unknown quadrant(s) {sorted(map(str, unknown))}; quadrants are {', '.join(QUADRANTS)}")
    return {name: int(got.get(name, 0)) for name in QUADRANTS}


def label_codes(*columns: pl.Series) -> tuple[list[np.ndarray], list[str]]:
    """Each column as integer codes into the sorted labels of all of them (-1: no label), and those labels.

    Tables 1 and 2 compare labels as small integers: at 10^6 segments a Python string per row was most of
    their memory (bench/million.py)."""
    labels = sorted(set(pl.concat([c.cast(pl.String).drop_nulls().unique() for c in columns]).to_list())) if columns else []
    enum = pl.Enum(labels)
    return [c.cast(pl.String).cast(enum).to_physical().cast(pl.Int64).fill_null(-1).to_numpy() for c in columns], labels


def disagreement_rates(predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairwise disagreement of predicted labels; ``predicted`` is (models, segments), None where missing
    (or integer label codes, negative where missing).

    Returns (rate, n): rate[i, j] is the share of segments that both models
    predicted on which their labels differ (NaN if none), n[i, j] that count.
    Symmetric, with a zero diagonal.
    """
    P = np.asarray(predicted)
    if P.ndim != 2:
        raise StatsError(f"predicted must be (models, segments); got shape {P.shape}")
    if P.dtype.kind not in "iu":
        rows = [pl.Series(r.tolist(), dtype=pl.String) for r in P.astype(object)] if P.size else []
        P = np.stack(label_codes(*rows)[0]) if rows else np.zeros(P.shape, np.int64)
    m = P.shape[0]
    have = P >= 0
    rate, n = np.zeros((m, m)), np.zeros((m, m), dtype=np.int64)
    for i in range(m):
        n[i, i] = int(have[i].sum())
        rate[i, i] = 0.0 if n[i, i] else np.nan
    for i, j in combinations(range(m), 2):
        both = have[i] & have[j]
        k = int(both.sum())
        r = float((P[i, both] != P[j, both]).mean()) if k else np.nan
        rate[i, j] = rate[j, i] = r
        n[i, j] = n[j, i] = k
    return rate, n


def bootstrap_rate_ci(rate: float, n: int, *, n_boot: int = 2000, ci: float = 0.95, rng=None) -> tuple[float, float]:
    """Percentile bootstrap CI of a proportion of ``n`` binary values (see the module notes)."""
    if n == 0 or not np.isfinite(rate):
        return (np.nan, np.nan)
    rng = rng if rng is not None else np.random.default_rng(0)
    reps = rng.binomial(n, rate, size=n_boot) / n
    a = (1 - ci) / 2
    return float(np.quantile(reps, a)), float(np.quantile(reps, 1 - a))


# -- results -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DisagreementResult:
    """Table 2: pairwise disagreement of predicted labels with bootstrap CIs."""

    models: tuple[str, ...]
    rate: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n: np.ndarray
    splits: tuple[str, ...]
    n_boot: int
    ci: float
    seed: int

    def to_polars(self) -> pl.DataFrame:
        """Long form: model_a, model_b, n, rate, ci_low, ci_high (each unordered pair once)."""
        return pair_frame(self.models, self.n, {"rate": self.rate, "ci_low": self.low, "ci_high": self.high})

    def matrix(self, digits: int = 3, with_ci: bool = True) -> pl.DataFrame:
        """Wide form for printing: one row and one column per model, "rate [low, high]" cells, "–" on the diagonal."""
        def interval(i: int, j: int) -> str:
            return f" [{self.low[i, j]:.{digits}f}, {self.high[i, j]:.{digits}f}]"

        # n: the segments each model predicted (a pair's rate covers those both predicted: to_polars())
        return rate_matrix(self.models, self.rate, digits, interval if with_ci else None).with_columns(
            pl.Series("n", [int(self.n[i, i]) for i in range(len(self.models))], dtype=pl.Int64))


def disagreement(
    predictions: pl.DataFrame,
    models: Sequence[str] | None = None,
    *,
    n_boot: int = 2000,
    ci: float = 0.95,
    seed: int = 0,
    splits: Sequence[str] = (),
) -> DisagreementResult:

    """Table 2 from prediction rows (columns model, segment_id, predicted)."""
    for c in ("model", "segment_id", "predicted"):
        if c not in predictions.columns:
            raise StatsError(f"predictions need a {c!r} column")
    if not 0 < ci < 1:
        raise StatsError(f"ci={ci}: use a level in (0, 1)")
    if n_boot < 1:
        raise StatsError(f"n_boot={n_boot}: use at least 1")
    present = list(dict.fromkeys(predictions["model"].to_list()))
    models = list(models) if models is not None else present
    unknown = [m for m in models if m not in present]
    if unknown:
        raise StatsError(f"no predictions for model(s) {', '.join(unknown)}; have: {', '.join(present)}")
    if predictions.select(["model", "segment_id"]).is_duplicated().any():
        raise StatsError("a model has two predictions for one segment")
    wide = predictions.filter(pl.col("model").is_in(models)).pivot(on="model", index="segment_id", values="predicted")
    P = np.stack(label_codes(*[wide[m] for m in models])[0]) if wide.height else np.empty((len(models), 0), np.int64)
    rate, n = disagreement_rates(P)
    rng = np.random.default_rng(seed)
    low, high = np.full_like(rate, np.nan), np.full_like(rate, np.nan)
    for i, j in combinations(range(len(models)), 2):
        lo, hi = bootstrap_rate_ci(rate[i, j], int(n[i, j]), n_boot=n_boot, ci=ci, rng=rng)
        low[i, j] = low[j, i] = lo
        high[i, j] = high[j, i] = hi
    for i in range(len(models)):
        low[i, i] = high[i, i] = 0.0
    return DisagreementResult(tuple(models), rate, low, high, n, tuple(splits or ()), n_boot, ci, seed)


def performance(predictions: pl.DataFrame, models: Sequence[str] | None = None) -> pl.DataFrame:
    """Table 1 from prediction rows: model, modalities, n, accuracy, F1 (macro-averaged, any number of classes).

    No predicted label (people's tie under the human scheme) is wrong, and no class of its own in the F1.
    ``modalities`` and ``kind`` come from the first row of each model when those columns are there."""
    for c in ("model", "label", "predicted"):
        if c not in predictions.columns:
            raise StatsError(f"predictions need a {c!r} column")
    present = predictions["model"].unique(maintain_order=True).to_list()
    models = list(models) if models is not None else present
    rows = []
    for m in models:
        d = predictions.filter(pl.col("model") == m)
        if d.height == 0:
            raise StatsError(f"no predictions for model {m!r} in the chosen splits")
        mods = d["modalities"].to_list()[0] or [] if "modalities" in d.columns else []
        rows.append({"model": m, "modalities": "+".join(dict.fromkeys(mods)), "kind": d["kind"][0] if "kind" in d.columns else None,
                     **scores_from_counts(d.group_by("label", "predicted").len())})
    return pl.DataFrame(rows, schema=_PERFORMANCE)


_PERFORMANCE = {"model": pl.String, "modalities": pl.String, "kind": pl.String, "n": pl.Int64, "accuracy": pl.Float64, "f1": pl.Float64}


def scores_from_counts(counts: pl.DataFrame) -> dict[str, float | int]:
    """n, accuracy and macro F1 from (label, predicted, len) counts: sklearn's scores of the rows, each
    distinct pair given once with its count as the sample weight (the same numbers, without a row per segment)."""
    from sklearn.metrics import accuracy_score, f1_score

    (y, p), labels = label_codes(counts["label"], counts["predicted"])  # -1: no predicted label
    w = counts["len"].to_numpy().astype(np.float64)
    return {"n": int(w.sum()), "accuracy": float(accuracy_score(y, p, sample_weight=w)),
            "f1": float(f1_score(y, p, labels=list(range(len(labels))), average="macro", zero_division=0, sample_weight=w))}


# -- store-backed -------------------------------------------------------------------------------
def resolve_model(store: FeatureStore, name: str, summary: pl.DataFrame | None = None) -> str:
    """A model name, or a modality naming exactly one unimodal model (``text`` -> ``text.minilm``).

    ``summary``: the store's ``model_summary`` when the caller has it already (it reads the
    whole predictions table).
    """
    from ambiguity.models.predictions import model_summary

    summary = model_summary(store) if summary is None else summary
    names = summary["model"].to_list()
    if name in names:
        return name
    match = [r["model"] for r in summary.iter_rows(named=True) if list(r["modalities"] or []) == [name]]
    if len(match) == 1:
        return match[0]
    if len(match) > 1:
        raise StatsError(f"modality {name!r} has several unimodal models ({', '.join(match)}): name one")
    raise StatsError(f"no model {name!r} in the predictions table; models: {', '.join(names) or 'none'}")


def unimodal_models(store: FeatureStore, *, human: bool = False) -> list[str]:
    """Models that saw exactly one modality (``human``: the human predictors of one condition instead)."""
    from ambiguity.models.predictions import model_summary

    s = of_kind(model_summary(store), human)
    return [r["model"] for r in s.iter_rows(named=True) if len(r["modalities"] or []) == 1]


def ordered_models(store: FeatureStore, summary: pl.DataFrame | None = None, *, human: bool = False) -> list[str]:
    """Every model (``human``: every human predictor): unimodal ones first, each part sorted by name (the row
    order of Tables 1 and 2)."""
    from ambiguity.models.predictions import model_summary

    s = of_kind(model_summary(store) if summary is None else summary, human)
    uni = sorted(r["model"] for r in s.iter_rows(named=True) if len(r["modalities"] or []) == 1)
    return uni + sorted(m for m in s["model"].to_list() if m not in uni)


_NO_CUT = "a stability cut needs cross-fitted quadrants (--scheme crossfit): the fixed split has one quadrant per segment"


def _scheme_splits(splits, scheme: str) -> tuple[str, ...] | None:
    """The splits to read: the named ones, else test (fixed) or every labelled segment (crossfit, human: None)."""
    if splits is None or (not isinstance(splits, str) and len(splits) == 0):
        return Scheme.HELD_OUT if scheme == "fixed" else None
    return parse_splits(splits)


def load_quadrants(store: FeatureStore, unimodal: str, fusion: str, splits=None, threshold: float = 0.5, *,
                   scheme: str = "auto", min_stability: float | None = None, ci: float = 0.95) -> pl.DataFrame:
    """The quadrant of every segment that both models predicted, in the given splits.

    Columns: segment_id, quadrant ("red" | "green" | "blue" | "yellow"),
    p_unimodal, p_fusion, label, split, scheme; sorted by segment_id.
    ``unimodal`` and ``fusion`` are model names (a modality name picks its one
    unimodal model). With two classes right means ``p_correct > threshold`` (equal
    counts as wrong); with more, the predicted label is the true one. ``scheme``: ``fixed`` (one split; default splits: test),
    ``crossfit`` (every labelled segment, R repeats; default: all splits) or
    ``auto`` (crossfit when both models have it), or ``human`` (people as predictors, ``human:audio`` against
    ``human:all``: every judged segment; a tie has no predicted label and is not right). With crossfit the quadrant
    is the segment's modal one, p_unimodal and p_fusion are means over the
    repeats, and the columns of :func:`ambiguity.stats.stability.stability_from_repeats`
    follow (shares, stability, disagreement_p with its Wilson interval at level
    ``ci``, n_repeats); ``min_stability`` keeps segments at or above that stability.
    """
    from ambiguity.models.predictions import model_summary

    summary = model_summary(store)
    uni, fus = resolve_model(store, unimodal, summary), resolve_model(store, fusion, summary)
    if min_stability and scheme == "fixed":
        raise StatsError(_NO_CUT)
    scheme = resolve_scheme(summary, [uni, fus], scheme, Scheme.WITH_HUMAN)
    return _quadrant_frame(store, uni, fus, _scheme_splits(splits, scheme), threshold, scheme, min_stability, ci)[0]


def _quadrant_frame(store: FeatureStore, uni: str, fus: str, splits, threshold: float, scheme: str = "fixed",
                    min_stability: float | None = None, ci: float = 0.95) -> tuple[pl.DataFrame, SchemeUsed]:
    """:func:`load_quadrants` for resolved model names and scheme, with the scheme's description."""
    from ambiguity.models.predictions import read_predictions
    from ambiguity.stats.stability import check_min_stability

    min_stability = check_min_stability(min_stability)
    if scheme == "crossfit":
        return _crossfit_frame(store, uni, fus, splits, threshold, min_stability, ci)
    if min_stability:
        raise StatsError(_NO_CUT)
    cols = ["segment_id", "p_correct", "predicted", "label", "split", "classes"]
    pu = read_predictions(store, [uni], splits, scheme=scheme, columns=cols)
    pf = read_predictions(store, [fus], splits, scheme=scheme, columns=["segment_id", "p_correct", "predicted", "label", "classes"])
    df = pu.rename({"p_correct": "p_unimodal", "predicted": "pred_unimodal"}).join(
        pf.rename({"p_correct": "p_fusion", "predicted": "pred_fusion", "label": "label_fusion", "classes": "classes_fusion"}),
        on="segment_id", how="inner"
    )
    if df.height and (df["label"] != df["label_fusion"]).any():
        raise StatsError(f"models {uni!r} and {fus!r} were trained on different labels for some segments: retrain one")
    df = df.sort("segment_id")
    k = n_classes(df)
    q = _quadrants(df, k, threshold)
    frame = df.select(
        "segment_id",
        q,
        "p_unimodal",
        "p_fusion",
        "label",
        "split",
        pl.lit(scheme).alias("scheme"),
    )
    return frame, SchemeUsed(scheme, splits)


def n_classes(df: pl.DataFrame) -> int:
    """The number of classes of the models behind a joined prediction frame (2 when it is empty)."""
    if not df.height:
        return 2
    first = [df[c][0] for c in ("classes", "classes_fusion") if c in df.columns]
    return max([len(c) for c in first if c is not None] or [2])


def _quadrants(df: pl.DataFrame, k: int, threshold: float) -> pl.Series:
    """The ``quadrant`` column of a joined frame, built without a Python object per row (at 10^6
    segments x 3 repeats the label and prediction lists were ~0.8 GB; bench/million.py)."""
    if not df.height:
        return pl.Series("quadrant", [], dtype=pl.String)
    if k <= 2:
        u = is_right(df["p_unimodal"].to_numpy(), None, None, k, threshold)
        f = is_right(df["p_fusion"].to_numpy(), None, None, k, threshold)
    else:  # predicted == label, compared in polars (a missing one is not right)
        check_threshold(k, threshold)
        u = (df["pred_unimodal"] == df["label"]).fill_null(False).to_numpy()
        f = (df["pred_fusion"] == df["label"]).fill_null(False).to_numpy()
    u, f = np.asarray(u, dtype=bool), np.asarray(f, dtype=bool)
    code = np.select([u & ~f, ~u & f, u & f], [0, 1, 2], default=3)
    # the same rule as assign.quadrants_from_right, as codes into QUADRANTS (red, green, blue, yellow)
    return pl.Series("quadrant", list(QUADRANTS), dtype=pl.String).gather(code).alias("quadrant")


def _crossfit_frame(store: FeatureStore, uni, fus, splits, threshold, min_stability, ci) -> tuple[pl.DataFrame, SchemeUsed]:
    """The cross-fitted quadrant frame: both models' rows as (segment x repeat) arrays on the unimodal model's
    segments (stats.repeats), a quadrant per repeat where both predicted, then the stability columns."""
    from ambiguity.stats.repeats import SegmentIndex, crossfit_run, read_repeated, segment_index
    from ambiguity.stats.stability import stability_table

    ru, rf = crossfit_run(store, uni, splits), crossfit_run(store, fus, splits)
    if ru.run_id != rf.run_id:
        raise StatsError(f"{uni} and {fus} come from different cross-fitting runs (different folds): train them in one "
                         "`ambiguity train GROUPS --folds K` call")
    index = segment_index(store, ru, splits)
    k = max(len(ru.classes), len(rf.classes), 2)
    pos = SegmentIndex(index["segment_id"])
    u = read_repeated(store, ru, pos, splits, threshold, n_classes=k, own=True)
    f = read_repeated(store, rf, pos, splits, threshold, n_classes=k)
    both = u.present & f.present
    code = np.select([u.right & ~f.right, ~u.right & f.right, u.right & f.right], [0, 1, 2], default=3).astype(np.int8)
    code[~both] = -1  # the same rule as assign.quadrants_from_right, as codes into QUADRANTS
    keep = both.any(axis=1)
    pu, pf = np.where(both, u.p, np.nan)[keep], np.where(both, f.p, np.nan)[keep]
    index = index.filter(pl.Series(keep))
    st = stability_table(index["segment_id"], code[keep], pu, pf, ci=ci)
    frame = st.with_columns(index["label"], index["split"])
    if min_stability:
        frame = frame.filter(pl.col("stability") >= min_stability)
    lead = ["segment_id", "quadrant", "p_unimodal", "p_fusion", "label", "split"]
    frame = frame.with_columns(pl.lit("crossfit").alias("scheme"))
    frame = frame.select(*lead, "scheme", *[c for c in frame.columns if c not in lead and c != "scheme"])
    return frame, SchemeUsed("crossfit", splits, ru.folds, ru.repeats, ru.group_by, min_stability)


@dataclass(frozen=True)
class QuadrantResult:
    unimodal: str
    fusion: str
    threshold: float
    splits: tuple[str, ...] | None
    frame: pl.DataFrame
    scheme: SchemeUsed
    n_classes: int = 2

    @property
    def rule(self) -> str:
        """When a model counts as right, in words (see :mod:`ambiguity.stats.assign`)."""
        return rule(self.n_classes, self.threshold)

    @property
    def counts(self) -> dict[str, int]:
        return quadrant_counts(self.frame["quadrant"].to_list())

    def to_polars(self) -> pl.DataFrame:
        return self.frame

    def caption(self) -> str:
        sch = self.scheme.caption()
        return f"Quadrants: {self.unimodal} vs {self.fusion}, {sch}, {self.rule}, n = {self.frame.height}"

    def counts_frame(self) -> pl.DataFrame:
        """Segments per quadrant; with crossfit also the mean stability of each (modal) quadrant's segments."""
        n = self.frame.height
        out = pl.DataFrame(
            {
                "quadrant": list(QUADRANTS),
                "meaning": [QUADRANT_MEANING[q] for q in QUADRANTS],
                "n": [self.counts[q] for q in QUADRANTS],
                "share": [self.counts[q] / n if n else float("nan") for q in QUADRANTS],
            }
        )
        if "stability" in self.frame.columns:
            st = {q: self.frame.filter(pl.col("quadrant") == q)["stability"].mean() for q in QUADRANTS}
            out = out.with_columns(pl.Series("mean_stability", [st[q] for q in QUADRANTS], dtype=pl.Float64))
        return out


def quadrants(store: FeatureStore, unimodal: str, fusion: str, splits=None, threshold: float = 0.5, *, scheme: str = "auto",
              min_stability: float | None = None, ci: float = 0.95, summary: pl.DataFrame | None = None) -> QuadrantResult:
    """``summary``: :func:`ambiguity.models.predictions.model_summary` when the caller has it (it scans a column
    of every prediction row)."""
    from ambiguity.models.predictions import model_summary

    summary = model_summary(store) if summary is None else summary
    uni, fus = resolve_model(store, unimodal, summary), resolve_model(store, fusion, summary)
    if min_stability and scheme == "fixed":
        raise StatsError(_NO_CUT)
    scheme = resolve_scheme(summary, [uni, fus], scheme, Scheme.WITH_HUMAN)
    splits = _scheme_splits(splits, scheme)
    frame, info = _quadrant_frame(store, uni, fus, splits, threshold, scheme, min_stability, ci)
    return QuadrantResult(uni, fus, threshold, splits, frame, info, model_classes(store, fus))


def model_classes(store: FeatureStore, model: str) -> int:
    """How many classes ``model`` predicts (from one of its prediction rows)."""
    df = PREDICTIONS.read(store, ["classes"], model=model, limit=1)
    first = df["classes"].to_list()[0] if df.height else None
    return len(first) if first else 2


def _table_models(store: FeatureStore, models, scheme: str, summary: pl.DataFrame | None = None) -> tuple[list[str], str, pl.DataFrame]:
    from ambiguity.models.predictions import model_summary

    summary = model_summary(store) if summary is None else summary
    if models:
        models = [resolve_model(store, m, summary) for m in models]
    else:  # people or models, never both
        models = ordered_models(store, summary, human=scheme == Scheme.HUMAN)
        if scheme == "auto":  # every model of the wanted scheme, rather than refusing a mixed store
            cf = [m for m, s in zip(summary["model"].to_list(), summary["schemes"].to_list(), strict=True) if "crossfit" in (s or [])]
            models = [m for m in models if m in cf] if cf else models
    return models, resolve_scheme(summary, models, scheme, Scheme.WITH_HUMAN), summary


def table1(store: FeatureStore, models: Sequence[str] | None = None, splits=None, *, scheme: str = "auto",
           summary: pl.DataFrame | None = None) -> pl.DataFrame:
    """Table 1. Fixed: one row per model. Crossfit: accuracy and F1 are means over the repeats, with
    their SD over the repeats (``accuracy_sd``, ``f1_sd``; ``n`` segments per repeat).

    One model at a time, with only its labels, predictions (and repeats) read: the description comes
    from the model summary, not from every row."""
    from ambiguity.models.predictions import read_predictions

    models, scheme, summary = _table_models(store, models, scheme, summary)
    splits = _scheme_splits(splits, scheme)
    desc = summary.select("model", "modalities", "kind")
    parts = []
    for m in models:
        if scheme != "crossfit":
            preds = read_predictions(store, [m], splits, scheme=scheme, columns=["model", "label", "predicted"])
            parts.append(performance(preds, [m]))
            continue
        # counts of (repeat, label, predicted), batch by batch: the memory of one batch at any size
        counts = pl.concat([b.group_by("repeat", "label", "predicted").len() for b in PREDICTIONS.batches(
            store, ["repeat", "label", "predicted"], batch_size=1 << 18, model=m, split=splits, scheme=Scheme.CROSSFIT)] or [
            pl.DataFrame(schema={"repeat": pl.Int32, "label": pl.String, "predicted": pl.String, "len": pl.UInt32})])
        if counts.height == 0:
            raise StatsError(f"no predictions for model {m!r} in the chosen splits")
        counts = counts.group_by("repeat", "label", "predicted").agg(pl.col("len").sum())
        per = pl.DataFrame([{"model": m, "modalities": "", "kind": None, **scores_from_counts(counts.filter(pl.col("repeat") == r))}
                            for r in sorted(counts["repeat"].unique().to_list())], schema=_PERFORMANCE)
        parts.append(per.group_by("model", maintain_order=True).agg(
            pl.first("modalities"), pl.first("kind"), pl.first("n"), pl.len().alias("repeats"),
            pl.col("accuracy").mean(), pl.col("accuracy").std().alias("accuracy_sd"),
            pl.col("f1").mean(), pl.col("f1").std().alias("f1_sd"),
        ))
    out = pl.concat(parts)
    described = out.drop("modalities", "kind").join(desc, on="model", how="left").with_columns(
        pl.col("modalities").list.unique(maintain_order=True).list.join("+").fill_null(""))
    return described.select(out.columns)


def table2(store: FeatureStore, models: Sequence[str] | None = None, splits=None, *, n_boot: int = 2000, ci: float = 0.95, seed: int = 0,
           scheme: str = "auto", summary: pl.DataFrame | None = None):
    """Table 2. Fixed: a :class:`DisagreementResult` with bootstrap CIs. Crossfit: a
    :class:`RepeatedDisagreement`, the mean and SD of the rate over the repeats (one repeat read at a time,
    labels compared as integer codes)."""
    from ambiguity.models.predictions import read_predictions
    from ambiguity.stats.repeats import SegmentIndex

    models, scheme, _ = _table_models(store, models, scheme, summary)
    splits = _scheme_splits(splits, scheme)
    if scheme != "crossfit":  # fixed or human (a tie has no predicted label: left out of the pair's rate)
        preds = read_predictions(store, models, splits, scheme=scheme, columns=["model", "segment_id", "predicted"])
        return disagreement(preds, models, n_boot=n_boot, ci=ci, seed=seed, splits=splits)
    repeats = sorted(read_predictions(store, models[:1], splits, scheme=scheme, columns=["repeat"])["repeat"].unique().to_list())
    rates, ns = [], []
    for r in repeats:
        frames = [PREDICTIONS.read(store, ["segment_id", "predicted"], model=m, split=splits, scheme=Scheme.CROSSFIT, repeat=r)
                  for m in models]
        index = SegmentIndex(pl.concat([f["segment_id"] for f in frames]).unique())
        codes, _ = label_codes(*[f["predicted"] for f in frames])
        P = np.full((len(models), len(index)), -1, np.int64)
        for i, (f, c) in enumerate(zip(frames, codes, strict=True)):
            P[i, index.positions(f["segment_id"])] = c
        del frames
        rate, n = disagreement_rates(P)
        rates.append(rate)
        ns.append(n)
    R = np.stack(rates)
    sd = R.std(axis=0, ddof=1) if len(rates) > 1 else np.full(R.shape[1:], np.nan)
    return RepeatedDisagreement(tuple(models), R.mean(axis=0), sd, ns[0], len(rates), splits)


def quadrant_stability(store: FeatureStore, unimodal: str, fusion: str, *, splits=None, threshold: float = 0.5, ci: float = 0.95) -> pl.DataFrame:
    """Cross-fitted quadrant stability of every labelled segment for one (unimodal, fusion) pair.

    Columns: segment_id, quadrant (modal), share_red, share_green, share_blue,
    share_yellow, stability, disagreement_p, disagreement_lo, disagreement_hi
    (a Wilson band over the repeats at level ``ci``: fold-and-seed variation, not a
    confidence interval), n_repeats; sorted by segment_id. ``splits`` keeps
    segments of those ingest splits (default: all). Needs cross-fitted
    predictions of both models (``ambiguity train GROUPS --folds K``).
    """
    frame = load_quadrants(store, unimodal, fusion, splits, threshold, scheme="crossfit", ci=ci)
    return frame.select("segment_id", "quadrant", *SHARE_COLUMNS, "stability", "disagreement_p",
                        "disagreement_lo", "disagreement_hi", "n_repeats")
