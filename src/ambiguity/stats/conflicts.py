"""How strongly the unimodal models disagree on a segment: conflict scores and the conflict test set.

From the class distributions P_1..P_K of K unimodal models on a segment:

- ``jsd``: the generalised Jensen-Shannon divergence in bits,
  JSD = H(mean_k P_k) - mean_k H(P_k), with H the Shannon entropy (log base 2).
  0 when all models give the same distribution; at most min(log2 K, log2 C) with C
  classes (1 bit for two models).
- ``margin``: the most confident opposing pair. For every pair of models whose
  predicted classes (argmax) differ, the smaller of their two confidences (their
  probability of their own predicted class); ``margin`` is the largest such value, 0
  when no two models disagree. ``margin >= 0.8`` means two modalities each put at
  least 0.8 on different classes. The pair is named in model_a/class_a/p_a and
  model_b/class_b/p_b.

The conflict test set (:func:`conflict_set`) holds the segments with
``margin >= threshold`` (default :data:`DEFAULT_THRESHOLD` = 0.8). Any number of
classes; segments not predicted by every model are left out.

Both scores measure how far apart the models' *predictions* are (prediction
divergence), not their attributions. Out of sample only: on the ``crossfit``
scheme each model's distribution for a segment is the mean over the repeats of
its out-of-fold predictions (every one from a model that never saw the
segment's group); on the ``fixed`` scheme only the test split is scored by
default (val chose the epoch; train is refused: the models were fitted on it).
``scheme='auto'`` takes crossfit when every model has it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from ambiguity.errors import AmbiguityError, StatsError
from ambiguity.models.predictions import model_summary, read_predictions
from ambiguity.stats.quadrant_tables import quadrant_stability, resolve_model, unimodal_models
from ambiguity.stats.stability import resolve_scheme
from ambiguity.stores.tables import ANNOTATIONS, PREDICTIONS

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore


DEFAULT_THRESHOLD = 0.8
NO_PREDICTIONS = ("no out-of-sample predictions: run `ambiguity train GROUPS --folds 5` (cross-fitted) "
                  "or `ambiguity train GROUPS` (fixed split, test segments only)")


def _entropy_bits(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log2(p), 0.0).sum(-1)


def jensen_shannon(probs: np.ndarray) -> np.ndarray:
    """Generalised JSD in bits of (n, K, C) distributions (K models, C classes), equal weights."""
    p = np.asarray(probs, dtype=np.float64)
    return _entropy_bits(p.mean(1)) - _entropy_bits(p).mean(1)


def opposing_margin(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(margin, index a, index b) per row of (n, K, C) distributions; -1 indices when no pair disagrees."""
    p = np.asarray(probs, dtype=np.float64)
    n, k, _ = p.shape
    pred = p.argmax(2)
    conf = p.max(2)
    best = np.zeros(n)
    ia, ib = np.full(n, -1), np.full(n, -1)
    for a, b in combinations(range(k), 2):
        m = np.where(pred[:, a] != pred[:, b], np.minimum(conf[:, a], conf[:, b]), 0.0)
        better = m > best
        best = np.where(better, m, best)
        ia, ib = np.where(better, a, ia), np.where(better, b, ib)
    return best, ia, ib


def oos_predictions(store: FeatureStore, names: Sequence[str], splits: Sequence[str] | None = None,
                    scheme: str = "auto") -> tuple[pl.DataFrame, str]:
    """(rows model, segment_id, split, label, classes, probs; the scheme): out-of-sample predictions only.

    crossfit: each model's probs are the mean over repeats of its out-of-fold predictions (``splits``: an optional
    filter of the ingest splits); fixed: the test split by default, ``train`` refused (see the module notes).
    """
    if not PREDICTIONS.exists(store):
        raise StatsError(NO_PREDICTIONS)
    scheme = resolve_scheme(model_summary(store), list(names), scheme)
    cols = ["model", "segment_id", "split", "label", "classes", "probs"]
    if scheme == "fixed":
        splits = tuple(splits) if splits else ("test",)
        if "train" in splits:
            raise StatsError("train-split predictions are in sample (the models were fitted on them): score test "
                             "(or val) segments, or cross-fit (`ambiguity train GROUPS --folds 5`) to score every segment")
        df = read_predictions(store, list(names), list(splits), columns=cols)
    else:
        df = read_predictions(store, list(names), list(splits) if splits else None, scheme="crossfit", columns=[*cols, "repeat"])
        c = len(df["probs"][0]) if df.height else 0
        df = (df.with_columns(pl.col("probs").list.to_struct(fields=[f"p{i}" for i in range(c)]).alias("ps"))
              .unnest("ps").group_by(["model", "segment_id"], maintain_order=True)
              .agg(pl.col("split", "label", "classes").first(), *[pl.col(f"p{i}").mean() for i in range(c)])
              .with_columns(pl.concat_list([f"p{i}" for i in range(c)]).alias("probs")).select(cols))
    if df.height == 0:
        raise StatsError(f"no {scheme} predictions of {', '.join(names)}"
                         + (f" in split(s) {', '.join(splits)}" if splits else "")
                         + ": run `ambiguity train GROUPS --folds 5`, or score the fixed split's test segments")
    return df, scheme


