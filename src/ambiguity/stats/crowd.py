"""Human judgments as vote counts: soft labels, correctness, agreement and human quadrants.

The input is a *votes frame*: one row per (item, condition) with ``item``,
``condition``, ``modality`` (``audio`` | ``video`` | ``all``: what the raters
were shown), ``gold`` and ``counts`` (a list of vote counts aligned with the
classes), plus any item metadata (``actor``, ``intensity``, ...). No rater ids
are needed: every statistic here is a function of the counts.

Definitions (each checked in ``tests/stats/test_crowd.py`` against code written
from the definition):

- soft label: the vote shares; ``entropy`` in bits; ``p_correct`` the share of
  votes for gold; ``right`` when gold *alone* has the most votes (a tie with
  another class is not right); ``plurality`` lists the tied classes joined by
  ``:`` as CREMA-D's ``emoVote`` does.
- Fleiss' kappa with each item's own number of raters n_i:
  P_i = (sum_j n_ij^2 - n_i) / (n_i (n_i - 1)), P-bar their mean,
  p_j = sum_i n_ij / sum_i n_i pooled over all votes, P_e = sum_j p_j^2,
  kappa = (P-bar - P_e) / (1 - P_e). Items with fewer than two votes are left out.
- Krippendorff's alpha (nominal) from the coincidence matrix of the counts
  (``stats.intervals``' one definition).
- Intervals: agreement (kappa, alpha, their change) by the item-level BCa
  bootstrap of ``stats.intervals``; accuracy and the human green/red by a
  percentile bootstrap over clusters (items, or actors when a ``cluster``
  column is named), resampling whole clusters. Every statistic here is a
  function of sums over items, so a resample is a weighted sum.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
import polars as pl

from ambiguity.constants import QUADRANTS
from ambiguity.errors import StatsError
from ambiguity.stats.intervals import item_interval, krippendorff_statistic, krippendorff_summaries, resample_counts

#: What each presentation condition shows, by the modality name the machinery uses.
AV = "all"
UNIMODAL = ("audio", "video")

#: The bootstrap's defaults: resamples and seed.
N_BOOT = 2000
SEED = 0


def count_matrix(frame: pl.DataFrame) -> np.ndarray:
    """The (rows x classes) vote counts of a votes frame."""
    if frame.height == 0:
        return np.zeros((0, 0), dtype=np.int64)
    return np.asarray(frame["counts"].to_list(), dtype=np.int64)


def soft_labels(frame: pl.DataFrame, classes: Sequence[str]) -> pl.DataFrame:
    """The votes frame with n, dist (vote shares), entropy (bits), plurality, tie, p_correct and right."""
    c = count_matrix(frame)
    classes = [str(x) for x in classes]
    if frame.height and c.shape[1] != len(classes):
        raise StatsError(f"counts have {c.shape[1]} columns for {len(classes)} classes")
    n = c.sum(axis=1) if frame.height else np.zeros(0, dtype=np.int64)
    if (n == 0).any():
        raise StatsError(f"{int((n == 0).sum())} row(s) have no votes")
    dist = c / n[:, None] if frame.height else np.zeros((0, len(classes)))
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(dist > 0, dist * np.log2(np.where(dist > 0, dist, 1.0)), 0.0).sum(axis=1)
    top = c.max(axis=1) if frame.height else np.zeros(0)
    winners = c == top[:, None] if frame.height else np.zeros((0, len(classes)), dtype=bool)
    index = {k: i for i, k in enumerate(classes)}
    gold = frame["gold"].to_list()
    unknown = sorted({g for g in gold if g not in index})
    if unknown:
        raise StatsError(f"gold label(s) {unknown} are not among the classes {classes}")
    gi = np.array([index[g] for g in gold], dtype=np.int64)
    rows = np.arange(frame.height)
    p_correct = dist[rows, gi] if frame.height else np.zeros(0)
    right = winners[rows, gi] & (winners.sum(axis=1) == 1) if frame.height else np.zeros(0, dtype=bool)
    plurality = [":".join(k for k, w in zip(classes, row, strict=True) if w) for row in winners]
    return frame.with_columns(
        pl.Series("n", n, dtype=pl.Int64),
        pl.Series("dist", dist.tolist(), dtype=pl.List(pl.Float64)),
        pl.Series("entropy", ent, dtype=pl.Float64),
        pl.Series("plurality", plurality, dtype=pl.String),
        pl.Series("tie", winners.sum(axis=1) > 1 if frame.height else [], dtype=pl.Boolean),
        pl.Series("p_correct", p_correct, dtype=pl.Float64),
        pl.Series("right", right, dtype=pl.Boolean),
    )


# -- agreement from counts: per-item additive pieces ---------------------------------------------
def fleiss_parts(counts: np.ndarray) -> np.ndarray:
    """Per item: [P_i, 1, n_i1 .. n_ik], for items with n_i >= 2 (others are zero rows: they drop out)."""
    c = np.asarray(counts, dtype=np.float64)
    n = c.sum(axis=1)
    ok = n >= 2
    p_i = np.zeros(len(c))
    p_i[ok] = ((c[ok] ** 2).sum(axis=1) - n[ok]) / (n[ok] * (n[ok] - 1))
    return np.column_stack([p_i, ok.astype(float), c * ok[:, None]])


def fleiss_from_parts(sums: np.ndarray) -> np.ndarray:
    """Fleiss' kappa from summed parts (one row per resample, or one vector)."""
    s = np.atleast_2d(sums)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_bar = s[:, 0] / s[:, 1]
        p_j = s[:, 2:] / s[:, 2:].sum(axis=1, keepdims=True)
        p_e = (p_j**2).sum(axis=1)
        k = (p_bar - p_e) / (1 - p_e)
    k = np.where(np.isfinite(k), k, np.nan)
    return k if np.ndim(sums) == 2 else k[0]


