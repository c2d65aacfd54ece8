"""Statistics on vote counts (stats.crowd, crowd_items, crowd_raters), each against a reference written here from
its definition, an independent library on the same input, or the data set's own columns."""

from __future__ import annotations

import csv
import itertools
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from ambiguity.stats import crowd as C
from ambiguity.stats.crowd_items import _cmh, hardness, model_vs_human, spearman_ci

ROOT = Path(__file__).resolve().parents[2]
CREMA = ROOT / "examples" / "data" / "crema-d" / "tabulatedVotes.csv"


# -- references from the definitions ----------------------------------------------------------------
def fleiss_by_definition(counts):
    """Fleiss (1971) with each item's own n_i: P_i = (sum_j n_ij^2 - n_i) / (n_i (n_i - 1)), P-bar their mean,
    p_j = sum_i n_ij / sum_i n_i, P_e = sum_j p_j^2, kappa = (P-bar - P_e) / (1 - P_e); items with n_i < 2 left out."""
    rows = [list(r) for r in counts if sum(r) >= 2]
    p_i = []
    for r in rows:
        n = sum(r)
        p_i.append((sum(x * x for x in r) - n) / (n * (n - 1)))
    total = sum(sum(r) for r in rows)
    p_j = [sum(r[j] for r in rows) / total for j in range(len(rows[0]))]
    p_bar, p_e = sum(p_i) / len(p_i), sum(p * p for p in p_j)
    return (p_bar - p_e) / (1 - p_e)


def random_counts(rng, items, classes, lo=2, hi=12):
    out = np.zeros((items, classes), dtype=int)
    for i in range(items):
        n = rng.integers(lo, hi + 1)
        p = rng.dirichlet(np.ones(classes) * 0.7)
        out[i] = rng.multinomial(n, p)
    return out


def test_fleiss_with_varying_raters_matches_the_definition():
    rng = np.random.default_rng(1)
    for _ in range(20):
        c = random_counts(rng, int(rng.integers(3, 40)), int(rng.integers(2, 7)))
        assert C.fleiss_counts(c) == pytest.approx(fleiss_by_definition(c), abs=1e-12)


def test_fleiss_equal_raters_matches_statsmodels():
    # independent implementation on the same table (stats.crowd does not call it)
    from statsmodels.stats.inter_rater import fleiss_kappa

    rng = np.random.default_rng(2)
    c = random_counts(rng, 50, 4, lo=6, hi=6)
    assert C.fleiss_counts(c) == pytest.approx(fleiss_kappa(c, method="fleiss"), abs=1e-12)


def test_alpha_from_counts_matches_the_krippendorff_package():
    # the krippendorff package on reliability data expanded from the counts (one column per item, NaN padding)
    import krippendorff

    rng = np.random.default_rng(3)
    for _ in range(10):
        c = random_counts(rng, 30, 5, lo=1, hi=9)
        width = c.sum(axis=1).max()
        data = np.full((width, len(c)), np.nan)
        for i, row in enumerate(c):
            labels = np.repeat(np.arange(len(row)), row)
            data[: len(labels), i] = labels
        ref = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
        assert C.alpha_counts(c) == pytest.approx(ref, abs=1e-10)


def test_soft_labels_entropy_plurality_and_ties():
    from scipy.stats import entropy

    frame = pl.DataFrame({"item": ["a", "b", "c"], "gold": ["x", "x", "y"],
                          "counts": [[5, 1, 0], [3, 3, 0], [0, 2, 2]]})
    s = C.soft_labels(frame, ["x", "y", "z"])
    assert s["entropy"].to_list() == pytest.approx([entropy(r, base=2) for r in ([5, 1, 0], [3, 3, 0], [0, 2, 2])])
    assert s["plurality"].to_list() == ["x", "x:y", "y:z"]
    assert s["right"].to_list() == [True, False, False]  # a tie that includes gold is not right
    assert s["p_correct"].to_list() == pytest.approx([5 / 6, 0.5, 0.5])


# -- CREMA-D: the done-when checks on the real rows ---------------------------------------------------
GOLD = {"ANG": "A", "DIS": "D", "FEA": "F", "HAP": "H", "NEU": "N", "SAD": "S"}
CLASSES = "ADFHNS"
COND = {"1": "voice", "2": "face", "3": "audio-visual"}


