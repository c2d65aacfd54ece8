"""stats.attribution: t intervals, the red/green vs blue tests in one correction family, the
dominant-modality counts and the AUC of the flagged modality's phi -- each against scipy called
differently, statsmodels, or its definition (tests/stats/stats_refs.py)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import scipy.stats
from stats_refs import ref_bh, ref_holm

from ambiguity.errors import StatsError
from ambiguity.stats.attribution_by_quadrant import _t_interval, auc_lower, summarise

MODS = ("text", "audio", "video")


def _frame(seed=0, sizes=(("red", 14), ("green", 9), ("blue", 23), ("yellow", 6))):
    rng = np.random.default_rng(seed)
    rows = []
    for q, n in sizes:
        shift = {"red": 0.4, "green": -0.3, "blue": 0.0, "yellow": 0.1}[q]
        phi = rng.normal(0, 1, (n, 3)) + np.array([shift, 0.0, -shift])
        for k in range(n):
            rows.append({"segment_id": f"{q}{k}", "quadrant": q, **{f"phi_{m}": phi[k, i] for i, m in enumerate(MODS)},
                         "dominant": MODS[int(np.argmax(np.abs(phi[k])))]})
    return pl.DataFrame(rows)


@pytest.mark.parametrize("ci", [0.8, 0.95])
def test_t_interval_equals_scipy_and_statsmodels(ci):
    from statsmodels.stats.weightstats import DescrStatsW

    x = np.random.default_rng(1).normal(2, 3, 17)
    m, lo, hi = _t_interval(np.append(x, [np.nan, np.inf]), ci)  # non-finite values are left out
    # reference 1: scipy.stats.t.interval(ci, n - 1, loc=mean, scale=sem)
    ref = scipy.stats.t.interval(ci, len(x) - 1, loc=x.mean(), scale=scipy.stats.sem(x))
    assert (m, lo, hi) == pytest.approx((x.mean(), *ref), abs=1e-12)
    # reference 2: statsmodels' DescrStatsW(x).tconfint_mean(alpha=1 - ci)
    assert (lo, hi) == pytest.approx(DescrStatsW(x).tconfint_mean(alpha=1 - ci), abs=1e-12)
    assert _t_interval(np.array([1.5]), ci)[0] == 1.5 and math.isnan(_t_interval(np.array([1.5]), ci)[1])
    assert all(math.isnan(v) for v in _t_interval(np.array([np.nan]), ci))


@pytest.mark.parametrize("correction,ref", [("holm", ref_holm), ("fdr_bh", ref_bh)])
def test_summarise_tests_are_welch_in_one_family(correction, ref):
    frame = _frame()
    means, tests, dom = summarise(frame, MODS, correction=correction, ci=0.9)
    assert tests.height == 6 and tests["pair"].to_list() == ["red vs blue"] * 3 + ["green vs blue"] * 3
    p = []
    for row in tests.iter_rows(named=True):
        a = row["pair"].split(" vs ")[0]
        xa = frame.filter(pl.col("quadrant") == a)[f"phi_{row['modality']}"].to_numpy()
        xb = frame.filter(pl.col("quadrant") == "blue")[f"phi_{row['modality']}"].to_numpy()
        # reference: scipy.stats.ttest_ind(xa, xb, equal_var=False) (Welch)
        t = scipy.stats.ttest_ind(xa, xb, equal_var=False)
        assert row["statistic"] == pytest.approx(t.statistic, abs=1e-12)
        assert row["p"] == pytest.approx(t.pvalue, abs=1e-12)
        assert (row["n_a"], row["n_b"]) == (len(xa), len(xb))
        assert (row["mean_a"], row["mean_b"]) == pytest.approx((xa.mean(), xb.mean()), abs=1e-12)
        p.append(t.pvalue)
    # one family of 2 x 3 tests, corrected together (not per pair)
    assert tests["p_adj"].to_numpy() == pytest.approx(ref(np.array(p)), abs=1e-12)
    assert tests["reject"].to_list() == (ref(np.array(p)) <= 0.05).tolist()


def test_summarise_means_and_dominant_counts():
    frame = _frame(seed=2)
    means, _, dom = summarise(frame, MODS, ci=0.9)
    for row in means.iter_rows(named=True):
        x = frame.filter(pl.col("quadrant") == row["quadrant"])[f"phi_{row['modality']}"].to_numpy()
        lo, hi = scipy.stats.t.interval(0.9, len(x) - 1, loc=x.mean(), scale=scipy.stats.sem(x))
        assert (row["n"], row["mean_phi"], row["ci_low"], row["ci_high"]) == pytest.approx((len(x), x.mean(), lo, hi), abs=1e-12)
    for row in dom.iter_rows(named=True):
        sub = frame.filter(pl.col("quadrant") == row["quadrant"])
        assert row["n"] == sub.height
        for m in MODS:
            k = int((sub["dominant"] == m).sum())
            assert row[f"{m}_n"] == k and row[f"{m}_share"] == pytest.approx(k / sub.height)
        assert sum(row[f"{m}_n"] for m in MODS) == sub.height


def test_summarise_without_green_gives_reasons_and_a_smaller_family():
    frame = _frame(sizes=(("red", 10), ("blue", 12)))
    means, tests, dom = summarise(frame, MODS)
    green = tests.filter(pl.col("pair") == "green vs blue")
    assert green["p"].is_nan().all() and set(green["reason"].to_list()) == {"no segment in green"}
    red = tests.filter(pl.col("pair") == "red vs blue")
    assert red["p_adj"].to_numpy() == pytest.approx(ref_holm(red["p"].to_numpy()), abs=1e-12)  # family of 3
    assert dom.filter(pl.col("quadrant") == "green")["n"].to_list() == [0]
    with pytest.raises(StatsError):
        summarise(frame, MODS, correction="nope")


def _auc_definition(f, o):
    """P(a flagged value < an unflagged one) + half the ties, by counting all pairs."""
    return float(np.mean((f[:, None] < o[None, :]) + 0.5 * (f[:, None] == o[None, :])))


def test_auc_equals_its_definition_and_interval_brackets_it():
    rng = np.random.default_rng(3)
    f = np.round(rng.normal(-0.8, 1, 30), 1)  # rounded: ties
    o = np.round(rng.normal(0.0, 1, 45), 1)
    res = auc_lower(np.append(f, np.nan), o, n_boot=500, ci=0.9, seed=1)
    auc = _auc_definition(f, o)
    assert res["auc"] == pytest.approx(auc, abs=1e-12)
    assert res["rank_biserial"] == pytest.approx(2 * auc - 1, abs=1e-12)
    assert (res["n_flagged"], res["n_other"]) == (30, 45)
    assert res["auc_low"] < auc < res["auc_high"]
    assert (res["rb_low"], res["rb_high"]) == pytest.approx((2 * res["auc_low"] - 1, 2 * res["auc_high"] - 1))
    wide = auc_lower(f, o, n_boot=500, ci=0.99, seed=1)
    assert wide["auc_high"] - wide["auc_low"] > res["auc_high"] - res["auc_low"]
    # one-sided p: the normal approximation of U with the tie correction and a continuity
    # correction (Mann & Whitney 1947; scipy's asymptotic method), written out here
    both = np.concatenate([f, o])
    ranks = scipy.stats.rankdata(both)
    n1, n2 = len(f), len(o)
    u = ranks[:n1].sum() - n1 * (n1 + 1) / 2
    _, counts = np.unique(both, return_counts=True)
    n = n1 + n2
    sd = math.sqrt(n1 * n2 / 12 * ((n + 1) - (counts**3 - counts).sum() / (n * (n - 1))))
    z = (u - n1 * n2 / 2 + 0.5) / sd
    assert res["p_one_sided"] == pytest.approx(scipy.stats.norm.cdf(z), rel=1e-9)
    assert res["p_one_sided"] < 0.05  # flagged values are lower here


def test_auc_bootstrap_is_seeded_and_needs_both_groups():
    f, o = np.arange(10.0), np.arange(5.0, 20.0)
    assert auc_lower(f, o, n_boot=100, seed=4) == auc_lower(f, o, n_boot=100, seed=4)
    assert auc_lower(f, o, n_boot=100, seed=4) != auc_lower(f, o, n_boot=100, seed=5)
    with pytest.raises(StatsError, match="both groups"):
        auc_lower([np.nan], o)


def test_quadrant_frame_needs_an_overlap_and_one_is_enough():
    from ambiguity.stats.attribution_by_quadrant import quadrant_frame

    attr = pl.DataFrame({"segment_id": ["a", "b"], "phi_text": [0.1, 0.2]})
    one = quadrant_frame(attr, pl.DataFrame({"segment_id": ["b", "z"], "quadrant": ["red", "blue"]}))
    assert one["segment_id"].to_list() == ["b"] and one["quadrant"].to_list() == ["red"]
    with pytest.raises(StatsError, match="no segment has both"):
        quadrant_frame(attr, pl.DataFrame({"segment_id": ["z"], "quadrant": ["red"]}))


def test_auc_with_one_value_in_a_group():
    res = auc_lower([0.1, 0.2], [0.5], n_boot=10)
    assert res["auc"] == 1.0 and res["n_other"] == 1


def test_shares_are_phi_over_the_sum_of_absolute_phi_and_remove_the_scale():
    from ambiguity.stats.attribution_by_quadrant import SHARE_NOTE, with_shares

    rng = np.random.default_rng(12)
    n = 120
    quad = np.repeat(["red", "blue", "green"], 40)
    scale = np.where(quad == "red", 0.2, 1.0)  # red: less p(correct) to distribute, the same split
    text, audio = rng.uniform(0.2, 0.8, n), rng.uniform(0.2, 0.8, n)
    frame = pl.DataFrame({"segment_id": [f"s{i}" for i in range(n)], "quadrant": quad,
                          "phi_text": scale * text, "phi_audio": scale * audio, "phi_video": [None] * 5 + [0.0] * (n - 5),
                          "dominant": ["text"] * n})
    out = with_shares(frame, ["text", "audio", "video"])
    # reference: the definition, share = phi / sum of |phi| over present players (video absent in 5 rows)
    want = text / (text + audio)
    assert np.allclose(out["share_text"].to_numpy(), want)
    assert out["share_video"][:5].null_count() == 5
    means, tests, _ = summarise(out, ["text", "audio"], ci=0.95)
    red_blue = tests.filter((pl.col("pair") == "red vs blue") & (pl.col("modality") == "text")).row(0, named=True)
    assert red_blue["p"] < 1e-6  # raw phi: smaller in red by construction
    assert red_blue["share_p"] > 0.01  # the share: no difference
    assert "lower in red by construction" in SHARE_NOTE
    assert {"mean_share", "share_ci_low", "share_ci_high"} <= set(means.columns)
