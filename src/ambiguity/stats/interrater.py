"""Agreement between annotators per quadrant and round (the paper's Table 5).

Cohen's kappa (two annotators) or Fleiss' kappa (more than two) is computed per
quadrant for the unimodal round (judged from the flagged modality alone) and the
multimodal round (judged from the full clip), with the change between them. The
statistics come from statsmodels (``cohens_kappa``, ``fleiss_kappa``) and the
``krippendorff`` package; this module builds their inputs, bootstraps items for
confidence intervals and lays out the tables.

Defaults, stated: items enter a row only if every chosen annotator answered them
in both rounds (complete cases), so both rounds and the change use the same
items; the bootstrap resamples those items (paired across rounds), 2000 times,
BCa intervals at 95 % (:mod:`ambiguity.stats.intervals`); labels are nominal and may have any number of
categories; accuracy is against the task's gold label, with Wilson intervals and
an exact McNemar test of the paired change.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import krippendorff
import numpy as np
import polars as pl

from ambiguity.constants import QUADRANTS
from ambiguity.errors import StatsError
from ambiguity.stats import intervals as iv
from ambiguity.tables import to_latex, to_markdown

ROUNDS = ("unimodal", "multimodal")
ALL = "all"


# -- the statistics themselves (thin, validated wrappers) ------------------------------

def _as_labels(values: Any, name: str) -> list[str]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise StatsError(f"{name}: expected a sequence of labels, got {type(values).__name__}")
    out = []
    for i, v in enumerate(list(values)):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            raise StatsError(f"{name}: missing label at position {i}; drop unanswered items first")
        out.append(str(v))
    return out


def _encode(*columns: list[str], categories: Sequence[str] | None = None) -> tuple[list[np.ndarray], list[str]]:
    cats = list(categories) if categories is not None else sorted({v for c in columns for v in c})
    index = {c: i for i, c in enumerate(cats)}
    unknown = sorted({v for c in columns for v in c if v not in index})
    if unknown:
        raise StatsError(f"label(s) {unknown} are not among the categories {cats}")
    return [np.fromiter((index[v] for v in c), dtype=np.int64, count=len(c)) for c in columns], cats


def _kappa_from_table(table: np.ndarray) -> float:
    """statsmodels' Cohen's kappa; NaN where it is undefined (both raters used one and the same label)."""
    from statsmodels.stats.inter_rater import cohens_kappa  # 0.9 s CPU to import

    n = table.sum()
    pe = float((table.sum(0) * table.sum(1)).sum()) / float(n) ** 2 if n else 1.0
    if n == 0 or pe >= 1.0:
        return math.nan
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(cohens_kappa(table, return_results=False))


def _fleiss_from_counts(counts: np.ndarray) -> float:
    """statsmodels' Fleiss' kappa of an (items x categories) count table; NaN if undefined."""
    from statsmodels.stats.inter_rater import fleiss_kappa  # 0.9 s CPU to import

    if counts.shape[0] == 0 or np.count_nonzero(counts.sum(0)) < 2:
        return math.nan
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(fleiss_kappa(counts, method="fleiss"))


def cohen_kappa(a: Sequence[Any], b: Sequence[Any], *, labels: Sequence[Any] | None = None) -> float:
    """Cohen's kappa between two raters' labels of the same items (nominal, any number of classes).

    Labels are compared as strings. Returns NaN when kappa is undefined (both
    raters gave one and the same label to every item). Raises StatsError for
    empty input, unequal lengths or missing labels.

    Notes
    -----
    kappa = (p_o - p_e) / (1 - p_e), p_o the observed agreement and p_e the
    agreement expected from the raters' marginals (Cohen 1960); computed by
    ``statsmodels.stats.inter_rater.cohens_kappa`` on the contingency table.
    """
    a, b = _as_labels(a, "a"), _as_labels(b, "b")
    if len(a) != len(b):
        raise StatsError(f"the two raters labelled different numbers of items ({len(a)} vs {len(b)})")
    if not a:
        raise StatsError("no items: kappa needs at least one item labelled by both raters")
    (ca, cb), cats = _encode(a, b, categories=None if labels is None else [str(x) for x in labels])
    k = len(cats)
    table = np.bincount(ca * k + cb, minlength=k * k).reshape(k, k)
    return _kappa_from_table(table)


def fleiss(ratings: Sequence[Sequence[Any]]) -> float:
    """Fleiss' kappa of an (items x raters) table of labels, every item rated by every rater."""
    rows = [_as_labels(r, f"item {i}") for i, r in enumerate(ratings)]
    if not rows:
        raise StatsError("no items: Fleiss' kappa needs at least one item")
    widths = {len(r) for r in rows}
    if len(widths) != 1 or widths.pop() < 2:
        raise StatsError("Fleiss' kappa needs the same number (>= 2) of ratings for every item")
    codes, cats = _encode(*rows)
    counts = np.stack([np.bincount(c, minlength=len(cats)) for c in codes])
    return _fleiss_from_counts(counts)


