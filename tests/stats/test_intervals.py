"""The agreement bootstrap intervals (BCa, ambiguity.stats.intervals), checked against
scipy.stats.bootstrap(method="BCa") on the same resamples (an independent implementation: our code
does not call it), for coverage at 17, 34 and 100 items, for bracketing the estimate, and for being paired."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.stats
from stats_refs import ref_cohen, ref_fleiss

from ambiguity.stats.interrater import _group_stats, agreement

LABELS = ("emp", "neu", "mixed")


def _one_quadrant(n, raters, seed, p_u=0.6, p_m=0.75, labels=LABELS):
    """Answers of ``raters`` to n red items; the multimodal answer repeats the unimodal one mostly."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, len(labels), n)
    rows = []
    for i in range(n):
        for r in range(raters):
            u = truth[i] if rng.random() < p_u else rng.integers(0, len(labels))
            m = u if rng.random() < p_m else (truth[i] if rng.random() < 0.5 else rng.integers(0, len(labels)))
            rows += [(f"r{r}", f"i{i:03d}", "unimodal", labels[u]), (f"r{r}", f"i{i:03d}", "multimodal", labels[m])]
    ann = pl.DataFrame(rows, schema=["annotator", "item", "round", "judgment"], orient="row")
    items = pl.DataFrame({"item": [f"i{i:03d}" for i in range(n)], "quadrant": ["red"] * n})
    return ann, items


def _matrix(ann, rnd):
    w = ann.filter(pl.col("round") == rnd).pivot(on="annotator", index="item", values="judgment").sort("item")
    return w.drop("item").to_numpy()


def _statistic(raters):
    if raters == 2:
        return lambda x: ref_cohen(x[:, 0], x[:, 1])

    def fl(x):
        codes = np.searchsorted(np.array(sorted(LABELS)), x)
        return ref_fleiss(np.stack([np.bincount(r, minlength=len(LABELS)) for r in codes]))

    return fl


@pytest.mark.parametrize("raters", [2, 4])
@pytest.mark.parametrize("ci", [0.9, 0.95])
def test_intervals_equal_scipy_bootstrap_on_the_same_resamples(raters, ci):
    ann, items = _one_quadrant(80, raters, seed=raters)
    n_boot, seed = 400, 17
    res = agreement(ann, items, n_boot=n_boot, ci=ci, seed=seed)
    row = res.table.filter(pl.col("quadrant") == "red").row(0, named=True)  # the first row draws first
    assert row["boot_valid"] == n_boot
    u, m = _matrix(ann, "unimodal"), _matrix(ann, "multimodal")
    stat = _statistic(raters)
    idx = np.arange(len(u))
    # scipy.stats.bootstrap resamples item indices with rng.integers(0, n, (n_resamples, n)), as
    # agreement does, so the same seed gives the same resamples; paired = one index for both rounds.
    refs = {
        "unimodal": lambda i: stat(u[i]),
        "multimodal": lambda i: stat(m[i]),
        "delta": lambda i: stat(m[i]) - stat(u[i]),
    }
    for name, f in refs.items():
        b = scipy.stats.bootstrap((idx,), f, n_resamples=n_boot, confidence_level=ci, method="BCa",
                                  vectorized=False, rng=np.random.default_rng(seed))
        lo, hi = (f"kappa_{name}_low", f"kappa_{name}_high") if name != "delta" else ("delta_low", "delta_high")
        assert row[lo] == pytest.approx(b.confidence_interval.low, abs=1e-12), name
        assert row[hi] == pytest.approx(b.confidence_interval.high, abs=1e-12), name
    # the estimates themselves
    assert row["kappa_unimodal"] == pytest.approx(stat(u), abs=1e-12)
    assert row["delta"] == pytest.approx(stat(m) - stat(u), abs=1e-12)


@pytest.mark.parametrize("raters", [2, 3])
@pytest.mark.parametrize("seed", range(6))
def test_intervals_bracket_the_estimate(raters, seed):
    ann, items = _one_quadrant(120, raters, seed=seed)
    row = agreement(ann, items, n_boot=300, seed=seed).table.row(0, named=True)
    for name in ("kappa_unimodal", "kappa_multimodal", "delta"):
        assert row[f"{name}_low"] < row[name] < row[f"{name}_high"], (name, row)