@pytest.fixture(scope="module")
def crema_rows():
    with open(CREMA, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def crema_analysis(tmp_path_factory):
    """The CREMA-D tables through the user's path: import into a store, read back, analyse."""
    from ambiguity.annotate.human import analyse_store
    from ambiguity.annotate.judgments import read_judgments_file, save_judgments
    from ambiguity.stores.lance import FeatureStore

    store = FeatureStore(str(tmp_path_factory.mktemp("crema")))
    save_judgments(store, read_judgments_file(CREMA, layout="counts", preset="crema-d"))
    return analyse_store(store, n_boot=50)


def test_crema_plurality_matches_the_data_sets_own_vote(crema_rows):
    # emoVote is CREMA-D's plurality (ties joined by ':'): our plurality must be the same string on every row
    frame = pl.DataFrame({"item": [r["fileName"] for r in crema_rows],
                          "gold": [GOLD[r["fileName"].split("_")[2]] for r in crema_rows],
                          "counts": [[int(r[k]) for k in CLASSES] for r in crema_rows]})
    s = C.soft_labels(frame, list(CLASSES))
    assert s["plurality"].to_list() == [r["emoVote"] for r in crema_rows]


def test_crema_accuracy_per_condition_matches_the_definition(crema_rows, crema_analysis):
    ref = {}
    for cond in COND.values():
        rows = [r for r in crema_rows if COND[r[""][0]] == cond]
        gold_votes = sum(int(r[GOLD[r["fileName"].split("_")[2]]]) for r in rows)
        votes = sum(int(r["numResponses"]) for r in rows)
        right = 0
        for r in rows:
            counts = {k: int(r[k]) for k in CLASSES}
            g = GOLD[r["fileName"].split("_")[2]]
            right += all(counts[g] > v for k, v in counts.items() if k != g)
        ref[cond] = (gold_votes / votes, right / len(rows))
    got = {r["condition"]: (r["vote_accuracy"], r["plurality_accuracy"]) for r in crema_analysis.accuracy.iter_rows(named=True)}
    assert set(got) == set(ref)
    for cond, (v, p) in ref.items():
        assert got[cond] == pytest.approx((v, p), abs=1e-12)
    # the interval brackets the estimate
    for r in crema_analysis.accuracy.iter_rows(named=True):
        assert r["vote_low"] <= r["vote_accuracy"] <= r["vote_high"]


def test_crema_fleiss_per_condition_matches_the_definition(crema_rows, crema_analysis):
    got = {r["condition"]: r["kappa"] for r in crema_analysis.agreement.iter_rows(named=True)}
    for cond in COND.values():
        counts = [[int(r[k]) for k in CLASSES] for r in crema_rows if COND[r[""][0]] == cond]
        assert got[cond] == pytest.approx(fleiss_by_definition(counts), abs=1e-12)


def test_crema_human_quadrant_counts_match_the_definition(crema_rows, crema_analysis):
    right = {}
    for r in crema_rows:
        counts = {k: int(r[k]) for k in CLASSES}
        g = GOLD[r["fileName"].split("_")[2]]
        right[(r["fileName"], COND[r[""][0]])] = all(counts[g] > v for k, v in counts.items() if k != g)
    items = {r["fileName"] for r in crema_rows}
    ref = {}
    for mod, cond in (("audio", "voice"), ("video", "face")):
        for item in items:
            u, f = right[(item, cond)], right[(item, "audio-visual")]
            q = "red" if u and not f else "green" if f and not u else "blue" if u else "yellow"
            ref[(mod, q)] = ref.get((mod, q), 0) + 1
    got = {(r["modality"], r["quadrant"]): r["items"] for r in crema_analysis.quadrant_counts.iter_rows(named=True)}
    assert got == ref


# -- the bootstrap ---------------------------------------------------------------------------------
def test_cluster_bootstrap_resamples_whole_clusters():
    # each item copied 5 times: resampling the copies as clusters gives the interval of the originals, while
    # treating the copies as independent items gives an interval about sqrt(5) times narrower
    rng = np.random.default_rng(4)
    x = rng.random(200) < 0.6
    parts = np.column_stack([x.astype(float), np.ones(len(x))])
    dup = np.repeat(parts, 5, axis=0)
    clusters = np.repeat(np.arange(len(x)), 5)
    ratio = lambda s: np.atleast_2d(s)[:, 0] / np.atleast_2d(s)[:, 1]  # noqa: E731
    _, lo0, hi0 = C.cluster_bootstrap(parts, None, ratio, 4000, seed=1)
    est, lo1, hi1 = C.cluster_bootstrap(dup, clusters, ratio, 4000, seed=1)
    _, lo2, hi2 = C.cluster_bootstrap(dup, None, ratio, 4000, seed=1)
    assert est == pytest.approx(x.mean())
    assert (hi1 - lo1) == pytest.approx(hi0 - lo0, rel=0.15)
    assert (hi1 - lo1) / (hi2 - lo2) == pytest.approx(math.sqrt(5), rel=0.2)


def test_agreement_change_is_the_kappa_difference_on_the_quadrants_items():
    rng = np.random.default_rng(5)
    items = [f"i{k}" for k in range(120)]
    gold = [str(rng.integers(3)) for _ in items]
    rows = []
    for mod in ("audio", "all"):
        for it, g in zip(items, gold, strict=True):
            p = np.full(3, 0.15)
            p[int(g)] = 0.7 if mod == "all" else 0.45
            p /= p.sum()
            rows.append({"item": it, "condition": mod, "modality": mod, "gold": g,
                         "counts": rng.multinomial(int(rng.integers(5, 11)), p).tolist()})
    soft = C.soft_labels(pl.DataFrame(rows), ["0", "1", "2"])
    quads = C.human_quadrants(soft)
    res = C.agreement_change(soft, quads, n_boot=200)
    for r in res.filter(pl.col("items") > 1).iter_rows(named=True):
        ids = set(quads.filter(pl.col("quadrant") == r["quadrant"])["item"].to_list())
        cu = [x["counts"] for x in rows if x["item"] in ids and x["modality"] == "audio"]
        ca = [x["counts"] for x in rows if x["item"] in ids and x["modality"] == "all"]
        assert r["kappa_unimodal"] == pytest.approx(fleiss_by_definition(cu), abs=1e-12)
        assert r["change"] == pytest.approx(fleiss_by_definition(ca) - fleiss_by_definition(cu), abs=1e-12)
        if r["items"] > 20:
            assert r["change_low"] <= r["change"] <= r["change_high"]


# -- categorical tests ---------------------------------------------------------------------------------
def cmh_by_definition(tables):
    """Mantel-Haenszel (1959) chi-square with continuity correction and the pooled odds ratio."""
    from scipy.stats import chi2

    a = sum(t[0][0] for t in tables)
    e = sum((t[0][0] + t[0][1]) * (t[0][0] + t[1][0]) / sum(map(sum, t)) for t in tables)
    v = 0.0
    for t in tables:
        n = sum(map(sum, t))
        r1, r2, c1, c2 = t[0][0] + t[0][1], t[1][0] + t[1][1], t[0][0] + t[1][0], t[0][1] + t[1][1]
        v += r1 * r2 * c1 * c2 / (n * n * (n - 1))
    stat = (abs(a - e) - 0.5) ** 2 / v
    orr = sum(t[0][0] * t[1][1] / sum(map(sum, t)) for t in tables) / sum(t[0][1] * t[1][0] / sum(map(sum, t)) for t in tables)
    return chi2.sf(stat, 1), orr


def test_cmh_matches_the_definition():
    rng = np.random.default_rng(6)
    inq = rng.random(400) < 0.3
    atl = rng.random(400) < np.where(inq, 0.6, 0.4)
    strata = rng.integers(0, 3, 400)
    tables = []
    for s in range(3):
        m = strata == s
        tables.append([[int(np.sum(inq[m] & atl[m])), int(np.sum(inq[m] & ~atl[m]))],
                       [int(np.sum(~inq[m] & atl[m])), int(np.sum(~inq[m] & ~atl[m]))]])
    p, orr = cmh_by_definition(tables)
    got = _cmh(inq, atl, strata)
    assert got["p"] == pytest.approx(p, rel=1e-9)
    assert got["odds_ratio"] == pytest.approx(orr, rel=1e-9)
    assert got["or_low"] < got["odds_ratio"] < got["or_high"]


def test_hardness_finds_a_planted_level_adjusted_for_gold():
    # items at level "LO" land in yellow far more often, within every gold class; another factor is noise
    rng = np.random.default_rng(7)
    n = 900
    gold = rng.choice(list("abc"), n)
    level = rng.choice(["LO", "HI"], n)
    noise = rng.choice(["m", "f"], n)
    p_yellow = np.where(level == "LO", 0.5, 0.15)
    quad = np.where(rng.random(n) < p_yellow, "yellow", rng.choice(["blue", "green", "red"], n))
    quads = pl.DataFrame({"item": [str(i) for i in range(n)], "modality": "audio", "quadrant": quad,
                          "gold": gold, "intensity": level, "sex": noise})
    res = hardness(quads)
    hit = res.filter((pl.col("factor") == "intensity") & (pl.col("level") == "LO") & (pl.col("quadrant") == "yellow")).row(0, named=True)
    assert hit["p_adjusted"] < 1e-6 and hit["odds_ratio"] > 3
    assert res.filter(pl.col("factor") == "sex")["p_adjusted"].min() > 0.05


# -- model versus human -------------------------------------------------------------------------------
def _pairs(rng, n, planted):
    ent = rng.random(n) * 2.5
    dis = np.clip((ent / 2.5 if planted else rng.random(n)) + rng.normal(0, 0.15, n), 0, 1)
    mq = np.where(dis > 0.5, rng.choice(["red", "green"], n), rng.choice(["blue", "yellow"], n))
    hq = np.where(ent > 1.25, rng.choice(["red", "green"], n), rng.choice(["blue", "yellow"], n)) if planted \
        else rng.choice(["red", "green", "blue", "yellow"], n)
    ids = [f"s{i}" for i in range(n)]
    return (pl.DataFrame({"segment_id": ids, "disagreement_p": dis, "quadrant": mq}),
            pl.DataFrame({"item": ids, "entropy": ent, "quadrant": hq}))


def test_model_vs_human_finds_a_planted_relation_and_none_where_none_was_planted():
    rng = np.random.default_rng(8)
    res = model_vs_human(*_pairs(rng, 300, True), n_boot=500)
    assert res["rho"] > 0.5 and res["low"] > 0.3 and res["p"] < 1e-10 and res["chi2_p"] < 1e-6
    null = model_vs_human(*_pairs(rng, 300, False), n_boot=500)
    assert null["low"] < 0 < null["high"] and null["p"] > 0.01


def test_spearman_interval_matches_scipy_estimate():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(9)
    x, y = rng.random(80), rng.random(80)
    y = y + x
    rho, p, lo, hi = spearman_ci(x, y, n_boot=300)
    ref = spearmanr(x, y)
    assert (rho, p) == pytest.approx((ref.statistic, ref.pvalue))
    assert lo < rho < hi


# -- Dawid-Skene -------------------------------------------------------------------------------------
def test_dawid_skene_outvotes_colluding_bad_raters():
    # three careful raters and four who all answer "0" whatever the truth: the plurality follows the colluders,
    # Dawid-Skene learns their confusion and recovers the truth, and a careful rater's matrix is near the identity
    pytest.importorskip("crowdkit")
    from ambiguity.stats.crowd_raters import dawid_skene

    rng = np.random.default_rng(10)
    truth = {f"t{i}": str(rng.integers(3)) for i in range(150)}
    rows = []
    for (item, g), r in itertools.product(truth.items(), range(7)):
        label = (g if rng.random() < 0.9 else str(rng.integers(3))) if r < 3 else "0"
        rows.append({"item": item, "condition": "c", "rater": f"r{r}", "label": label})
    ratings = pl.DataFrame(rows)
    gold = pl.DataFrame({"item": list(truth), "gold": list(truth.values())})
    res = dawid_skene(ratings, ["0", "1", "2"], gold)
    row = res.comparison.row(0, named=True)
    assert row["ds_accuracy"] > 0.9 and row["plurality_accuracy"] < 0.5
    conf = res.confusion.filter((pl.col("rater") == "r0") & (pl.col("true") == pl.col("observed")))
    assert conf["p"].min() > 0.8