def _crossfit_means(store: FeatureStore, names: Sequence[str], splits) -> tuple[pl.DataFrame, np.ndarray, list[tuple]]:
    """(segment_id, split, label of the first model's segments; each model's class distribution averaged over
    its repeats, (n, K, C), NaN where a model has no row; each model's classes), read batch by batch
    (stats.repeats): no frame of every model's rows with their lists (5.5 GB at 10^6 x 3 models x 3 repeats)."""
    from ambiguity.stats.repeats import BATCH_ROWS, SegmentIndex, crossfit_run, segment_index

    runs = [crossfit_run(store, m, splits) for m in names]
    meta = segment_index(store, runs[0], splits)
    index = SegmentIndex(meta["segment_id"])
    width = max(len(r.classes) for r in runs) or 2
    P = np.zeros((len(meta), len(names), width))
    for k, run in enumerate(runs):
        seen = np.zeros(len(meta))
        for df in PREDICTIONS.batches(store, ["segment_id", "probs"], batch_size=BATCH_ROWS, model=run.model,
                                      scheme="crossfit", run_id=run.run_id, split=splits):
            row = index.positions(df["segment_id"])
            keep = row >= 0
            probs = df["probs"].list.to_array(width).to_numpy().astype(np.float64)
            np.add.at(P[:, k], row[keep], probs[keep])
            seen += np.bincount(row[keep], minlength=len(meta))
        with np.errstate(invalid="ignore", divide="ignore"):
            P[:, k] /= seen[:, None]  # 0 / 0: no row of this model, NaN
    return meta, P, [r.classes for r in runs]


def _fixed_probs(store: FeatureStore, names: Sequence[str], splits) -> tuple[pl.DataFrame, np.ndarray, list[tuple]]:
    """As _crossfit_means for the fixed scheme's rows (one per model and segment)."""
    from ambiguity.stats.repeats import SegmentIndex

    df, _ = oos_predictions(store, names, splits, "fixed")
    classes = [tuple(c) for c in df["classes"].unique().to_list()]  # distinct first: no list per row
    meta = df.filter(pl.col("model") == names[0]).select("segment_id", "label", "split").unique("segment_id").sort("segment_id")
    index = SegmentIndex(meta["segment_id"])
    width = max((len(c) for c in classes), default=2)
    P = np.full((len(meta), len(names), width), np.nan)
    for k, m in enumerate(names):
        sub = df.filter(pl.col("model") == m)
        row = index.positions(sub["segment_id"])
        P[row[row >= 0], k] = sub["probs"].list.to_array(width).to_numpy().astype(np.float64)[row >= 0]
    return meta, P, classes


def mean_probs(store: FeatureStore, names: Sequence[str], splits: Sequence[str] | None = None,
               scheme: str = "auto") -> tuple[pl.DataFrame, np.ndarray, list[tuple], str]:
    """(segment_id, split, label of the first model's segments; each model's out-of-sample class distribution
    (n, K, C), NaN where a model has no row; each model's classes; the scheme): cross-fitted means over the
    repeats, or the fixed split's test rows (:func:`oos_predictions`), read without a frame of every row."""
    if not PREDICTIONS.exists(store):
        raise StatsError(NO_PREDICTIONS)
    scheme = resolve_scheme(model_summary(store), list(names), scheme)
    meta, P, classes = _fixed_probs(store, names, splits) if scheme == "fixed" else _crossfit_means(store, names, splits)
    return meta, P, classes, scheme