@pytest.mark.parametrize("raters", [2, 3])
def test_paired_resampling_differs_visibly_from_unpaired(raters):
    # The multimodal answers repeat the unimodal ones 90% of the time, so the two kappas move
    # together across resamples and the paired interval of their change is narrow; resampling
    # the rounds independently (a bug this test is for) gives a much wider one.
    ann, items = _one_quadrant(150, raters, seed=9, p_m=0.9)
    row = agreement(ann, items, n_boot=500, seed=3).table.row(0, named=True)
    u, m = _matrix(ann, "unimodal"), _matrix(ann, "multimodal")
    stat = _statistic(raters)
    rng = np.random.default_rng(3)
    n = len(u)
    unpaired = np.array([stat(m[rng.integers(0, n, n)]) - stat(u[rng.integers(0, n, n)]) for _ in range(500)])
    lo, hi = np.quantile(unpaired, [0.025, 0.975])
    paired_width = row["delta_high"] - row["delta_low"]
    assert paired_width < 0.6 * (hi - lo), (paired_width, hi - lo)


def test_fleiss_bounds_are_ordered_per_round():
    # a swapped low/high (or rounds) would show: the unimodal round agrees less than the multimodal one
    ann, items = _one_quadrant(200, 4, seed=1, p_u=0.3, p_m=0.2)
    row = agreement(ann, items, n_boot=300, seed=0).table.row(0, named=True)
    assert row["statistic"] == "fleiss"
    assert row["kappa_unimodal_low"] < row["kappa_unimodal"] < row["kappa_unimodal_high"]
    assert row["kappa_multimodal_low"] < row["kappa_multimodal"] < row["kappa_multimodal_high"]


def _coverage(raters, sims, n_items, n_boot, q=0.5, seed=0):
    """Share of 95% intervals that cover the true kappa and the true alpha.

    Truth: a rater's label is the item's true label (uniform over k = 2) with probability
    sqrt(q), otherwise a fresh uniform label. Two raters then agree beyond chance with
    kappa = q exactly (marginals are uniform, so p_e = 1/2 and p_o = 1/2 + q/2); Fleiss' kappa
    and Krippendorff's alpha have the same population value with equal, uniform marginals.
    """
    rng = np.random.default_rng(seed)
    hits = np.zeros(2)
    s = np.sqrt(q)
    for _ in range(sims):
        truth = rng.integers(0, 2, n_items)
        codes = np.where(rng.random((n_items, raters)) < s, truth[:, None], rng.integers(0, 2, (n_items, raters)))
        out = _group_stats(codes, codes, 2, n_boot, 0.95, rng)
        hits += [out["kappa_unimodal_low"] <= q <= out["kappa_unimodal_high"],
                 out["alpha_unimodal_low"] <= q <= out["alpha_unimodal_high"]]
    return hits / sims


@pytest.mark.slow
@pytest.mark.parametrize("n_items", [17, 34, 100])
@pytest.mark.parametrize("raters", [2, 3])
def test_coverage_at_the_sizes_used(raters, n_items):
    # 1,000 simulated annotator sets (seed 0) per size: 17 and 34 items are Table 5's quadrants.
    # >= 0.93 allows the Monte-Carlo error (SD 0.007 at 0.95). Cohen's kappa (2 raters) or Fleiss'
    # kappa (3), and Krippendorff's alpha, each with its BCa interval. Figures in docs/statistics.md.
    kappa, alpha = _coverage(raters, sims=1000, n_items=n_items, n_boot=1000)
    print(f"coverage, {raters} raters, {n_items} items: kappa {kappa:.3f}, alpha {alpha:.3f}")
    assert kappa >= 0.93 and alpha >= 0.93, (kappa, alpha)


def test_krippendorff_interval_equals_scipy_bca_and_its_estimate_the_definition():
    from stats_refs import ref_alpha

    from ambiguity.stats import intervals as iv

    rng = np.random.default_rng(5)
    codes = rng.integers(0, 3, (40, 3))
    codes[:, 1] = np.where(rng.random(40) < 0.6, codes[:, 0], codes[:, 1])  # some agreement
    codes[rng.random((40, 3)) < 0.15] = -1  # missing ratings
    data = [[None if v < 0 else int(v) for v in row] for row in codes.T]
    summ = iv.krippendorff_summaries(iv.category_counts(codes, 3))
    stat = iv.krippendorff_statistic(3)
    # reference: Krippendorff (2011) coincidence-matrix definition (stats_refs.ref_alpha), raters x items
    assert float(stat(summ.sum(0))) == pytest.approx(ref_alpha(data, "nominal"), abs=1e-12)
    counts = iv.resample_counts(40, 500, np.random.default_rng(8))
    got = iv.item_interval(summ, stat, counts=counts, ci=0.95)
    # reference: scipy.stats.bootstrap(method="BCa") on the same resampled items (same rng draws)
    b = scipy.stats.bootstrap((np.arange(40),), lambda i: float(stat(summ[i].sum(0))), n_resamples=500,
                              method="BCa", vectorized=False, rng=np.random.default_rng(8))
    assert got.low == pytest.approx(b.confidence_interval.low, abs=1e-10)
    assert got.high == pytest.approx(b.confidence_interval.high, abs=1e-10)
