"""Independent anchors for every statistic: published values, or a from-the-definition
implementation written here -- never the library the code under test wraps.

Wrapped libraries (not used as references below): statsmodels ``multipletests``,
``cohens_kappa``, ``fleiss_kappa``, ``proportion_confint``, ``mcnemar``; the
``krippendorff`` package; pingouin's ``bayesfactor_ttest``.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import scipy.stats
from numpy.testing import assert_allclose
from stats_refs import (
    _simes,
    ref_alpha,
    ref_bf10,
    ref_bh,
    ref_bonferroni,
    ref_by,
    ref_closed,
    ref_cohen,
    ref_fleiss,
    ref_holm,
    ref_mcnemar_exact,
    ref_wilson,
)

from ambiguity.stats.comparisons import compare
from ambiguity.stats.interrater import cohen_kappa, fleiss, krippendorff_alpha
from ambiguity.stats.multitest import adjust

# -- multiple-comparison corrections ---------------------------------------------------------
# Definitions (as documented for R's p.adjust, ?p.adjust, and the original papers):
#   p_(1) <= ... <= p_(m) sorted;
#   Bonferroni  min(1, m p_i)
#   Holm (1979) step-down:   adj_(i) = max_{j<=i} min(1, (m - j + 1) p_(j))
#   BH (1995) step-up:       adj_(i) = min_{j>=i} min(1, m p_(j) / j)
#   BY (2001):               BH with m replaced by m * sum_{k=1..m} 1/k
#   Hommel (1988): the closed test of Simes (1986) tests; adj_i = max over subsets I
#     containing i of the Simes p of I, min_j |I| p_(j:I) / j  (brute force below).
# R's p.adjust(p, method) ("bonferroni", "holm", "BH", "BY", "hommel") is documented with these
# definitions; R is not installed here, so the values are computed from them in stats_refs.py.
REFS = {"bonferroni": ref_bonferroni, "holm": ref_holm, "fdr_bh": ref_bh, "fdr_by": ref_by}

P25 = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216, 0.222, 0.251, 0.269, 0.275, 0.34,
                0.341, 0.384, 0.569, 0.594, 0.696, 0.762, 0.94, 0.942, 0.975, 0.986])
P9 = np.array([0.04, 0.001, 0.3, 0.012, 0.012, 0.6, 0.021, 0.049, 0.0301])  # unsorted, with a tie


@pytest.mark.parametrize("method", sorted(REFS))
@pytest.mark.parametrize("p", [P25, P9, np.array([0.5]), np.array([0.9, 0.95, 0.99])], ids=["p25", "p9", "one", "high"])
def test_corrections_equal_their_definitions(method, p):
    got, reject = adjust(p, method, alpha=0.05)
    want = REFS[method](p)
    assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert reject.tolist() == (want <= 0.05).tolist()


def test_holm_and_hommel_equal_closed_testing():
    # Holm = closed testing of Bonferroni tests (Marcus, Peritz & Gabriel 1976; Holm 1979);
    # Hommel = closed testing of Simes tests (Hommel 1988). 2^9 - 1 intersections, brute force.
    holm = ref_closed(P9, lambda q: min(1.0, len(q) * float(np.min(q))))
    assert_allclose(adjust(P9, "holm")[0], holm, rtol=1e-12)
    assert_allclose(ref_holm(P9), holm, rtol=1e-12)  # the two reference definitions agree
    hommel = ref_closed(P9, _simes)
    assert_allclose(adjust(P9, "hommel")[0], hommel, rtol=1e-12)
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 0.2, 8) ** 2
    assert_allclose(adjust(p, "hommel")[0], ref_closed(p, _simes), rtol=1e-12)


def test_nan_left_out_of_the_family_by_definition():
    p = P25.copy()
    p[[2, 9]] = np.nan
    keep = ~np.isnan(p)
    for method, ref in REFS.items():
        got, reject = adjust(p, method, alpha=0.1)
        assert_allclose(got[keep], ref(p[keep]), rtol=1e-12)  # m = 23, not 25
        assert np.isnan(got[~keep]).all() and not reject[~keep].any()


@pytest.mark.parametrize("method,want", [
    ("bonferroni", [0.05, 0.10, 0.15, 0.20, 0.25]),
    ("holm", [0.05, 0.08, 0.09, 0.09, 0.09]),  # 5p1, 4p2, max(.08, 3p3), max(.09, 2p4), max(.09, p5)
    ("fdr_bh", [0.05] * 5),  # 5 p_i / i = 0.05 for every i
    ("fdr_by", [0.05 * (1 + 1 / 2 + 1 / 3 + 1 / 4 + 1 / 5)] * 5),  # 0.1141667
    ("hommel", [0.05] * 5),  # every Simes p of a subset containing i is <= 0.05, and {5} gives 0.05
])
def test_corrections_of_a_fixed_vector_worked_by_hand(method, want):
    # p = c(0.01, 0.02, 0.03, 0.04, 0.05): the values R's p.adjust(p, method) gives by its
    # documented definitions, worked out by hand here (R itself is not available to run).
    got, _ = adjust([0.01, 0.02, 0.03, 0.04, 0.05], method)
    assert_allclose(got, want, rtol=1e-12)


def test_benjamini_hochberg_1995_worked_example():
    # Benjamini & Hochberg (1995), J. R. Stat. Soc. B 57:289-300, section 4: the 15 p-values of
    # the myocardial-infarction study. At level 0.05 Bonferroni rejects three hypotheses and the
    # FDR procedure rejects four (p <= 0.0095).
    p = np.array([0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262, 0.5719,
                  0.6528, 0.7590, 1.0000])
    assert adjust(p, "bonferroni", 0.05)[1].sum() == 3
    assert adjust(p, "holm", 0.05)[1].sum() == 3
    bh = adjust(p, "fdr_bh", 0.05)[1]
    assert bh.sum() == 4 and bh[:4].all()


# -- Cohen's kappa ------------------------------------------------------------------------------



@pytest.mark.parametrize("seed,k,n", [(0, 2, 30), (1, 2, 204), (2, 3, 50), (3, 5, 120), (4, 4, 7)])
def test_cohen_kappa_equals_its_definition(seed, k, n):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, k, n)
    b = np.where(rng.random(n) < 0.6, a, rng.integers(0, k, n))
    assert cohen_kappa(a.tolist(), b.tolist()) == pytest.approx(ref_cohen(a, b), abs=1e-12)


def test_cohen_kappa_published_example():
    # The worked example of the Wikipedia article "Cohen's kappa" (50 grant proposals, two readers):
    # both yes 20, A yes / B no 5, A no / B yes 10, both no 15 -> p_o = 0.7, p_e = 0.5, kappa = 0.4.
    a = ["yes"] * 20 + ["yes"] * 5 + ["no"] * 10 + ["no"] * 15
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4, abs=1e-12)
    assert cohen_kappa(a, b) == pytest.approx(ref_cohen(a, b), abs=1e-12)


# -- Fleiss' kappa ---------------------------------------------------------------------------



def _counts(rows, k):
    return np.stack([np.bincount(np.asarray(r), minlength=k) for r in rows])


def test_fleiss_1971_published_value():
    from test_interrater import DIAGNOSES

    # Fleiss (1971), Psychol. Bull. 76:378, Table 1 (30 patients, 6 psychiatrists, 5 diagnoses):
    # overall kappa = .430 as printed in the paper.
    assert round(fleiss(DIAGNOSES), 3) == 0.430
    assert fleiss(DIAGNOSES) == pytest.approx(ref_fleiss(_counts(DIAGNOSES, 6)), abs=1e-12)


def test_fleiss_wikipedia_worked_example():
    # The worked example of the Wikipedia article "Fleiss' kappa" (10 subjects, 14 raters,
    # 5 categories; P_bar = 0.378, P_e = 0.213, kappa = 0.210), given there as category counts.
    counts = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
              [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    rows = [[c for c, n in enumerate(r) for _ in range(n)] for r in counts]
    assert round(fleiss(rows), 3) == 0.210
    assert fleiss(rows) == pytest.approx(ref_fleiss(counts), abs=1e-12)


@pytest.mark.parametrize("seed,raters,k", [(5, 4, 3), (6, 2, 2), (7, 7, 5)])
def test_fleiss_equals_its_definition(seed, raters, k):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, 40)
    data = np.where(rng.random((40, raters)) < 0.5, truth[:, None], rng.integers(0, k, (40, raters)))
    assert fleiss(data.tolist()) == pytest.approx(ref_fleiss(_counts(data, k)), abs=1e-12)


# -- Krippendorff's alpha --------------------------------------------------------------------



_ = None
KRIPPENDORFF_2011 = [  # 4 observers x 12 units, with missing values (Krippendorff 2011, section C)
    [1, 2, 3, 3, 2, 1, 4, 1, 2, _, _, _],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, _, 3],
    [_, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, _],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, _],
]


@pytest.mark.parametrize("level,published", [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)])
def test_krippendorff_2011_published_alphas(level, published):
    # Krippendorff (2011), sections C-F: alpha = 0.743 nominal, 0.815 ordinal, 0.849 interval, 0.797 ratio.
    got = krippendorff_alpha(KRIPPENDORFF_2011, level)
    assert round(got, 3) == published
    assert got == pytest.approx(ref_alpha(KRIPPENDORFF_2011, level), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_krippendorff_equals_its_definition(seed, level):
    rng = np.random.default_rng(seed)
    truth = rng.integers(1, 6, 25)
    data = np.where(rng.random((3, 25)) < 0.6, truth, rng.integers(1, 6, (3, 25))).astype(object)
    data[rng.random(data.shape) < 0.15] = None
    rows = [[None if v is None else int(v) for v in r] for r in data]
    assert krippendorff_alpha(rows, level) == pytest.approx(ref_alpha(rows, level), abs=1e-12)


def test_krippendorff_nominal_labels_and_bad_level():
    from ambiguity.errors import StatsError

    labels = [["neu", "emp", None, "mixed"], ["neu", "emp", "emp", "neu"], [None, "emp", "emp", "mixed"]]
    assert krippendorff_alpha(labels) == pytest.approx(ref_alpha(labels, "nominal"), abs=1e-12)
    with pytest.raises(StatsError, match="unknown level"):
        krippendorff_alpha(labels, "cardinal")
    with pytest.raises(StatsError, match="numeric"):
        krippendorff_alpha(labels, "ordinal")


# -- Bayes factor ------------------------------------------------------------------------------



def test_bf10_equals_the_jzs_integral():
    rng = np.random.default_rng(11)
    xa = rng.normal(0, 1, (23, 4)) + np.array([0.0, 0.3, 0.8, 1.5])
    xb = rng.normal(0, 1, (31, 4))
    df = pl.DataFrame({f"f{i}": np.concatenate([xa[:, i], xb[:, i]]) for i in range(4)}).with_columns(
        pl.Series("q", ["red"] * 23 + ["blue"] * 31))
    res = compare(df, "q", "red", "blue", test="student", bayes=True).to_polars()
    for j in range(4):
        t = scipy.stats.ttest_ind(xa[:, j], xb[:, j]).statistic
        # rel 1e-3: the reference agrees with a 30-digit mpmath g-integral to 1e-15; pingouin's quad
        # (default tolerances) is off by ~1e-4 relative (measured: 0.386308 vs 0.386267 at t=0.9).
        assert res["bf10"][j] == pytest.approx(ref_bf10(float(t), 23, 31), rel=1e-3)
    # the BF grows with the evidence: the null feature favours H0, the strong one H1
    assert res["bf10"][0] < 1 < res["bf10"][3]


# -- effect sizes ------------------------------------------------------------------------------

def test_effect_sizes_equal_their_definitions():
    rng = np.random.default_rng(4)
    xa, xb = rng.normal(0.5, 1.3, 17), rng.normal(0.0, 0.8, 26)
    df = pl.DataFrame({"f": np.concatenate([xa, xb]), "q": ["red"] * 17 + ["blue"] * 26})
    row = compare(df, "q", "red", "blue", test="student", ci=0.9).to_polars().row(0, named=True)
    na, nb = len(xa), len(xb)
    sp = math.sqrt(((na - 1) * xa.var(ddof=1) + (nb - 1) * xb.var(ddof=1)) / (na + nb - 2))
    d = (xa.mean() - xb.mean()) / sp  # Cohen (1988), pooled SD
    g = d * (1 - 3 / (4 * (na + nb) - 9))  # Hedges & Olkin (1985), the approximate J
    assert row["cohen_d"] == pytest.approx(d, abs=1e-12)
    assert row["hedges_g"] == pytest.approx(g, abs=1e-12)
    se = math.sqrt((na + nb) / (na * nb) + g**2 / (2 * (na + nb)))  # Hedges & Olkin (1985), p. 86
    crit = scipy.stats.t.ppf(0.95, na + nb - 2)  # 90% two-sided
    assert [row["g_ci_low"], row["g_ci_high"]] == pytest.approx([g - crit * se, g + crit * se], abs=1e-12)
    # rank-biserial (Kerby 2014): share of (a, b) pairs where a wins minus share where b wins
    row = compare(df, "q", "red", "blue", test="mannwhitney").to_polars().row(0, named=True)
    wins = sum(float(x > y) + 0.5 * float(x == y) for x in xa for y in xb)
    assert row["rank_biserial"] == pytest.approx((2 * wins - na * nb) / (na * nb), abs=1e-12)


# -- Wilson interval, McNemar -------------------------------------------------------------------





@pytest.mark.parametrize("ci", [0.8, 0.95, 0.99])
def test_accuracy_wilson_at_the_requested_level_and_exact_mcnemar(ci):
    from test_interrater import _study, accuracy_rows

    from ambiguity.stats.interrater import agreement

    ann, items = _study(seed=7)
    res = agreement(ann, items, n_boot=0, ci=ci)
    for row, u, m in accuracy_rows(res, ann, items):
        cu = (u["label"] == u["judgment"]).to_numpy()
        cm = (m["label"] == m["judgment"]).to_numpy()
        for name, c in (("unimodal", cu), ("multimodal", cm)):
            lo, hi = ref_wilson(int(c.sum()), len(c), ci)
            assert row[f"acc_{name}_low"] == pytest.approx(lo, abs=1e-12)
            assert row[f"acc_{name}_high"] == pytest.approx(hi, abs=1e-12)
        assert row["mcnemar_p"] == pytest.approx(ref_mcnemar_exact(int(np.sum(cu & ~cm)), int(np.sum(~cu & cm))), abs=1e-12)
    assert f"Wilson {ci:.0%}" in res.to_markdown()