def conflict_scores(store: FeatureStore, models: Sequence[str] | None = None, splits: Sequence[str] | None = None,
                    scheme: str = "auto") -> pl.DataFrame:
    """One row per segment predicted by every model, out of sample (see the module notes): segment_id, split,
    label, n_models, jsd, margin, model_a, class_a, p_a, model_b, class_b, p_b (the most confident opposing
    pair; null if none), ``predicted`` (JSON: model -> predicted class) and ``scheme``.
    ``models`` default: every unimodal model."""
    if not PREDICTIONS.exists(store):
        raise StatsError(NO_PREDICTIONS)
    names = [resolve_model(store, m) for m in models] if models else sorted(unimodal_models(store))
    if len(names) < 2:
        raise StatsError(f"a conflict needs at least two unimodal models; found {', '.join(names) or 'none'}")
    scheme = resolve_scheme(model_summary(store), list(names), scheme)
    if scheme == "fixed":
        meta, P, classes = _fixed_probs(store, names, splits)
    else:
        try:
            meta, P, classes = _crossfit_means(store, names, splits)
        except StatsError as exc:
            if "no cross-fitted predictions" not in str(exc):
                raise
            raise StatsError(f"no {scheme} predictions of {', '.join(names)}"
                             + (f" in split(s) {', '.join(splits)}" if splits else "")
                             + ": run `ambiguity train GROUPS --folds 5`, or score the fixed split's test segments") from None
    if len(set(classes)) > 1:
        raise StatsError(f"models {', '.join(names)} were trained on different classes: {sorted(set(classes))}")
    cls = list(classes[0]) if classes else []
    every = ~np.isnan(P).any(axis=(1, 2))  # predicted by every model
    if not every.any():
        raise StatsError("no segment is predicted by every model in the chosen splits")
    meta, P = meta.filter(pl.Series(every)), P[every]
    jsd = np.clip(jensen_shannon(P), 0.0, None)
    margin, ia, ib = opposing_margin(P)
    pred = P.argmax(2)
    conf = P.max(2)
    rows = np.arange(len(P))
    has = ia >= 0
    a, b = np.where(has, ia, 0), np.where(has, ib, 0)
    # names and classes by code, in polars (no Python object per segment); "predicted" is json.dumps of
    # {model: class} written as one string column: the keys and values are JSON-encoded once each
    code = lambda name, values: pl.Series(name, values, dtype=pl.Int64)  # noqa: E731
    out = pl.DataFrame([code("ia", np.where(has, a, -1)), code("ib", np.where(has, b, -1)),
                        code("ca", np.where(has, pred[rows, a], -1)), code("cb", np.where(has, pred[rows, b], -1)),
                        *[code(f"k{k}", pred[:, k]) for k in range(len(names))]])
    model_of = {i: m for i, m in enumerate(names)}
    class_of = {i: c for i, c in enumerate(cls)}
    enc = {i: json.dumps(c) for i, c in enumerate(cls)}
    parts: list[pl.Expr | str] = []
    for k, m in enumerate(names):
        parts += [(", " if k else "{") + json.dumps(m) + ": ", pl.col(f"k{k}").replace_strict(enc, return_dtype=pl.String)]
    out = out.select(
        pl.col("ia").replace_strict(model_of, default=None, return_dtype=pl.String).alias("model_a"),
        pl.col("ca").replace_strict(class_of, default=None, return_dtype=pl.String).alias("class_a"),
        pl.col("ib").replace_strict(model_of, default=None, return_dtype=pl.String).alias("model_b"),
        pl.col("cb").replace_strict(class_of, default=None, return_dtype=pl.String).alias("class_b"),
        pl.concat_str([pl.lit(p) if isinstance(p, str) else p for p in [*parts, "}"]]).alias("predicted"),
    )
    nan_none = lambda v: pl.Series(np.where(has, v, np.nan)).fill_nan(None)  # noqa: E731
    return pl.DataFrame({
        "segment_id": meta["segment_id"], "split": meta["split"], "label": meta["label"],
        "n_models": pl.Series([len(names)], dtype=pl.Int64).extend_constant(len(names), len(P) - 1),
        "jsd": jsd, "margin": margin,
        "model_a": out["model_a"], "class_a": out["class_a"], "p_a": nan_none(conf[rows, a]),
        "model_b": out["model_b"], "class_b": out["class_b"], "p_b": nan_none(conf[rows, b]),
        "predicted": out["predicted"], "scheme": pl.Series([scheme], dtype=pl.String).extend_constant(scheme, len(P) - 1),
    }, schema_overrides={"model_a": pl.String, "class_a": pl.String, "p_a": pl.Float64,
                         "model_b": pl.String, "class_b": pl.String, "p_b": pl.Float64})