def fleiss_counts(counts: np.ndarray) -> float:
    """Fleiss' kappa of an (items x classes) count table whose items may have different numbers of raters."""
    return float(fleiss_from_parts(fleiss_parts(counts).sum(axis=0))) if len(counts) else math.nan


def alpha_counts(counts: np.ndarray) -> float:
    """Nominal Krippendorff's alpha of an (items x classes) count table (``stats.intervals``' coincidences)."""
    c = np.asarray(counts)
    return float(krippendorff_statistic(c.shape[1])(krippendorff_summaries(c).sum(axis=0))) if len(c) else math.nan


# -- the cluster bootstrap ----------------------------------------------------------------------
def cluster_bootstrap_many(parts: np.ndarray, clusters: Sequence[Any] | None,
                           fns: Sequence[Callable[[np.ndarray], np.ndarray]], n_boot: int = N_BOOT, ci: float = 0.95,
                           seed: int = SEED) -> list[tuple[float, float, float]]:
    """(estimate, low, high) of each of ``fns`` of the summed per-item ``parts``, with percentile intervals from
    one set of resamples of whole clusters (each item its own cluster when ``clusters`` is None), so that statistics
    of the same resample (two conditions of the same items) stay paired. NaN bounds when n_boot is 0."""
    parts = np.asarray(parts, dtype=np.float64)
    ests = [float(np.asarray(fn(parts.sum(axis=0))).reshape(-1)[0]) for fn in fns]
    if n_boot <= 0 or len(parts) < 2:
        return [(e, math.nan, math.nan) for e in ests]
    if clusters is None:
        per = parts
    else:
        _, codes = np.unique(np.asarray(clusters, dtype=object).astype(str), return_inverse=True)
        per = np.zeros((codes.max() + 1, parts.shape[1]))
        np.add.at(per, codes, parts)
    rng = np.random.default_rng(seed)
    n_c = len(per)
    stats: list[list[np.ndarray]] = [[] for _ in fns]
    for start in range(0, n_boot, 250):  # a weight matrix of 250 x clusters at a time
        b = min(250, n_boot - start)
        idx = rng.integers(0, n_c, size=(b, n_c)) + (np.arange(b) * n_c)[:, None]  # how often each cluster is drawn
        sums = np.bincount(idx.ravel(), minlength=b * n_c).reshape(b, n_c).astype(np.float64) @ per
        for out, fn in zip(stats, fns, strict=True):
            out.append(fn(sums))
    res = []
    for e, chunks in zip(ests, stats, strict=True):
        s = np.concatenate(chunks)
        s = s[np.isfinite(s)]
        lo, hi = np.quantile(s, [(1 - ci) / 2, 1 - (1 - ci) / 2]) if s.size else (math.nan, math.nan)
        res.append((e, float(lo), float(hi)))
    return res