#: Levels of measurement :func:`krippendorff_alpha` accepts (Krippendorff 2011's distance metrics).
LEVELS = ("nominal", "ordinal", "interval", "ratio")


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def krippendorff_alpha(ratings: Sequence[Sequence[Any]], level: str = "nominal") -> float:
    """Krippendorff's alpha of a (raters x items) table; None marks a missing rating.

    ``level`` is the level of measurement: ``nominal`` (default; labels compared as
    strings) or ``ordinal``, ``interval``, ``ratio`` (ratings must be numbers; the
    ordinal metric ranks the values that occur). Computed by the ``krippendorff``
    package; NaN when fewer than two distinct values occur (alpha is undefined then).
    """
    if level not in LEVELS:
        raise StatsError(f"unknown level {level!r}: use one of {', '.join(LEVELS)}")
    rows = [list(r) for r in ratings]
    if len(rows) < 2:
        raise StatsError("Krippendorff's alpha needs at least two raters")
    width = {len(r) for r in rows}
    if len(width) != 1 or width.pop() == 0:
        raise StatsError("every rater's row must cover the same (non-empty) list of items")
    if level == "nominal":
        present = sorted({str(v) for r in rows for v in r if not _missing(v)})
        index = {c: i for i, c in enumerate(present)}
        data = np.array([[np.nan if _missing(v) else index[str(v)] for v in r] for r in rows], dtype=float)
    else:
        try:
            data = np.array([[np.nan if _missing(v) else float(v) for v in r] for r in rows], dtype=float)
        except (TypeError, ValueError):
            raise StatsError(f"{level} alpha needs numeric ratings") from None
        present = sorted(set(data[~np.isnan(data)].tolist()))
    if len(present) < 2:
        return math.nan
    if not np.any(np.sum(~np.isnan(data), axis=0) >= 2):
        raise StatsError("Krippendorff's alpha needs at least one item rated by two raters")
    domain = None if level == "nominal" else present
    return float(krippendorff.alpha(reliability_data=data, value_domain=domain, level_of_measurement=level))  # type: ignore[arg-type]  # checked against LEVELS above


