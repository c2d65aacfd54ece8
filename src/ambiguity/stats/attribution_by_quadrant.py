"""Modality attributions per quadrant: means with intervals, red/green vs blue tests, dominant modality.

Means: the mean phi of each modality among a quadrant's segments with a t
interval (mean ± t_{n-1} SD / sqrt(n)). Tests: red vs blue and green vs blue for
every modality, each one :func:`ambiguity.stats.comparisons.compare` (Welch by default)
run uncorrected, then corrected together: **one family** of 2 x M tests (Holm by
default). Dominant: how many of a quadrant's segments had each modality as the
one with the largest |phi|, and its share.

Shares: the same means and tests on ``share_<m>`` = phi_m / sum of |phi| over the segment's
present players (:data:`SHARE_NOTE` says why): a share is what part of the model's move a
modality made, whatever the size of the move. Shares are their own correction family.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from ambiguity.constants import AGAINST_BLUE_PAIRS, CORRECTION_NAMES, QUADRANTS
from ambiguity.errors import StatsError
from ambiguity.models.attributions import WIDE_COLUMNS, check_same_scheme, read_attributions, wide
from ambiguity.stats.comparisons import compare
from ambiguity.stats.multitest import adjust, check_alpha, check_correction
from ambiguity.stats.quadrant_tables import load_quadrants, resolve_model  # the predictions layer

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore


#: Why raw phi cannot be compared across quadrants as it is, and what the shares do about it.
SHARE_NOTE = (
    "Raw phi is lower in red by construction: the values of a segment sum to fusion's p(correct) minus v(∅), "
    "and red means fusion's p(correct) <= 0.5, so red segments have less to distribute than blue ones. "
    "Shares (phi / sum of |phi| over the segment's present modalities) remove that scale."
)


def with_shares(frame: pl.DataFrame, modalities: Sequence[str]) -> pl.DataFrame:
    """``frame`` with share_<m> = phi_m / sum over present modalities of |phi| (null where absent or the sum is 0)."""
    cols = [f"phi_{m}" for m in modalities]
    phi = frame.select(cols).to_numpy().astype(np.float64)
    total = np.nansum(np.abs(phi), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total[:, None] > 0, phi / total[:, None], np.nan)
    return frame.with_columns([pl.Series(f"share_{m}", share[:, j]).fill_nan(None) for j, m in enumerate(modalities)])


@dataclass
class QuadrantAttribution:
    unimodal: str
    fusion: str
    target: str
    modalities: tuple[str, ...]
    frame: pl.DataFrame  # one row per segment: segment_id, quadrant, phi_<m>..., v_all, v_empty, dominant
    means: pl.DataFrame  # quadrant, modality, n, mean_phi, ci_low, ci_high
    tests: pl.DataFrame  # pair, modality, n_a, n_b, mean_a, mean_b, statistic, p, p_adj, reject, hedges_g
    dominant: pl.DataFrame  # quadrant, n, then per modality the count and share dominated
    correction: str
    test: str
    ci: float

    def describe(self) -> str:
        return (f"Shapley values of {self.fusion}'s {self.target}; quadrants of {self.unimodal} vs {self.fusion}; "
                f"{self.ci:.0%} t intervals, of phi and of its share. {SHARE_NOTE}")

    def comparison_caption(self) -> str:
        return (f"Red vs blue and green vs blue per modality ({self.test} t-test): one correction family of "
                f"{self.tests['p'].is_not_nan().sum()} tests of phi, {CORRECTION_NAMES[self.correction]}, and one of "
                f"{self.tests['share_p'].is_not_nan().sum()} tests of the share (share_* columns). {SHARE_NOTE}")


def _t_interval(x: np.ndarray, ci: float) -> tuple[float, float, float]:
    from scipy import stats  # scipy.stats: 0.7 s CPU to import, only here

    x = x[np.isfinite(x)]
    if len(x) == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(x.mean())
    if len(x) < 2:
        return m, float("nan"), float("nan")
    h = float(stats.t.ppf(0.5 + ci / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    return m, m - h, m + h


def quadrant_frame(attr_wide: pl.DataFrame, quadrants: pl.DataFrame) -> pl.DataFrame:
    joined = attr_wide.join(quadrants.select(["segment_id", "quadrant"]), on="segment_id", how="inner")
    if joined.height == 0:
        raise StatsError("no segment has both an attribution and a quadrant: attribute the same splits the quadrants use")
    return joined


def summarise(frame: pl.DataFrame, modalities: Sequence[str], *, test: str = "welch", correction: str = "holm",
              alpha: float = 0.05, ci: float = 0.95) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """means, tests, dominant tables from a frame with quadrant and phi_<modality> columns.

    means and tests cover phi and its share (:func:`with_shares`; ``mean_share``, ``share_*`` columns);
    the tests of phi are one correction family, those of the share another."""

    check_correction(correction)
    alpha, ci = check_alpha(alpha), check_alpha(ci, "ci")
    if any(f"share_{m}" not in frame.columns for m in modalities):
        frame = with_shares(frame, modalities)
    q = frame["quadrant"].to_numpy()
    rows = []
    for quad in QUADRANTS:
        sub = frame.filter(pl.col("quadrant") == quad)
        for m in modalities:
            mean, lo, hi = _t_interval(sub[f"phi_{m}"].cast(pl.Float64).fill_null(np.nan).to_numpy(), ci)
            sm, slo, shi = _t_interval(sub[f"share_{m}"].cast(pl.Float64).fill_null(np.nan).to_numpy(), ci)
            rows.append({"quadrant": quad, "modality": m, "n": int((q == quad).sum()), "mean_phi": mean, "ci_low": lo, "ci_high": hi,
                         "mean_share": sm, "share_ci_low": slo, "share_ci_high": shi})
    means = pl.DataFrame(rows)
    means_tests = _tests(frame, modalities, "phi", test, correction, alpha, ci)
    share_tests = _tests(frame, modalities, "share", test, correction, alpha, ci)
    tests_df = means_tests.join(
        share_tests.select("pair", "modality", *[pl.col(c).alias(f"share_{c}") for c in ("mean_a", "mean_b", "p", "p_adj", "reject", "hedges_g")]),
        on=["pair", "modality"], how="left", maintain_order="left")
    dom_rows = []
    for quad in QUADRANTS:
        sub = frame.filter(pl.col("quadrant") == quad)
        row = {"quadrant": quad, "n": sub.height}
        for m in modalities:
            k = int((sub["dominant"] == m).sum())
            row[f"{m}_n"] = k
            row[f"{m}_share"] = k / sub.height if sub.height else float("nan")
        dom_rows.append(row)
    return means, tests_df, pl.DataFrame(dom_rows)


def _tests(frame: pl.DataFrame, modalities: Sequence[str], scale: str, test: str, correction: str, alpha: float,
           ci: float) -> pl.DataFrame:
    """Red vs blue and green vs blue on ``<scale>_<m>`` for every modality: one correction family."""
    q = frame["quadrant"].to_numpy()
    tests = []
    cols = [f"{scale}_{m}" for m in modalities]
    present = set(q.tolist())
    for a, b in AGAINST_BLUE_PAIRS:
        if a not in present or b not in present:
            for m in modalities:
                tests.append({"pair": f"{a} vs {b}", "modality": m, "n_a": int((q == a).sum()), "n_b": int((q == b).sum()),
                              "mean_a": float("nan"), "mean_b": float("nan"), "statistic": float("nan"), "p": float("nan"),
                              "hedges_g": float("nan"), "reason": f"no segment in {a if a not in present else b}"})
            continue
        res = compare(frame.select(["quadrant", *cols]), "quadrant", a, b, test=test, correction="none", columns=cols, ci=ci)
        for r in res.table.iter_rows(named=True):
            tests.append({"pair": f"{a} vs {b}", "modality": r["feature"].removeprefix(f"{scale}_"), "n_a": r["n_a"], "n_b": r["n_b"],
                          "mean_a": r["mean_a"], "mean_b": r["mean_b"], "statistic": r["statistic"], "p": r["p"],
                          "hedges_g": r["hedges_g"], "reason": r["reason"]})
    tests_df = pl.DataFrame(tests, schema_overrides={"reason": pl.String})
    p_adj, reject = adjust(tests_df["p"].to_numpy(), correction, alpha)  # one family: every pair and modality
    return tests_df.with_columns(pl.Series("p_adj", p_adj), pl.Series("reject", reject)).select(
        ["pair", "modality", "n_a", "n_b", "mean_a", "mean_b", "statistic", "p", "p_adj", "reject", "hedges_g", "reason"])


def quadrant_attribution(store: FeatureStore, unimodal: str, fusion: str = "fusion", *, splits: Sequence[str] | None = None,
                         target: str = "p_correct", threshold: float = 0.5, test: str = "welch",
                         correction: str = "holm", alpha: float = 0.05, ci: float = 0.95,
                         quadrants: pl.DataFrame | None = None, scheme: str = "auto") -> QuadrantAttribution:
    """Per-quadrant summary of the stored attributions of ``fusion`` (run ``attribute`` first), on one
    scheme (auto: crossfit where the store has cross-fitted attributions); quadrants of another scheme are refused."""
    fusion = resolve_model(store, fusion)
    long = read_attributions(store, fusion, target, splits, scheme=scheme, columns=WIDE_COLUMNS)  # not keys, lists
    if quadrants is None:
        quadrants = load_quadrants(store, unimodal, fusion, splits=None if splits is None else tuple(splits),
                                   threshold=threshold, scheme=long["scheme"][0])
    check_same_scheme(long, quadrants)
    w = wide(long)
    del long  # one row per segment from here on
    mods = tuple(c.removeprefix("phi_") for c in w.columns if c.startswith("phi_"))  # wide() names the players
    frame = with_shares(quadrant_frame(w, quadrants), mods)
    means, tests, dom = summarise(frame, mods, test=test, correction=correction, alpha=alpha, ci=ci)
    return QuadrantAttribution(resolve_model(store, unimodal), fusion, target, mods, frame, means, tests, dom,
                               correction, test, ci)


def auc_lower(flagged: np.ndarray, other: np.ndarray, *, n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> dict:
    """AUC = P(a flagged value < an unflagged one) (+ half the ties), its rank-biserial 2 AUC - 1, and
    percentile bootstrap intervals (each group resampled with replacement, ``n_boot`` times, seeded).

    AUC = 1 - U_flagged / (n_f n_o), with U from :func:`scipy.stats.mannwhitneyu`.
    """
    from scipy import stats  # scipy.stats: 0.7 s CPU to import, only here

    f, o = np.asarray(flagged, float), np.asarray(other, float)
    f, o = f[np.isfinite(f)], o[np.isfinite(o)]
    if len(f) < 1 or len(o) < 1:
        raise StatsError(f"need values in both groups; got {len(f)} flagged and {len(o)} other")

    def auc(a, b):
        return 1.0 - stats.mannwhitneyu(a, b, alternative="two-sided").statistic / (len(a) * len(b))

    point = auc(f, o)
    rng = np.random.default_rng(seed)
    boots = np.array([auc(rng.choice(f, len(f)), rng.choice(o, len(o))) for _ in range(n_boot)])
    lo, hi = np.quantile(boots, [0.5 - ci / 2, 0.5 + ci / 2])
    p = float(stats.mannwhitneyu(f, o, alternative="less").pvalue) if len(f) and len(o) else float("nan")
    return {"n_flagged": len(f), "n_other": len(o), "auc": float(point), "auc_low": float(lo), "auc_high": float(hi),
            "rank_biserial": 2 * float(point) - 1, "rb_low": 2 * float(lo) - 1, "rb_high": 2 * float(hi) - 1,
            "p_one_sided": p}