def cluster_bootstrap(parts: np.ndarray, clusters: Sequence[Any] | None, fn: Callable[[np.ndarray], np.ndarray],
                      n_boot: int = N_BOOT, ci: float = 0.95, seed: int = SEED) -> tuple[float, float, float]:
    """:func:`cluster_bootstrap_many` of one statistic."""
    return cluster_bootstrap_many(parts, clusters, [fn], n_boot, ci, seed)[0]


def _ratio_cols(num: int, den: int, sums: np.ndarray) -> np.ndarray:
    """Column ``num`` over column ``den`` of summed parts (one row per resample)."""
    s = np.atleast_2d(sums)
    with np.errstate(divide="ignore", invalid="ignore"):
        return s[:, num] / s[:, den]


def _first(fn: Callable[[np.ndarray], np.ndarray], w: int, sums: np.ndarray) -> np.ndarray:
    """``fn`` of the first ``w`` columns of the sums (one value for one vector of sums, else one per row)."""
    return fn(sums[..., :w])


def _rest(fn: Callable[[np.ndarray], np.ndarray], w: int, sums: np.ndarray) -> np.ndarray:
    return fn(sums[..., w:])


def _clusters(frame: pl.DataFrame, cluster: str | None) -> list[Any] | None:
    if cluster is None:
        return None
    if cluster not in frame.columns:
        raise StatsError(f"no column {cluster!r} to cluster on (columns: {', '.join(frame.columns)})")
    return frame[cluster].cast(pl.String).to_list()


# -- per condition ------------------------------------------------------------------------------
def accuracy(soft: pl.DataFrame, by: Sequence[str] = ("condition", "modality"), *, cluster: str | None = None,
             n_boot: int = N_BOOT, ci: float = 0.95, seed: int = SEED) -> pl.DataFrame:
    """Per group: items, votes, per-vote accuracy (every vote counts once) and plurality accuracy (share of items
    whose gold alone has the most votes; a tie is wrong), each with a percentile interval over ``cluster``."""
    rows = []
    for key, g in soft.group_by(list(by), maintain_order=True):
        cl = _clusters(g, cluster)
        votes = np.column_stack([g["p_correct"].to_numpy() * g["n"].to_numpy(), g["n"].to_numpy()])
        items = np.column_stack([g["right"].to_numpy().astype(float), np.ones(g.height)])
        v, p = cluster_bootstrap_many(np.hstack([votes, items]), cl, [partial(_ratio_cols, 0, 1), partial(_ratio_cols, 2, 3)],
                                      n_boot, ci, seed)
        rows.append({**dict(zip(by, key, strict=True)), "items": g.height, "votes": int(g["n"].sum()),
                     "vote_accuracy": v[0], "vote_low": v[1], "vote_high": v[2],
                     "plurality_accuracy": p[0], "plurality_low": p[1], "plurality_high": p[2]})
    return pl.DataFrame(rows)


def _item_intervals(parts: np.ndarray, fns: Sequence[Callable[[np.ndarray], np.ndarray]], n_boot: int, ci: float,
                    seed: int) -> list[tuple[float, float, float]]:
    """(estimate, low, high) of each statistic of the summed ``parts``: BCa over items (``stats.intervals``), one
    set of resamples for all (so statistics of the same items stay paired); NaN bounds when n_boot is 0."""
    counts = resample_counts(len(parts), max(n_boot, 0), np.random.default_rng(seed))
    out = []
    for fn in fns:
        r = item_interval(parts, fn, counts=counts, ci=ci)
        out.append((r.estimate, r.low, r.high) if n_boot > 0 else (r.estimate, math.nan, math.nan))
    return out