def conflict_set(scores: pl.DataFrame, threshold: float = DEFAULT_THRESHOLD) -> pl.DataFrame:
    """Segments whose most confident opposing pair puts at least ``threshold`` on different classes."""
    if not 0.5 <= threshold <= 1.0:
        raise StatsError(f"threshold={threshold}: use a confidence in [0.5, 1] (each model's p of its own class)")
    return scores.filter(pl.col("margin") >= threshold).sort("margin", descending=True)


#: Up to this many segments spearman_ci's interval is a percentile bootstrap; above it, asymptotic
#: (spearman_se). Each resample ranks every segment again: 2,000 resamples of 10^4 segments were 3.5 s CPU per
#: correlation (12 in a report, bench/report.py --sections), of 10^6 about 10 minutes each; at that size the
#: bootstrap and the asymptotic interval agree (tests/stats/test_conflicts_asymptotic.py).
BOOTSTRAP_UP_TO = 10_000
INTERVALS = (f"95% CI: percentile bootstrap over segments (2000 resamples) up to {BOOTSTRAP_UP_TO:,} segments; "
             "above, Fisher's z of rho +- 1.96 nonparametric standard errors (the influence function of Spearman's rho)")


def _mid_above(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per row k: (sum of w over rows with x > x_k, plus half of it over rows with x == x_k) / n (one sort)."""
    _, inv = np.unique(x, return_inverse=True)
    g = np.bincount(inv, weights=w)
    greater = g[::-1].cumsum()[::-1] - g
    return (greater[inv] + 0.5 * g[inv]) / len(x)


def spearman_se(x: np.ndarray, y: np.ndarray) -> float:
    """Nonparametric standard error of Spearman's rho (with ties: Pearson's r of the mid-ranks), from its
    empirical influence function, in O(n log n).

    With U = F*(X), V = G*(Y) (mid-distribution functions, P(X < x) + P(X = x) / 2), rho = corr(U, V). The
    influence of a point (u, v) is Pearson's r's at fixed U, V, ``u~ v~ - rho (u~^2 + v~^2) / 2`` (u~, v~
    standardised), plus what the point moves the ranks of the others,
    ``E[A_u(X) (v~ - rho u~)] / sd(U) + E[B_v(Y) (u~ - rho v~)] / sd(V)``, A_u(t) = 1(t > u) + 1(t = u) / 2;
    without ties this is Croux & Dehon (2010)'s IF of Spearman's rho. SE = SD(IF) / sqrt(n); under independence
    it is 1 / sqrt(n), the null variance 1 / (n - 1) of Kendall & Gibbons (1990)."""
    from scipy import stats

    n = len(x)
    u, v = (stats.rankdata(x) - 0.5) / n, (stats.rankdata(y) - 0.5) / n
    su, sv = u.std(), v.std()
    if su == 0 or sv == 0:
        return float("nan")
    ut, vt = (u - u.mean()) / su, (v - v.mean()) / sv
    rho = float((ut * vt).mean())
    infl = (ut * vt - rho / 2 * (ut**2 + vt**2)
            + _mid_above(x, vt - rho * ut) / su + _mid_above(y, ut - rho * vt) / sv)
    return float(infl.std() / np.sqrt(n))


def spearman_ci(x: np.ndarray, y: np.ndarray, *, n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> dict:
    """Spearman's rho (scipy) with an interval: a percentile bootstrap over segments (seeded) up to
    :data:`BOOTSTRAP_UP_TO` complete pairs, above it Fisher's z of rho +- the normal quantile times
    :func:`spearman_se` (the z scale keeps the interval inside [-1, 1])."""
    from scipy import stats  # scipy.stats: 0.7 s CPU to import, only here

    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3:
        raise StatsError(f"a correlation needs at least 3 segments with both values; got {len(x)}")
    r = stats.spearmanr(x, y)
    if len(x) > BOOTSTRAP_UP_TO:
        rho, se = float(r.statistic), spearman_se(x, y)
        q = float(stats.norm.ppf(0.5 + ci / 2))
        if not np.isfinite(rho) or not np.isfinite(se) or abs(rho) >= 1:
            lo = hi = rho
        else:
            z, se_z = np.arctanh(rho), se / (1 - rho**2)
            lo, hi = float(np.tanh(z - q * se_z)), float(np.tanh(z + q * se_z))
        return {"n": len(x), "rho": rho, "ci_low": lo, "ci_high": hi, "p": float(r.pvalue)}
    rng = np.random.default_rng(seed)
    n = len(x)
    ix, iy = np.unique(x, return_inverse=True)[1], np.unique(y, return_inverse=True)[1]
    boots = []
    for lo_b in range(0, n_boot, 500):  # all resamples of a chunk at once: one scipy call per resample was seconds
        b = min(500, n_boot - lo_b)
        rows = np.arange(b)[:, None]
        # a resample as counts: w[r, k] = how often segment k was drawn (the same draws as indexing x[i])
        w = np.bincount((rng.integers(0, n, (b, n)) + rows * n).ravel(), minlength=b * n).reshape(b, n).astype(float)
        ranks, spread = [], []
        for inv in (ix, iy):
            # the average rank of each distinct value in the resample (rankdata's), without sorting it again:
            # the values below it, counted with their weights, plus the middle of its own ties
            g = inv.max() + 1
            tot = np.bincount((inv + rows * g).ravel(), weights=w.ravel(), minlength=b * g).reshape(b, g)
            ranks.append((tot.cumsum(axis=1) - (tot - 1) / 2)[rows, inv])
            spread.append((tot > 0).sum(axis=1) > 1)  # a constant resample has no rank correlation
        rx, ry = ranks
        keep = spread[0] & spread[1]
        # Spearman's rho is Pearson's r of the average ranks (what spearmanr computes), each segment w times
        rx = rx[keep] - (w[keep] * rx[keep]).sum(axis=1, keepdims=True) / n
        ry = ry[keep] - (w[keep] * ry[keep]).sum(axis=1, keepdims=True) / n
        wk = w[keep]
        boots.append((wk * rx * ry).sum(axis=1) / np.sqrt((wk * rx**2).sum(axis=1) * (wk * ry**2).sum(axis=1)))
    flat = np.concatenate(boots) if boots else np.empty(0)
    lo, hi = np.quantile(flat, [0.5 - ci / 2, 0.5 + ci / 2]) if len(flat) else (np.nan, np.nan)
    return {"n": len(x), "rho": float(r.statistic), "ci_low": float(lo), "ci_high": float(hi), "p": float(r.pvalue)}


def annotator_disagreement(store: FeatureStore, task: str | None = None) -> pl.DataFrame:
    """segment_id, n_answers, disagreement: the share of pairs of answers on a segment that differ
    (over every annotator and round of ``task``, or of all tasks); segments with fewer than 2 answers left out."""
    if not ANNOTATIONS.exists(store):
        raise StatsError("the store has no annotations")
    ans = ANNOTATIONS.read(store, ["task", "segment_id", "judgment"], task=task or None)
    counts = ans.group_by(["segment_id", "judgment"]).len()
    per = counts.group_by("segment_id").agg(pl.col("len").sum().alias("n_answers"),
                                           (pl.col("len") * (pl.col("len") - 1)).sum().alias("same"))
    per = per.filter(pl.col("n_answers") >= 2)
    return per.select("segment_id", "n_answers",
                      (1 - pl.col("same") / (pl.col("n_answers") * (pl.col("n_answers") - 1))).alias("disagreement")).sort("segment_id")


def conflict_correlations(store: FeatureStore, scores: pl.DataFrame, *,
                          stability: pl.DataFrame | Mapping[str, pl.DataFrame] | None = None,
                          unimodal: Sequence[str] | None = None, fusion: str = "fusion", task: str | None = None,
                          n_boot: int = 2000, seed: int = 0) -> pl.DataFrame:
    """Spearman correlations (bootstrap CI) of jsd and margin with crossfit quadrant stability and the
    crossfit disagreement share, and with annotator disagreement.

    ``stability``: a frame with segment_id, stability and disagreement_p (as
    :func:`ambiguity.stats.quadrant_tables.quadrant_stability` returns), or such frames by unimodal model
    (already computed, e.g. by the report); when not given it is computed for each
    ``unimodal`` model (default: every unimodal model) vs ``fusion`` from the store's cross-fitted
    predictions. The interval of each rho: see :data:`INTERVALS`. A missing input (no crossfit run, no annotations) gives a row whose ``note`` says why.
    """
    rows: list[dict] = []
    frames: dict[str, pl.DataFrame] = {}
    if isinstance(stability, pl.DataFrame):
        frames["given"] = stability
    elif stability is not None:
        frames.update(stability)
    else:
        for u in unimodal or sorted(unimodal_models(store)):
            try:
                frames[u] = quadrant_stability(store, u, fusion)
            except AmbiguityError as exc:  # no crossfit run in this store
                rows.append({"with": f"crossfit stability ({u})", "score": "jsd", "note": str(exc).splitlines()[0]})
    for u, st in frames.items():
        j = scores.join(st, on="segment_id", how="inner")
        for col in ("stability", "disagreement_p"):
            if col not in j.columns:
                continue
            for s in ("jsd", "margin"):
                try:
                    rows.append({"with": f"crossfit {col} ({u})", "score": s, **spearman_ci(j[s].to_numpy(), j[col].to_numpy(), n_boot=n_boot, seed=seed)})
                except StatsError as exc:
                    rows.append({"with": f"crossfit {col} ({u})", "score": s, "note": str(exc)})
    try:
        dis = annotator_disagreement(store, task)
        j = scores.join(dis, on="segment_id", how="inner")
        for s in ("jsd", "margin"):
            rows.append({"with": "annotator disagreement", "score": s, **spearman_ci(j[s].to_numpy(), j["disagreement"].to_numpy(), n_boot=n_boot, seed=seed)})
    except StatsError as exc:
        rows.append({"with": "annotator disagreement", "score": "jsd", "note": str(exc)})
    schema = {"with": pl.String, "score": pl.String, "n": pl.Int64, "rho": pl.Float64, "ci_low": pl.Float64,
              "ci_high": pl.Float64, "p": pl.Float64, "note": pl.String}
    return pl.DataFrame([{k: r.get(k) for k in schema} for r in rows], schema=schema)


def write_manifest(store: FeatureStore, conflicts: pl.DataFrame, path: str | Path, *, threshold: float,
                   pairs: pl.DataFrame | None = None, pairs_path: str | Path | None = None) -> list[Path]:
    """The conflict test set as a manifest (the segments table's columns + the conflict columns),
    CSV / Parquet / JSONL by suffix, and a JSON sidecar ``<file>.json`` saying how it was made."""
    path = Path(path)
    segs = store.segments(["segment_id", "media", "audio", "start_s", "end_s", "transcript"])
    man = conflicts.join(segs, on="segment_id", how="left")
    man = man.select(["segment_id", "media", "audio", "start_s", "end_s", "transcript", "label", "split",
                      *[c for c in conflicts.columns if c not in ("segment_id", "label", "split")]])
    written = [_write(man, path)]
    if pairs is not None and pairs_path is not None:
        written.append(_write(pairs, Path(pairs_path)))
    side = path.with_name(path.name + ".json")
    side.write_text(json.dumps({
        "what": "segments whose unimodal models confidently disagree (ambiguity conflicts)",
        "threshold": threshold,
        "rule": f"margin >= {threshold}: two unimodal models each give p >= {threshold} to different classes",
        "jsd": "generalised Jensen-Shannon divergence of the unimodal class distributions, bits",
        "rows": man.height, "pairs_file": str(pairs_path) if pairs_path else None,
    }, indent=2) + "\n")
    return [*written, side]


def _write(df: pl.DataFrame, path: Path) -> Path:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        df.write_parquet(path)
    elif suffix in (".jsonl", ".ndjson", ".json"):
        df.write_ndjson(path)
    elif suffix in (".csv", ""):
        df.write_csv(path)
    else:
        raise StatsError(f"{path}: write a .csv, .parquet or .jsonl file")
    return path