# -- the per-quadrant table ------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class AgreementResult:
    """Table 5 and the per-annotator accuracy.

    ``table`` columns: [modality,] quadrant, n, statistic (cohen | fleiss),
    kappa_unimodal, kappa_unimodal_low, kappa_unimodal_high, kappa_multimodal,
    kappa_multimodal_low, kappa_multimodal_high, delta, delta_low, delta_high,
    alpha_unimodal, alpha_multimodal (Krippendorff, nominal; each with _low, _high), boot_valid (resamples
    where both kappas were defined).

    ``accuracy`` columns: annotator, [modality,] quadrant, n, acc_unimodal (+ _low,
    _high: Wilson at ``ci``), acc_multimodal (+ _low, _high), delta, mcnemar_p (exact).
    """

    table: pl.DataFrame = field(repr=False)
    accuracy: pl.DataFrame = field(repr=False)
    annotators: tuple[str, ...] = ()
    statistic: str = "cohen"
    categories: tuple[str, ...] = ()
    n_items: int = 0
    n_complete: int = 0
    n_boot: int = 0
    ci: float = 0.95
    seed: int = 0
    notes: tuple[str, ...] = ()

    def to_polars(self) -> pl.DataFrame:
        """Every column, one row per quadrant (and modality); a copy."""
        return self.table.clone()

    def _display(self, digits: int, latex: bool) -> pl.DataFrame:
        def cell(v, lo, hi):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                return "–"
            s = f"{v:.{digits}f}"
            if lo is not None and hi is not None and not (math.isnan(lo) or math.isnan(hi)):
                s += f" [{lo:.{digits}f}, {hi:.{digits}f}]"
            return s

        t = self.table
        name = "Cohen's kappa" if self.statistic == "cohen" else "Fleiss' kappa"
        cols: dict[str, list[Any]] = {}
        if "modality" in t.columns:
            cols["Modality"] = t["modality"].to_list()
        cols["Quadrant"] = [q.capitalize() for q in t["quadrant"].to_list()]
        cols["n"] = t["n"].to_list()
        rows = t.to_dicts()
        cols[f"Unimodal judgment ({name})"] = [cell(r["kappa_unimodal"], r["kappa_unimodal_low"], r["kappa_unimodal_high"]) for r in rows]
        cols[f"Multimodal judgment ({name})"] = [cell(r["kappa_multimodal"], r["kappa_multimodal_low"], r["kappa_multimodal_high"]) for r in rows]
        cols["Change" if latex else "Δ"] = [cell(r["delta"], r["delta_low"], r["delta_high"]) for r in rows]
        if len(self.annotators) > 2:
            cols["Alpha unimodal" if latex else "α unimodal"] = [cell(r["alpha_unimodal"], r["alpha_unimodal_low"], r["alpha_unimodal_high"]) for r in rows]
            cols["Alpha multimodal" if latex else "α multimodal"] = [cell(r["alpha_multimodal"], r["alpha_multimodal_low"], r["alpha_multimodal_high"]) for r in rows]
        return pl.DataFrame(cols)

    def _accuracy_display(self, digits: int) -> pl.DataFrame:
        def pct(v, lo, hi):
            if v is None or math.isnan(v):
                return "–"
            return f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"

        rows = self.accuracy.to_dicts()
        out: dict[str, list[Any]] = {"Annotator": [r["annotator"] for r in rows]}
        if "modality" in self.accuracy.columns:
            out["Modality"] = [r["modality"] for r in rows]
        out["Quadrant"] = [r["quadrant"].capitalize() for r in rows]
        out["n"] = [r["n"] for r in rows]
        out["Unimodal accuracy"] = [pct(r["acc_unimodal"], r["acc_unimodal_low"], r["acc_unimodal_high"]) for r in rows]
        out["Multimodal accuracy"] = [pct(r["acc_multimodal"], r["acc_multimodal_low"], r["acc_multimodal_high"]) for r in rows]
        out["Change"] = [r["delta"] for r in rows]
        out["McNemar p"] = [r["mcnemar_p"] for r in rows]
        return pl.DataFrame(out)

    def caption(self) -> str:
        who = " and ".join(self.annotators) if len(self.annotators) <= 3 else f"{len(self.annotators)} annotators"
        stat = "Cohen's kappa" if self.statistic == "cohen" else "Fleiss' kappa"
        return (
            f"{stat} between {who}, per quadrant and round, with {int(self.ci * 100)}% BCa bootstrap CIs "
            f"({self.n_boot} item resamples); {self.n_complete} of {self.n_items} items answered by every annotator in both rounds."
        )

    def to_markdown(self, *, digits: int = 3, accuracy: bool = True) -> str:
        text = to_markdown(self._display(digits, latex=False), caption=self.caption(), digits=digits)
        if accuracy and self.accuracy.height:
            text += "\n" + to_markdown(
                self._accuracy_display(digits), caption=f"Accuracy against the gold label per round (Wilson {self.ci:.0%} CIs; exact McNemar test of the change).", digits=digits
            )
        for n in self.notes:
            text += f"\nNote: {n}\n"
        return text

    def to_latex(self, *, digits: int = 3, accuracy: bool = False, label: str = "tab:agreement") -> str:
        text = to_latex(self._display(digits, latex=True), caption=self.caption(), label=label, digits=digits)
        if accuracy and self.accuracy.height:
            text += to_latex(self._accuracy_display(digits), caption="Accuracy against the gold label per round.", label=label + "-accuracy", digits=digits)
        return text