def agreement_by(soft: pl.DataFrame, by: Sequence[str] = ("condition", "modality"), *, n_boot: int = N_BOOT,
                 ci: float = 0.95, seed: int = SEED) -> pl.DataFrame:
    """Fleiss' kappa (n_i per item) and Krippendorff's alpha per group, with BCa intervals over items."""
    rows = []
    for key, g in soft.group_by(list(by), maintain_order=True):
        c = count_matrix(g)
        w = c.shape[1] + 2
        both = np.hstack([fleiss_parts(c), krippendorff_summaries(c)])
        k, a = _item_intervals(both, [partial(_first, fleiss_from_parts, w),
                                      partial(_rest, krippendorff_statistic(c.shape[1]), w)], n_boot, ci, seed)
        rows.append({**dict(zip(by, key, strict=True)), "items": g.height, "mean_raters": float(c.sum(axis=1).mean()),
                     "kappa": k[0], "kappa_low": k[1], "kappa_high": k[2],
                     "alpha": a[0], "alpha_low": a[1], "alpha_high": a[2]})
    return pl.DataFrame(rows)


# -- human quadrants ----------------------------------------------------------------------------
def wide(soft: pl.DataFrame, keep: Sequence[str] = ()) -> pl.DataFrame:
    """One row per item: right_<modality>, p_correct_<modality>, entropy_<modality> per condition shown, plus
    ``keep`` (item metadata, taken from the item's first row)."""
    if soft.height and soft.select("item", "modality").is_duplicated().any():
        raise StatsError("an item has two conditions of one modality: map conditions to modalities one to one")
    mods = [m for m in (*UNIMODAL, AV) if m in set(soft["modality"].to_list())]
    out = soft.select("item", *keep).unique("item", keep="first", maintain_order=True)
    for m in mods:
        part = soft.filter(pl.col("modality") == m).select(
            "item", pl.col("right").alias(f"right_{m}"), pl.col("p_correct").alias(f"p_correct_{m}"),
            pl.col("entropy").alias(f"entropy_{m}"))
        out = out.join(part, on="item", how="left")
    return out


def human_quadrants(soft: pl.DataFrame, keep: Sequence[str] = ()) -> pl.DataFrame:
    """Per item and unimodal modality: the quadrant of the unimodal condition against the audio-visual one (red:
    unimodal right, audio-visual wrong; green: the reverse; blue: both right; yellow: both wrong). Items lacking
    either condition are left out (they have no quadrant)."""
    w = wide(soft, keep)
    if f"right_{AV}" not in w.columns:
        raise StatsError("no audio-visual condition (modality 'all'): human quadrants need it")
    frames = []
    for m in UNIMODAL:
        if f"right_{m}" not in w.columns:
            continue
        u, f = pl.col(f"right_{m}"), pl.col(f"right_{AV}")
        q = (pl.when(u & ~f).then(pl.lit("red")).when(~u & f).then(pl.lit("green"))
             .when(u & f).then(pl.lit("blue")).otherwise(pl.lit("yellow")))
        frames.append(w.filter(u.is_not_null() & f.is_not_null()).select(
            "item", pl.lit(m).alias("modality"), q.alias("quadrant"),
            pl.col(f"p_correct_{m}").alias("p_unimodal"), pl.col(f"p_correct_{AV}").alias("p_all"),
            pl.col(f"entropy_{m}").alias("entropy_unimodal"), pl.col(f"entropy_{AV}").alias("entropy_all"), *keep))
    return pl.concat(frames) if frames else pl.DataFrame()


def quadrant_counts(quads: pl.DataFrame) -> pl.DataFrame:
    """Items per modality and quadrant (every quadrant listed, zero included)."""
    mods = quads["modality"].unique(maintain_order=True).to_list()
    grid = pl.DataFrame({"modality": [m for m in mods for _ in QUADRANTS], "quadrant": list(QUADRANTS) * len(mods)})
    got = quads.group_by("modality", "quadrant").agg(pl.len().alias("items"))
    return grid.join(got, on=["modality", "quadrant"], how="left").with_columns(pl.col("items").fill_null(0).cast(pl.Int64))


