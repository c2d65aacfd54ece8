"""What makes an item hard for people, and do models and people find the same items hard.

``hardness`` compares the human quadrants on item metadata (intensity, sentence,
actor sex and age, class): for each factor level and quadrant a 2x2 table per
gold class (item in the quadrant or not x item at the level or not), combined
by the Cochran-Mantel-Haenszel test (statsmodels ``StratifiedTable``), so the
comparison is adjusted for the gold class; the effect size is the
Mantel-Haenszel pooled odds ratio with its interval. The gold class itself is
tested unadjusted (chi-square, Cramér's V). One Holm family per modality.

``model_vs_human`` is the paper's central claim as a test: per segment, the
cross-fitted probability that the models disagree (red or green over repeats)
against human entropy (Spearman's rho with a percentile bootstrap interval over
segments) and the model quadrant against the human quadrant (a table and its
chi-square test).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from ambiguity.constants import QUADRANTS
from ambiguity.errors import StatsError
from ambiguity.stats.multitest import adjust

#: Item metadata compared between quadrants, when present.
FACTORS = ("intensity", "sentence", "sex", "age_band", "gold")
AGE_BANDS = ((0, 30, "<30"), (30, 40, "30-39"), (40, 50, "40-49"), (50, 200, "50+"))


def with_age_band(frame: pl.DataFrame) -> pl.DataFrame:
    """Adds ``age_band`` (<30, 30-39, 40-49, 50+) from a numeric ``age`` column."""
    if "age" not in frame.columns:
        return frame
    age = pl.col("age").cast(pl.Float64, strict=False)
    expr = pl.lit(None, pl.String)
    for lo, hi, name in reversed(AGE_BANDS):
        expr = pl.when((age >= lo) & (age < hi)).then(pl.lit(name)).otherwise(expr)
    return frame.with_columns(expr.alias("age_band"))


def _cmh(inq: np.ndarray, atl: np.ndarray, strata: np.ndarray) -> dict[str, float]:
    """CMH test of (in quadrant) x (at level) across strata; pooled MH odds ratio with its 95% interval."""
    from statsmodels.stats.contingency_tables import StratifiedTable  # 1.1 s CPU to import

    tables = []
    for s in np.unique(strata):
        m = strata == s
        t = np.array([[np.sum(inq[m] & atl[m]), np.sum(inq[m] & ~atl[m])],
                      [np.sum(~inq[m] & atl[m]), np.sum(~inq[m] & ~atl[m])]], dtype=float)
        if (t.sum(axis=0) > 0).all() and (t.sum(axis=1) > 0).all():  # a stratum with an empty margin adds nothing
            tables.append(t)
    out = {"p": math.nan, "odds_ratio": math.nan, "or_low": math.nan, "or_high": math.nan}
    if not tables:
        return out
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        st = StratifiedTable(tables)
        out["p"] = float(st.test_null_odds(correction=True).pvalue)
        out["odds_ratio"] = float(st.oddsratio_pooled)
        lo, hi = st.oddsratio_pooled_confint()
        out["or_low"], out["or_high"] = float(lo), float(hi)
    return out


def hardness(quads: pl.DataFrame, factors: Sequence[str] = FACTORS, *, strata: str = "gold",
             correction: str = "holm") -> pl.DataFrame:
    """Per modality, factor, level and quadrant: items, share of the level's items in the quadrant, the CMH test
    adjusted for ``strata`` (its p, Holm-adjusted p, pooled odds ratio and interval); ``strata`` itself is tested
    with a chi-square test and Cramér's V (same columns; odds ratio null)."""
    from scipy.stats import chi2_contingency  # 0.7 s CPU to import


    quads = with_age_band(quads)
    rows: list[dict[str, Any]] = []
    for mod in quads["modality"].unique(maintain_order=True).to_list():
        g = quads.filter(pl.col("modality") == mod)
        family = []
        for f in [f for f in factors if f in g.columns]:
            h = g.filter(pl.col(f).is_not_null())
            lv = h[f].cast(pl.String).to_numpy()
            q = h["quadrant"].to_numpy()
            levels = sorted(set(lv.tolist()))
            if len(levels) < 2:
                continue
            if f == strata:
                tab = np.array([[np.sum((lv == a) & (q == b)) for b in QUADRANTS] for a in levels])
                tab = tab[:, tab.sum(axis=0) > 0]
                if min(tab.shape) < 2:  # one quadrant only: nothing to test
                    continue
                chi2, p, _, _ = chi2_contingency(tab)
                v = math.sqrt(chi2 / (tab.sum() * (min(tab.shape) - 1)))
                family.append({"modality": mod, "factor": f, "level": "(all)", "quadrant": "(all)", "items": int(tab.sum()),
                               "share": math.nan, "p": float(p), "odds_ratio": math.nan, "or_low": math.nan,
                               "or_high": math.nan, "cramers_v": v, "adjusted_for": None})
                continue
            st = h[strata].cast(pl.String).to_numpy() if strata in h.columns else np.zeros(h.height).astype(str)
            for level in levels:
                atl = lv == level
                for quad in QUADRANTS:
                    inq = q == quad
                    res = _cmh(inq, atl, st)
                    family.append({"modality": mod, "factor": f, "level": level, "quadrant": quad,
                                   "items": int(atl.sum()), "share": float(inq[atl].mean()), **res,
                                   "cramers_v": math.nan, "adjusted_for": strata})
        if family:
            p_adj, _ = adjust([r["p"] for r in family], correction)
            for r, pa_ in zip(family, p_adj, strict=True):
                r["p_adjusted"] = float(pa_)
            rows.extend(family)
    cols = ["modality", "factor", "level", "quadrant", "items", "share", "odds_ratio", "or_low", "or_high",
            "cramers_v", "p", "p_adjusted", "adjusted_for"]
    return pl.DataFrame(rows, infer_schema_length=None).select(cols) if rows else pl.DataFrame(schema=dict.fromkeys(cols))