def _group_stats(codes_u: np.ndarray, codes_m: np.ndarray, k: int, n_boot: int, ci: float, rng: np.random.Generator) -> dict[str, Any]:
    """Kappa and Krippendorff's alpha per round, the change in kappa, and their BCa intervals
    (:mod:`ambiguity.stats.intervals`); codes are (items x raters) int arrays. Paired: one set of
    item resamples for both rounds and the change."""
    n, r = codes_u.shape
    if r == 2:  # Cohen: one cell of the k x k table per item
        s_u, s_m = iv.cohen_summaries(codes_u[:, 0], codes_u[:, 1], k), iv.cohen_summaries(codes_m[:, 0], codes_m[:, 1], k)
        stat = iv.cohen_statistic(k)
        ku = _kappa_from_table(np.bincount(codes_u[:, 0] * k + codes_u[:, 1], minlength=k * k).reshape(k, k))
        km = _kappa_from_table(np.bincount(codes_m[:, 0] * k + codes_m[:, 1], minlength=k * k).reshape(k, k))
    else:  # Fleiss: category counts per item
        c_u, c_m = iv.category_counts(codes_u, k), iv.category_counts(codes_m, k)
        s_u, s_m = iv.fleiss_summaries(c_u), iv.fleiss_summaries(c_m)
        stat = iv.fleiss_statistic(r)
        ku, km = _fleiss_from_counts(c_u.astype(np.int64)), _fleiss_from_counts(c_m.astype(np.int64))
    width = s_u.shape[1]

    def change(t: np.ndarray) -> np.ndarray:
        return stat(t[..., width:]) - stat(t[..., :width])

    alpha_stat = iv.krippendorff_statistic(k)
    a_u, a_m = (iv.krippendorff_summaries(iv.category_counts(c, k)) for c in (codes_u, codes_m))
    boot = iv.resample_counts(n, n_boot, rng) if n_boot and n else None
    out: dict[str, Any] = {}
    est = {"kappa_unimodal": ku, "kappa_multimodal": km, "delta": km - ku}
    parts = (("kappa_unimodal", s_u, stat), ("kappa_multimodal", s_m, stat), ("delta", np.hstack([s_u, s_m]), change),
             ("alpha_unimodal", a_u, alpha_stat), ("alpha_multimodal", a_m, alpha_stat))
    valid = 0
    for name, summ, f in parts:
        if boot is None:
            lo = hi = math.nan
        else:
            res = iv.item_interval(summ, f, counts=boot, ci=ci)
            lo, hi = res.low, res.high
            if name == "delta":
                valid = res.n_valid
        if name in est:
            out[name] = est[name]
        out[f"{name}_low"], out[f"{name}_high"] = lo, hi
    out["boot_valid"] = valid
    return out


def _alpha(codes: np.ndarray) -> float:
    if codes.shape[0] == 0:
        return math.nan
    return krippendorff_alpha(codes.T.tolist())


def _accuracy_row(correct_u: np.ndarray, correct_m: np.ndarray, ci: float = 0.95) -> dict[str, Any]:
    from statsmodels.stats.contingency_tables import mcnemar  # 1.0 s CPU to import
    from statsmodels.stats.proportion import proportion_confint  # 1.0 s CPU to import

    n = int(correct_u.size)
    if n == 0:
        nan = math.nan
        return dict(n=0, acc_unimodal=nan, acc_unimodal_low=nan, acc_unimodal_high=nan, acc_multimodal=nan,
                    acc_multimodal_low=nan, acc_multimodal_high=nan, delta=nan, mcnemar_p=nan)
    out: dict[str, Any] = {"n": n}
    for name, c in (("unimodal", correct_u), ("multimodal", correct_m)):
        x = int(c.sum())
        lo, hi = proportion_confint(x, n, alpha=1.0 - ci, method="wilson")
        out[f"acc_{name}"], out[f"acc_{name}_low"], out[f"acc_{name}_high"] = x / n, float(lo), float(hi)
    out["delta"] = out["acc_multimodal"] - out["acc_unimodal"]
    table = np.array(
        [[np.sum(correct_u & correct_m), np.sum(correct_u & ~correct_m)],
         [np.sum(~correct_u & correct_m), np.sum(~correct_u & ~correct_m)]]
    )
    out["mcnemar_p"] = float(mcnemar(table, exact=True).pvalue)
    return out