def green_red(quads: pl.DataFrame, by: Sequence[str] = (), *, cluster: str | None = None, n_boot: int = N_BOOT,
              ci: float = 0.95, seed: int = SEED) -> pl.DataFrame:
    """Per modality (and ``by``): the share of items where audio-visual is right and the unimodal condition wrong
    (green), the reverse (red), and green minus red, each with a percentile interval over ``cluster``."""
    rows = []
    for key, g in quads.group_by(["modality", *by], maintain_order=True):
        cl = _clusters(g, cluster)
        green = (g["quadrant"] == "green").to_numpy().astype(float)
        red = (g["quadrant"] == "red").to_numpy().astype(float)
        one = np.ones(g.height)
        gr, rd, df = cluster_bootstrap_many(np.column_stack([green, red, green - red, one]), cl,
                                            [partial(_ratio_cols, j, 3) for j in range(3)], n_boot, ci, seed)
        rows.append({**dict(zip(["modality", *by], key, strict=True)), "items": g.height,
                     "green": gr[0], "green_low": gr[1], "green_high": gr[2],
                     "red": rd[0], "red_low": rd[1], "red_high": rd[2],
                     "green_minus_red": df[0], "diff_low": df[1], "diff_high": df[2]})
    return pl.DataFrame(rows)


def _paired_kappa(sums: np.ndarray, *, k: int, part: int) -> np.ndarray:
    """Fleiss' kappa of the first k summed parts (part 0), of the rest (1), or the second minus the first (2)."""
    first, second = fleiss_from_parts(sums[..., :k]), fleiss_from_parts(sums[..., k:])
    return first if part == 0 else second if part == 1 else second - first


def agreement_change(soft: pl.DataFrame, quads: pl.DataFrame, *, n_boot: int = N_BOOT,
                     ci: float = 0.95, seed: int = SEED) -> pl.DataFrame:
    """The Table 5 analogue: per unimodal modality and human quadrant, Fleiss' kappa of the unimodal votes and of
    the audio-visual votes on the same items, and the change (audio-visual minus unimodal) with a paired interval
    (both kappas from one resample of items; BCa intervals, ``stats.intervals``)."""
    av = soft.filter(pl.col("modality") == AV).select("item", pl.col("counts").alias("counts_all"))
    rows = []
    for m in quads["modality"].unique(maintain_order=True).to_list():
        uni = soft.filter(pl.col("modality") == m).select("item", pl.col("counts").alias("counts_uni"))
        for q in QUADRANTS:
            g = quads.filter((pl.col("modality") == m) & (pl.col("quadrant") == q)).join(uni, on="item").join(av, on="item")
            row: dict[str, Any] = {"modality": m, "quadrant": q, "items": g.height}
            if g.height:
                pu = fleiss_parts(np.asarray(g["counts_uni"].to_list()))
                pa = fleiss_parts(np.asarray(g["counts_all"].to_list()))
                k = pu.shape[1]
                both = np.hstack([pu, pa])
                ku, ka, d = _item_intervals(both, [partial(_paired_kappa, k=k, part=i) for i in range(3)], n_boot, ci, seed)
                row |= {"kappa_unimodal": ku[0], "unimodal_low": ku[1], "unimodal_high": ku[2],
                        "kappa_all": ka[0], "all_low": ka[1], "all_high": ka[2],
                        "change": d[0], "change_low": d[1], "change_high": d[2]}
            rows.append(row)
    cols = ["kappa_unimodal", "unimodal_low", "unimodal_high", "kappa_all", "all_low", "all_high", "change",
            "change_low", "change_high"]
    return pl.DataFrame(rows, schema={"modality": pl.String, "quadrant": pl.String, "items": pl.Int64,
                                      **dict.fromkeys(cols, pl.Float64)})