# -- models against people ----------------------------------------------------------------------
def spearman_ci(x: np.ndarray, y: np.ndarray, *, n_boot: int = 2000, ci: float = 0.95,
                seed: int = 0) -> tuple[float, float, float, float]:
    """(rho, p, low, high): Spearman's rho, scipy's p, and a percentile bootstrap interval over pairs."""
    from scipy.stats import rankdata, spearmanr  # 0.7 s CPU to import

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3:
        raise StatsError(f"{len(x)} segment(s) with both model predictions and human votes: need at least 3")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = spearmanr(x, y)
    rho, p = float(r.statistic), float(r.pvalue)
    idx = np.random.default_rng(seed).integers(0, len(x), size=(n_boot, len(x)))
    rx, ry = rankdata(x[idx], axis=1), rankdata(y[idx], axis=1)  # Spearman = Pearson on average ranks
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = (rx * ry).sum(axis=1) / np.sqrt((rx**2).sum(axis=1) * (ry**2).sum(axis=1))
    boot = boot[np.isfinite(boot)]
    lo, hi = np.quantile(boot, [(1 - ci) / 2, 1 - (1 - ci) / 2]) if boot.size else (math.nan, math.nan)
    return rho, p, float(lo), float(hi)


def model_vs_human(model: pl.DataFrame, human: pl.DataFrame, *, n_boot: int = 2000, ci: float = 0.95,
                   seed: int = 0) -> dict[str, Any]:
    """``model``: segment_id, disagreement_p, quadrant (the models'); ``human``: item, entropy, quadrant (people's).

    Returns n, rho, p, low, high (disagreement_p vs entropy), the model-quadrant x human-quadrant table and its
    chi-square p (NaN when the table has an empty row or column)."""
    from scipy.stats import chi2_contingency  # 0.7 s CPU to import

    df = model.select("segment_id", "disagreement_p", pl.col("quadrant").alias("model_quadrant")).join(
        human.select(pl.col("item").alias("segment_id"), "entropy", pl.col("quadrant").alias("human_quadrant")),
        on="segment_id", how="inner").drop_nulls()
    rho, p, lo, hi = spearman_ci(df["disagreement_p"].to_numpy(), df["entropy"].to_numpy(), n_boot=n_boot, ci=ci, seed=seed)
    tab = np.array([[df.filter((pl.col("model_quadrant") == a) & (pl.col("human_quadrant") == b)).height
                     for b in QUADRANTS] for a in QUADRANTS])
    table = pl.DataFrame({"model_quadrant": list(QUADRANTS), **{f"human_{b}": tab[:, j] for j, b in enumerate(QUADRANTS)}})
    kept = tab[tab.sum(axis=1) > 0][:, tab.sum(axis=0) > 0]
    chi_p = float(chi2_contingency(kept)[1]) if min(kept.shape) > 1 else math.nan
    return {"n": df.height, "rho": rho, "p": p, "low": lo, "high": hi, "table": table, "chi2_p": chi_p, "pairs": df}