def agreement(
    annotations: pl.DataFrame,
    items: pl.DataFrame,
    *,
    annotators: Sequence[str] | None = None,
    by_modality: bool = False,
    n_boot: int = 2000,
    ci: float = 0.95,
    seed: int = 0,
) -> AgreementResult:
    """Agreement per quadrant and round, and each annotator's accuracy.

    Parameters
    ----------
    annotations
        Columns annotator, item, round (unimodal | multimodal), judgment.
    items
        The task's items: columns item, quadrant, and optionally modality and
        label (the gold label, for accuracy).
    annotators
        Whom to compare (default: everyone in ``annotations``); two give Cohen's
        kappa, more give Fleiss' kappa. Krippendorff's alpha is reported for any number.
    by_modality
        One row per (modality flag, quadrant) instead of per quadrant.

    Returns
    -------
    AgreementResult
        Rows for each quadrant present (red, green, blue, yellow) and ``all``.
    """
    for name, df, need in (("annotations", annotations, ("annotator", "item", "round", "judgment")), ("items", items, ("item", "quadrant"))):
        if not isinstance(df, pl.DataFrame):
            raise StatsError(f"{name}: expected a polars DataFrame, got {type(df).__name__}")
        missing = [c for c in need if c not in df.columns]
        if missing:
            raise StatsError(f"{name}: missing column(s) {', '.join(missing)}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise StatsError(f"n_boot must be a non-negative integer, got {n_boot!r}")
    if not (isinstance(ci, float) and 0.0 < ci < 1.0):
        raise StatsError(f"ci must be a float between 0 and 1, got {ci!r}")
    if by_modality and "modality" not in items.columns:
        raise StatsError("by_modality needs a 'modality' column in items")
    bad_rounds = sorted(set(annotations["round"].drop_nulls().to_list()) - set(ROUNDS))
    if bad_rounds:
        raise StatsError(f"unknown round(s) {bad_rounds}: use {', '.join(ROUNDS)}")
    if annotations["judgment"].null_count():
        raise StatsError(f"{annotations['judgment'].null_count()} annotation(s) have no judgment")
    dups = annotations.group_by("annotator", "item", "round").len().filter(pl.col("len") > 1)
    if dups.height:
        raise StatsError(f"{dups.height} (annotator, item, round) combination(s) are answered twice; keep one answer each")
    who = sorted(annotations["annotator"].unique().to_list()) if annotators is None else list(annotators)
    if len(set(who)) != len(who):
        raise StatsError(f"annotators listed twice: {who}")
    if len(who) < 2:
        raise StatsError(f"agreement needs at least two annotators, found {who or 'none'}")
    unknown = [a for a in who if a not in set(annotations["annotator"].to_list())]
    if unknown:
        raise StatsError(f"no annotations by {', '.join(unknown)}")

    items = items.with_columns(pl.col("item").cast(pl.String), pl.col("quadrant").cast(pl.String))
    if "label" not in items.columns:
        items = items.with_columns(pl.lit(None, pl.String).alias("label"))
    ann = annotations.filter(pl.col("annotator").is_in(who)).with_columns(pl.col("judgment").cast(pl.String))
    notes: list[str] = []
    stray = ann.filter(~pl.col("item").is_in(items["item"].to_list()))
    if stray.height:
        notes.append(f"{stray.height} annotation(s) of items outside the task were ignored")
        ann = ann.filter(pl.col("item").is_in(items["item"].to_list()))
    wide = ann.with_columns((pl.col("round") + "|" + pl.col("annotator")).alias("_col")).pivot(
        on="_col", index="item", values="judgment"
    )
    cols = [f"{r}|{a}" for r in ROUNDS for a in who]
    for c in cols:
        if c not in wide.columns:
            wide = wide.with_columns(pl.lit(None, pl.String).alias(c))
    wide = items.select("item", "quadrant", *(["modality"] if by_modality else []), "label").join(wide, on="item", how="left")
    complete = wide.filter(pl.all_horizontal([pl.col(c).is_not_null() for c in cols]))
    n_items, n_complete = items.height, complete.height
    if n_complete < n_items:
        notes.append(f"{n_items - n_complete} item(s) lack an answer from some annotator in some round and are left out")
    cats = sorted({v for c in cols for v in complete[c].to_list()})
    index = {c: i for i, c in enumerate(cats)}
    k = max(len(cats), 1)
    code = {c: np.array([index[v] for v in complete[c].to_list()], dtype=np.int64) for c in cols}

    keys: list[tuple[str | None, str]] = []
    mods = [m for m in ("text", "audio", "video") if by_modality and m in set(complete["modality"].to_list())]
    if by_modality:
        mods += sorted(set(complete["modality"].to_list()) - set(mods))
    for m in mods if by_modality else [None]:
        present = set(complete.filter(pl.col("modality") == m)["quadrant"].to_list()) if m else set(complete["quadrant"].to_list())
        keys += [(m, q) for q in QUADRANTS if q in present] + [(m, ALL)]
    if by_modality:
        keys.append((ALL, ALL))
    if not keys:
        keys = [(ALL if by_modality else None, ALL)]

    rng = np.random.default_rng(seed)
    quad = complete["quadrant"].to_numpy()
    modv = complete["modality"].to_numpy() if by_modality else None
    rows: list[dict[str, Any]] = []
    for m, q in keys:
        mask = np.ones(n_complete, dtype=bool)
        if m not in (None, ALL):
            mask &= modv == m
        if q != ALL:
            mask &= quad == q
        cu = np.stack([code[f"unimodal|{a}"][mask] for a in who], axis=1) if n_complete else np.zeros((0, len(who)), int)
        cm = np.stack([code[f"multimodal|{a}"][mask] for a in who], axis=1) if n_complete else np.zeros((0, len(who)), int)
        row: dict[str, Any] = ({"modality": m} if by_modality else {}) | {"quadrant": q, "n": int(mask.sum())}
        row["statistic"] = "cohen" if len(who) == 2 else "fleiss"
        stats = _group_stats(cu, cm, k, n_boot, ci, rng)
        row |= {c: stats[c] for c in stats if not c.startswith("alpha")}
        row["alpha_unimodal"], row["alpha_multimodal"] = _alpha(cu), _alpha(cm)
        row |= {c: stats[c] for c in stats if c.startswith("alpha")}
        rows.append(row)
    table = pl.DataFrame(rows, infer_schema_length=None)
    undefined = table.filter(pl.col("kappa_unimodal").is_nan() | pl.col("kappa_multimodal").is_nan())
    if undefined.height:
        notes.append("kappa is undefined (–) where every annotator gave one and the same label to every item of a row")

    # Accuracy: each annotator on the items they answered in both rounds and that have a gold label.
    acc_rows: list[dict[str, Any]] = []
    for a in who:
        mine = wide.filter(pl.col(f"unimodal|{a}").is_not_null() & pl.col(f"multimodal|{a}").is_not_null() & pl.col("label").is_not_null())
        gold = mine["label"].cast(pl.String).to_numpy()
        cu_all = mine[f"unimodal|{a}"].to_numpy() == gold
        cm_all = mine[f"multimodal|{a}"].to_numpy() == gold
        mq = mine["quadrant"].to_numpy()
        mm = mine["modality"].to_numpy() if by_modality else None
        for m, q in keys:
            mask = np.ones(mine.height, dtype=bool)
            if m not in (None, ALL):
                mask &= mm == m
            if q != ALL:
                mask &= mq == q
            acc_rows.append({"annotator": a} | ({"modality": m} if by_modality else {}) | {"quadrant": q} | _accuracy_row(cu_all[mask], cm_all[mask], ci))
    accuracy = pl.DataFrame(acc_rows, infer_schema_length=None)
    if items["label"].null_count() == items.height:
        notes.append("the task has no gold labels: accuracy is not computed")
        accuracy = accuracy.head(0)
    return AgreementResult(
        table=table, accuracy=accuracy, annotators=tuple(who), statistic="cohen" if len(who) == 2 else "fleiss",
        categories=tuple(cats), n_items=n_items, n_complete=n_complete, n_boot=int(n_boot), ci=ci, seed=int(seed),
        notes=tuple(notes),
    )
