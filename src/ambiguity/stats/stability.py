"""Stability of cross-fitted quadrants: how often each segment lands in each quadrant over R repeats.

A cross-fitting run (``ambiguity train --folds K --repeats R``) predicts every
labelled segment once per repeat, so each segment has R quadrants. Per segment:

- ``share_red`` .. ``share_yellow``: the share of repeats in each quadrant;
- ``quadrant``: the modal quadrant. A tie is broken by the quadrant of the
  mean probabilities (mean ``p_unimodal`` and ``p_fusion`` over the repeats)
  when that is among the tied ones, else by the order red, green, blue, yellow;
- ``stability``: the share of repeats in the modal quadrant (1 = always there);
- ``disagreement_p``: the share of repeats in red or green (the two models
  disagree on being right), with a Wilson band
  ``disagreement_lo`` .. ``disagreement_hi`` over the R repeats (not a
  confidence interval: see below);
- ``n_repeats``: R for that segment.

The Wilson interval for k successes in n trials at level 1 - a, z = Phi^-1(1 - a/2):

    centre = (k + z^2 / 2) / (n + z^2),  half = z / (n + z^2) * sqrt(k (n - k) / n + z^2 / 4)

(Wilson 1927; Brown, Cai & DasGupta 2001 recommend it over the Wald interval for
small n, which R usually is). The R repeats of one segment are not independent
trials of a fixed model: they share the data and differ in the folds and seeds,
so the band describes how much the placement moves with those choices on this
data. It is not a confidence interval for the segment's disagreement under a new
sample, and at R = 3 it is wide whatever happens (0 of 3: [0, 0.56]).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from ambiguity.constants import QUADRANTS, Scheme
from ambiguity.errors import StatsError
from ambiguity.stats.assign import assign_quadrants
from ambiguity.stores.tables import PREDICTIONS
from ambiguity.tables import model_matrix

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore


SHARE_COLUMNS = tuple(f"share_{q}" for q in QUADRANTS)


def wilson_interval(k, n, ci: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of k successes in n trials (arrays or scalars); NaN where n == 0."""
    from scipy.stats import norm

    if not 0 < ci < 1:
        raise StatsError(f"ci={ci}: use a level in (0, 1)")
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    if (k < 0).any() or (k > n).any():
        raise StatsError("Wilson interval: need 0 <= k <= n")
    z = float(norm.ppf(1 - (1 - ci) / 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = n + z * z
        centre = (k + z * z / 2) / denom
        half = z / denom * np.sqrt(np.where(n > 0, k * (n - k) / np.where(n > 0, n, 1), 0.0) + z * z / 4)
        # k = 0 and k = n give exact bounds 0 and 1 (the formula leaves a rounding error).
        lo = np.where(n > 0, np.where(k == 0, 0.0, np.clip(centre - half, 0, 1)), np.nan)
        hi = np.where(n > 0, np.where(k == n, 1.0, np.clip(centre + half, 0, 1)), np.nan)
    return lo, hi


def stability_from_repeats(per_repeat: pl.DataFrame, *, ci: float = 0.95) -> pl.DataFrame:
    """Per-segment shares, modal quadrant, stability and disagreement probability (see the module notes).

    ``per_repeat`` has one row per (segment_id, repeat) with ``quadrant``, and optionally
    ``p_unimodal`` and ``p_fusion`` (used to break ties and returned as means over the repeats).
    Sorted by segment_id.
    """
    for c in ("segment_id", "repeat", "quadrant"):
        if c not in per_repeat.columns:
            raise StatsError(f"per-repeat quadrants need a {c!r} column")
    if per_repeat.select(["segment_id", "repeat"]).is_duplicated().any():
        raise StatsError("a segment has two quadrants in one repeat")
    unknown = set(per_repeat["quadrant"].unique().to_list()) - set(QUADRANTS)
    if unknown:
        raise StatsError(f"unknown quadrant(s) {sorted(map(str, unknown))}")
    ids = per_repeat["segment_id"].unique().sort()
    reps = per_repeat["repeat"].unique().sort()
    row = per_repeat["segment_id"].cast(pl.Enum(ids.cast(pl.String))).to_physical().to_numpy().astype(np.int64)
    col = np.searchsorted(reps.to_numpy(), per_repeat["repeat"].to_numpy())
    shape = (len(ids), len(reps))
    codes = np.full(shape, -1, np.int8)
    codes[row, col] = per_repeat["quadrant"].cast(pl.Enum(list(QUADRANTS))).to_physical().to_numpy()
    has_p = "p_unimodal" in per_repeat.columns and "p_fusion" in per_repeat.columns
    pu = pf = None
    if has_p:
        pu, pf = np.full(shape, np.nan), np.full(shape, np.nan)
        pu[row, col], pf[row, col] = per_repeat["p_unimodal"].to_numpy(), per_repeat["p_fusion"].to_numpy()
    return stability_table(ids.alias("segment_id"), codes, pu, pf, ci=ci)


def stability_table(segment_id: pl.Series, codes: np.ndarray, p_unimodal: np.ndarray | None = None,
                    p_fusion: np.ndarray | None = None, *, ci: float = 0.95) -> pl.DataFrame:
    """:func:`stability_from_repeats` on (segment x repeat) arrays: ``codes`` index QUADRANTS (-1: no row in that
    repeat), ``p_unimodal``/``p_fusion`` hold NaN there. Vectorised: no Python object per segment."""
    present = codes >= 0
    counts = np.stack([(codes == j).sum(axis=1) for j in range(len(QUADRANTS))], axis=1).astype(np.int64)
    n = present.sum(axis=1).astype(np.int64)
    top = counts.max(axis=1, initial=0)
    tied = counts == top[:, None]
    modal = tied.argmax(axis=1)  # the first tied in QUADRANTS order
    has_p = p_unimodal is not None and p_fusion is not None
    if p_unimodal is not None and p_fusion is not None and len(n):
        with np.errstate(invalid="ignore", divide="ignore"):
            mu = np.where(present, p_unimodal, 0.0).sum(axis=1) / np.maximum(n, 1)
            mf = np.where(present, p_fusion, 0.0).sum(axis=1) / np.maximum(n, 1)
        multi = np.flatnonzero(tied.sum(axis=1) > 1)
        if len(multi):
            by_mean = assign_quadrants(mu[multi], mf[multi])
            j = np.array([QUADRANTS.index(q) for q in by_mean], dtype=np.int64)
            modal[multi] = np.where(tied[multi, j], j, modal[multi])
    k = counts[:, 0] + counts[:, 1]
    lo, hi = wilson_interval(k, n, ci)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = pl.DataFrame({
            "segment_id": segment_id,
            "quadrant": pl.Series(list(QUADRANTS), dtype=pl.String).gather(modal),
            **{f"share_{q}": counts[:, j] / n for j, q in enumerate(QUADRANTS)},
            "stability": top / n,
            "disagreement_p": k / n,
            "disagreement_lo": lo,
            "disagreement_hi": hi,
            "n_repeats": n,
        })
    if has_p:
        out = out.with_columns(pl.Series("p_unimodal", mu if len(n) else np.zeros(0)),
                               pl.Series("p_fusion", mf if len(n) else np.zeros(0)))
    return out


def describe_cut(min_stability: float | None) -> str:
    return "no stability cut" if not min_stability else f"stability >= {min_stability:g}"


def check_min_stability(min_stability: float | None) -> float | None:
    if min_stability is None:
        return None
    if not (math.isfinite(min_stability) and 0 <= min_stability <= 1):
        raise StatsError(f"min_stability={min_stability}: use a share in [0, 1]")
    return float(min_stability)


@dataclass(frozen=True)
class RepeatedDisagreement:
    """Table 2 of a cross-fitted run: the disagreement rate per pair, mean and SD over the repeats."""

    models: tuple[str, ...]
    rate: np.ndarray
    sd: np.ndarray
    n: np.ndarray  # segments per repeat that both models predicted
    repeats: int
    splits: tuple[str, ...] | None

    def to_polars(self) -> pl.DataFrame:
        """Long form: model_a, model_b, n, rate (mean over repeats), rate_sd, repeats."""
        return pair_frame(self.models, self.n, {"rate": self.rate, "rate_sd": self.sd}, repeats=self.repeats)

    def matrix(self, digits: int = 3, with_ci: bool = True) -> pl.DataFrame:
        """Wide form: "mean ± SD" cells, "–" on the diagonal, and ``n``: the segments each model predicted per
        repeat (models see different segments when inputs are missing; a pair's rate covers those both
        predicted: :meth:`to_polars`)."""
        def sd(i: int, j: int) -> str:
            return f" ± {self.sd[i, j]:.{digits}f}" if np.isfinite(self.sd[i, j]) else ""

        return rate_matrix(self.models, self.rate, digits, sd if with_ci else None).with_columns(
            pl.Series("n", [int(self.n[i, i]) for i in range(len(self.models))], dtype=pl.Int64))


def pair_frame(models: Sequence[str], n: np.ndarray, values: dict[str, np.ndarray], **constants: int) -> pl.DataFrame:
    """Long form of model-by-model matrices, each unordered pair once: model_a, model_b, n, a Float64
    column per matrix in ``values``, then an Int64 column per ``constants``."""
    pairs = list(combinations(range(len(models)), 2))
    cols: dict[str, list] = {
        "model_a": [models[i] for i, _ in pairs], "model_b": [models[j] for _, j in pairs],
        "n": [int(n[i, j]) for i, j in pairs],
    }
    cols |= {name: [float(m[i, j]) for i, j in pairs] for name, m in values.items()}
    cols |= {name: [v] * len(pairs) for name, v in constants.items()}
    schema = {"model_a": pl.String, "model_b": pl.String, "n": pl.Int64, **dict.fromkeys(values, pl.Float64),
              **dict.fromkeys(constants, pl.Int64)}
    return pl.DataFrame(cols, schema=schema)


def rate_matrix(models: Sequence[str], rate: np.ndarray, digits: int, spread: Callable[[int, int], str] | None) -> pl.DataFrame:
    """Wide form of a rate matrix for printing: the rate, then ``spread(i, j)`` (an interval or an SD) when
    given; "n/a" where the rate is not finite, "–" on the diagonal."""
    def cell(i: int, j: int) -> str:
        if not np.isfinite(rate[i, j]):
            return "n/a"
        return f"{rate[i, j]:.{digits}f}" + (spread(i, j) if spread else "")

    return model_matrix(models, cell)


# -- schemes -----------------------------------------------------------------------------------------
#: Why a scheme named explicitly cannot be used, and what to run instead.
_LACKING = {
    "crossfit": "cross-fitted predictions for {models} (only the fixed split): "
                "run `ambiguity train GROUPS --folds 5` first, or use --scheme fixed",
    "fixed": "fixed-split predictions for {models} (only cross-fitted ones): "
             "use --scheme crossfit, or run `ambiguity train GROUPS` without --folds",
    "human": "human judgments for {models}: the human scheme compares people (human:audio, human:video against "
             "human:all, from `ambiguity annotations import FILE --preset crema-d`), never models",
}


@dataclass(frozen=True)
class SchemeUsed:
    """Which predictions a comparison used (a model scheme of :class:`ambiguity.constants.Scheme` and its
    parameters), and how to say so in a caption."""

    name: str  # Scheme.FIXED | Scheme.CROSSFIT | Scheme.HUMAN
    splits: tuple[str, ...] | None  # None: every labelled segment (crossfit only)
    folds: int | None = None
    repeats: int | None = None
    group_by: str | None = None
    min_stability: float | None = None

    def caption(self) -> str:
        if self.name == Scheme.HUMAN:
            where = "every judged segment" if not self.splits else "+".join(self.splits)
            return (f"human judgments (people, not models: a condition is right when the gold label alone has the most "
                    f"votes, a tie is not right; {where})")
        if self.name == "fixed":
            return f"fixed split ({'+'.join(self.splits or ())})"
        where = "all labelled segments" if self.splits is None else "+".join(self.splits)
        grouped = f", grouped by {self.group_by}" if self.group_by else ""
        # imported or hand-written cross-fitted rows may not record their run's settings: say so, not "K=None"
        folds = f"K={self.folds} folds" if self.folds is not None else "folds not recorded"
        repeats = f"R={self.repeats} repeats" if self.repeats is not None else "repeats not recorded"
        return (f"crossfit scheme ({folds} x {repeats}{grouped}; {where}; "
                f"modal quadrant per segment, {describe_cut(self.min_stability)})")


def of_kind(summary: pl.DataFrame, human: bool) -> pl.DataFrame:
    """The rows of a ``model_summary`` that are people (the ``human`` scheme) or models (every other): never mixed."""
    if "schemes" not in summary.columns:
        return summary if not human else summary.clear()
    is_human = pl.col("schemes").list.contains(Scheme.HUMAN).fill_null(False)
    return summary.filter(is_human if human else ~is_human)


def resolve_scheme(summary: pl.DataFrame, models, scheme: str = "auto", choices: Sequence[str] = Scheme.CHOICES) -> str:
    """``fixed``, ``crossfit`` or ``human`` for these models; ``auto`` takes crossfit when every model has it, else
    fixed, else human when every predictor is human (people are never mixed with models).

    ``choices``: the schemes the caller can read (:attr:`Scheme.CHOICES`, or :attr:`Scheme.WITH_HUMAN` for the
    quadrant readers). Refuses a scheme a model lacks (saying what to run) and a mix of schemes.
    """
    if scheme not in choices:
        raise StatsError(f"scheme {scheme!r}: use {', '.join(choices)}")
    have = {r["model"]: set(r["schemes"] or ["fixed"]) if "schemes" in summary.columns else {"fixed"}
            for r in summary.iter_rows(named=True)}
    models = list(dict.fromkeys(models))
    if scheme in Scheme.STORED:
        lack = [m for m in models if scheme not in have.get(m, set())]
        if lack:
            raise StatsError("no " + _LACKING[scheme].format(models=", ".join(lack)))
        return scheme
    names = ("crossfit", "fixed", "human") if Scheme.HUMAN in choices else ("crossfit", "fixed")
    for name in names:
        if all(name in have.get(m, set()) for m in models):
            return name
    kinds = {"cross-fitted only": {"crossfit"}, "fixed only": {"fixed"}, "human (people, not models)": {"human"}}
    parts = [f"{', '.join(ms)} {what}" for what, s in kinds.items() if (ms := [m for m in models if have.get(m) == s])]
    raise StatsError(f"schemes cannot be mixed in one comparison: {'; '.join(parts)}; "
                     "compare predictors of one scheme (train models on one; people only against people)")


def check_one_scheme(frames) -> str | None:
    """The scheme shared by quadrant frames (their ``scheme`` column); refuses a mix."""
    seen = set()
    for f in frames:
        if "scheme" in f.columns:
            seen |= set(f["scheme"].unique().to_list())
    if len(seen) > 1:
        raise StatsError(f"schemes cannot be mixed in one comparison: the quadrant frames hold {', '.join(sorted(seen))}")
    return next(iter(seen), None)


def crossfit_rows(store: FeatureStore, model: str, splits) -> tuple[pl.DataFrame, dict]:
    """A model's cross-fitted rows (optionally of some ingest splits) and its run settings; refuses an unfinished run."""
    import json

    from ambiguity.models.predictions import read_predictions
    # the per-model constants (config, modalities, kind) are not read per row: at 10^6 segments x 3
    # repeats they were most of the frame (bench/million.py); the config comes from one row
    cols = ["segment_id", "repeat", "p_correct", "predicted", "label", "split", "run_id", "classes"]
    df = read_predictions(store, [model], splits, scheme="crossfit", columns=cols)
    if df.height == 0:
        raise StatsError(f"no cross-fitted predictions for {model}{' in splits ' + '+'.join(splits) if splits else ''}: "
                         "run `ambiguity train GROUPS --folds 5` first")
    runs = df["run_id"].unique().to_list()
    df = df.drop("run_id")
    one = PREDICTIONS.read(store, ["config"], model=model, scheme=Scheme.CROSSFIT, run_id=runs[0], limit=1)
    cfg = json.loads(one["config"][0] or "{}")
    info = {"run_id": runs[0], "folds": cfg.get("folds"), "repeats": cfg.get("repeats"), "group_by": cfg.get("group_by")}
    if len(runs) > 1:
        raise StatsError(f"model {model} has rows of {len(runs)} cross-fitting runs: rerun `ambiguity train ... --folds K` to finish one")
    per = df.group_by("segment_id").agg(pl.col("repeat").n_unique().alias("r"))
    if info["repeats"] and (per["r"] != info["repeats"]).any():
        from ambiguity.models.crossfit import finished_units

        done = len(finished_units(store, runs[0]))
        raise StatsError(f"the cross-fitting run of {model} is unfinished ({done} of {info['folds'] * info['repeats']} "
                         "(repeat, fold) done): run the same `ambiguity train ... --folds K` again to resume")
    return df, info
