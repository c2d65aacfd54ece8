"""compare(): every number against a reference computed in the test: t-tests and corrections from
their definitions (stats_refs.py, not the scipy / statsmodels functions compare() calls), effect
sizes against pingouin (an independent implementation), Mann-Whitney against scipy."""

from __future__ import annotations

import doctest
import importlib
import types

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
import scipy.stats
from numpy.testing import assert_allclose

from ambiguity.errors import StatsError
from ambiguity.stats.comparisons import compare, compare_quadrant_frame, compare_quadrants
from ambiguity.stats.frames import select_columns

# the module itself: the package exports the function of the same name
compare_mod = importlib.import_module("ambiguity.stats.comparisons")


def _data(seed=0, n_a=23, n_b=31, p=6):
    rng = np.random.default_rng(seed)
    xa = rng.normal(0.0, 1.0, size=(n_a, p)) * rng.uniform(0.5, 3, p) + rng.normal(0, 1, p)
    xb = rng.normal(0.4, 2.0, size=(n_b, p)) * rng.uniform(0.5, 3, p)
    return xa, xb


def _frame(xa, xb, a="red", b="blue"):
    x = np.vstack([xa, xb])
    df = pl.DataFrame({f"f{i}": x[:, i] for i in range(x.shape[1])})
    return df.with_columns(pl.Series("q", [a] * len(xa) + [b] * len(xb)))


def _nan_holes(xa, xb, seed=1):
    rng = np.random.default_rng(seed)
    xa, xb = xa.copy(), xb.copy()
    for x in (xa, xb):
        for j in range(x.shape[1]):
            x[rng.choice(len(x), size=j % 4, replace=False), j] = np.nan
    return xa, xb


@pytest.mark.parametrize("test,equal_var", [("welch", False), ("student", True)])
def test_t_tests_equal_their_definitions(test, equal_var):
    from stats_refs import ref_t_test

    xa, xb = _nan_holes(*_data())
    res = compare(_frame(xa, xb), "q", "red", "blue", test=test, correction="none").to_polars()
    for j in range(xa.shape[1]):
        a, b = xa[:, j][~np.isnan(xa[:, j])], xb[:, j][~np.isnan(xb[:, j])]
        # reference: Student's / Welch's t, df and p from their formulas (stats_refs.ref_t_test), NaN-free values
        t, df, p = ref_t_test(a, b, equal_var=equal_var)
        row = res.row(j, named=True)
        assert row["n_a"] == len(a) and row["n_b"] == len(b)
        assert_allclose(row["statistic"], t, rtol=1e-10, atol=0)
        assert_allclose(row["df"], df, rtol=1e-10, atol=0)
        assert_allclose(row["p"], p, rtol=1e-9, atol=0)
        # reference: numpy mean / std(ddof=1)
        assert_allclose([row["mean_a"], row["sd_a"]], [a.mean(), a.std(ddof=1)], rtol=1e-12)
        assert_allclose([row["mean_b"], row["sd_b"]], [b.mean(), b.std(ddof=1)], rtol=1e-12)


def test_t_test_with_nan_policy_omit_matches():
    xa, xb = _nan_holes(*_data(seed=5))
    res = compare(_frame(xa, xb), "q", "red", "blue", correction="none").to_polars()
    # reference: scipy.stats.ttest_ind(xa, xb, axis=0, equal_var=False, nan_policy="omit")
    ref = scipy.stats.ttest_ind(xa, xb, axis=0, equal_var=False, nan_policy="omit")
    assert_allclose(res["statistic"].to_numpy(), np.asarray(ref.statistic), rtol=1e-12)
    assert_allclose(res["p"].to_numpy(), np.asarray(ref.pvalue), rtol=1e-12)


@pytest.mark.parametrize("n_a,n_b", [(5, 7), (30, 40), (6, 12)])
def test_mannwhitney_equals_scipy(n_a, n_b):
    pingouin = pytest.importorskip("pingouin")
    xa, xb = _data(seed=n_a, n_a=n_a, n_b=n_b, p=5)
    xa[:, 1] = np.round(xa[:, 1])  # ties: scipy switches to the asymptotic p
    xb[:, 1] = np.round(xb[:, 1])
    xa[0, 2] = np.nan
    res = compare(_frame(xa, xb), "q", "red", "blue", test="mannwhitney", correction="none").to_polars()
    for j in range(5):
        a, b = xa[:, j][~np.isnan(xa[:, j])], xb[:, j][~np.isnan(xb[:, j])]
        # reference: scipy.stats.mannwhitneyu(a, b) (two-sided, method="auto", continuity correction)
        ref = scipy.stats.mannwhitneyu(a, b)
        row = res.row(j, named=True)
        assert_allclose(row["statistic"], ref.statistic, rtol=1e-12)
        assert_allclose(row["p"], ref.pvalue, rtol=1e-12)
        # reference: pingouin.mwu(a, b)["RBC"] (Wendt 1972 rank-biserial)
        assert_allclose(row["rank_biserial"], pingouin.mwu(a, b)["RBC"].iloc[0], rtol=1e-10)
        assert row["df"] is None or np.isnan(row["df"])


@pytest.mark.parametrize("method", ["holm", "fdr_bh", "fdr_by", "bonferroni", "hommel"])
def test_corrections_equal_their_definitions(method):
    from stats_refs import _simes, ref_bh, ref_bonferroni, ref_by, ref_closed, ref_holm

    xa, xb = _data(seed=3, p=12)
    xb[:, :4] += 1.5  # some real effects so adjusted values are not all 1
    res = compare(_frame(xa, xb), "q", "red", "blue", correction=method, alpha=0.1).to_polars()
    # reference: step-down / step-up definitions, and Hommel as closed testing with Simes' local
    # test (stats_refs.py; not statsmodels' multipletests, which compare() calls)
    refs = {"holm": ref_holm, "fdr_bh": ref_bh, "fdr_by": ref_by, "bonferroni": ref_bonferroni,
            "hommel": lambda p: ref_closed(p, _simes)}
    p_adj = refs[method](res["p"].to_numpy())
    assert_allclose(res["p_adj"].to_numpy(), p_adj, rtol=1e-12, atol=1e-15)
    assert res["reject"].to_list() == (p_adj <= 0.1).tolist()


def test_effect_sizes_equal_pingouin():
    pingouin = pytest.importorskip("pingouin")
    xa, xb = _nan_holes(*_data(seed=7))
    res = compare(_frame(xa, xb), "q", "red", "blue", ci=0.9).to_polars()
    for j in range(xa.shape[1]):
        a, b = xa[:, j][~np.isnan(xa[:, j])], xb[:, j][~np.isnan(xb[:, j])]
        row = res.row(j, named=True)
        # reference: pingouin.compute_effsize(a, b, eftype="hedges" / "cohen")
        g = pingouin.compute_effsize(a, b, eftype="hedges")
        d = pingouin.compute_effsize(a, b, eftype="cohen")
        assert_allclose(row["hedges_g"], g, atol=1e-6)
        assert_allclose(row["cohen_d"], d, atol=1e-6)
        # reference: pingouin.compute_esci(stat, nx, ny, eftype="cohen", confidence=0.9, decimals=12)
        g_ci = pingouin.compute_esci(stat=g, nx=len(a), ny=len(b), eftype="cohen", confidence=0.9, decimals=12)
        d_ci = pingouin.compute_esci(stat=d, nx=len(a), ny=len(b), eftype="cohen", confidence=0.9, decimals=12)
        assert_allclose([row["g_ci_low"], row["g_ci_high"]], g_ci, atol=1e-6)
        assert_allclose([row["d_ci_low"], row["d_ci_high"]], d_ci, atol=1e-6)


def test_bayes_factor_equals_the_jzs_integral():
    from stats_refs import ref_bf10

    xa, xb = _data(seed=11, p=3)
    res = compare(_frame(xa, xb), "q", "red", "blue", test="student", bayes=True).to_polars()
    for j in range(3):
        t = scipy.stats.ttest_ind(xa[:, j], xb[:, j]).statistic
        # reference: Rouder et al. (2009) JZS integral over the effect size, written in stats_refs.py;
        # compare() integrates over g (ambiguity.stats.bayes), so the two quadratures differ by ~1e-4
        assert_allclose(res["bf10"][j], ref_bf10(float(t), len(xa), len(xb)), rtol=1e-3)
    with pytest.raises(StatsError, match="Bayes factor"):
        compare(_frame(xa, xb), "q", "red", "blue", test="mannwhitney", bayes=True)


@pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning")  # scipy, on the constant reference sample
def test_untestable_features_get_reasons_and_leave_the_family():
    xa, xb = _data(seed=2, p=4)
    xa[:, 1] = 7.0  # zero variance in both groups
    xb[:, 1] = 7.0
    xa[1:, 2] = np.nan  # one value left in red
    xa[:, 3] = 0.1  # constant in red only: Welch is still defined
    res = compare(_frame(xa, xb), "q", "red", "blue").to_polars()
    assert res["reason"][1] == "zero variance in both groups"
    assert "n_red = 1 < 2" in res["reason"][2]
    assert res["reason"][0] is None and res["reason"][3] is None
    assert np.isnan(res["p"][1]) and np.isnan(res["p_adj"][1]) and np.isnan(res["p"][2])
    from stats_refs import ref_holm, ref_t_test

    # reference: Holm from its step-down definition over the two testable features only
    assert_allclose(res["p_adj"].to_numpy()[[0, 3]], ref_holm(res["p"].to_numpy()[[0, 3]]), rtol=1e-12)
    # reference: Welch's formula with a constant first sample (its variance term is 0)
    assert_allclose(res["p"][3], ref_t_test(xa[:, 3], xb[:, 3], equal_var=False)[2], rtol=1e-9)


def test_direction_text_and_settings():
    xa, xb = _data(seed=4, p=2)
    xb[:, 0] += 10
    r = compare(_frame(xa, xb), "q", "red", "blue")
    t = r.to_polars()
    assert t["direction"][0] == "μ_blue > μ_red" and t["higher"][0] == "blue"
    assert (r.a, r.b, r.test, r.correction, r.alpha, r.ci, r.family_size) == ("red", "blue", "welch", "holm", 0.05, 0.95, 2)
    with pytest.raises(AttributeError):
        r.test = "student"
    md = r.to_markdown()
    assert "Holm correction over a family of 2 features" in md and "μ_blue > μ_red" in md
    tex = r.to_latex()
    assert r"$\mu_{\text{blue}} > \mu_{\text{red}}$" in tex and r"\toprule" in tex


def test_inputs_groups_as_sequence_numpy_and_pandas():
    xa, xb = _data(seed=6, p=3)
    x = np.vstack([xa, xb])
    g = ["red"] * len(xa) + ["blue"] * len(xb)
    ref = compare(_frame(xa, xb), "q", "red", "blue").to_polars()
    got = compare(x, g, "red", "blue").to_polars()
    assert_allclose(got["p"].to_numpy(), ref["p"].to_numpy(), rtol=0)
    got_pd = compare(_frame(xa, xb).to_pandas(), "q", "red", "blue").to_polars()
    assert_allclose(got_pd["statistic"].to_numpy(), ref["statistic"].to_numpy(), rtol=0)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"test": "ttest"}, "unknown test"),
        ({"correction": "fdr"}, "unknown correction"),
        ({"alpha": 1.5}, "alpha"),
        ({"ci": 0}, "ci"),
        ({"columns": ["nope"]}, "no column nope"),
        ({"columns": "^zzz"}, "no numeric column matches"),
        ({"columns": []}, "columns is empty"),
    ],
)

def test_bad_settings_raise_stats_error(kwargs, match):
    xa, xb = _data(p=2)
    with pytest.raises(StatsError, match=match):
        compare(_frame(xa, xb), "q", "red", "blue", **kwargs)


def test_bad_groups_raise_stats_error():
    xa, xb = _data(p=2)
    df = _frame(xa, xb)
    with pytest.raises(StatsError, match="no row has group 'rd'"):
        compare(df, "q", "rd", "blue")
    with pytest.raises(StatsError, match="both 'red'"):
        compare(df, "q", "red", "red")
    with pytest.raises(StatsError, match="no group column"):
        compare(df, "quadrant", "red", "blue")
    with pytest.raises(StatsError, match="labels for"):
        compare(df.drop("q"), ["red", "blue"], "red", "blue")


def test_select_columns_regex_for_activation_rates():
    df = pl.DataFrame({"segment_id": ["a"], "AU04_r": [0.1], "AU04_rate": [0.5], "AU12_rate": [0.2], "label": [1]})
    assert select_columns(df, r"^AU\d+_rate$") == ["AU04_rate", "AU12_rate"]
    assert select_columns(df) == ["AU04_r", "AU04_rate", "AU12_rate"]


# -- quadrants --------------------------------------------------------------------------------
def _quadrant_data(seed=0):
    rng = np.random.default_rng(seed)
    sizes = {"red": 14, "green": 9, "blue": 40, "yellow": 6}
    q = [name for name, n in sizes.items() for _ in range(n)]
    n = len(q)
    ids = [f"s{i:03d}" for i in range(n)]
    shift = np.array([{"red": 0.8, "green": -0.5, "blue": 0.0, "yellow": 0.0}[v] for v in q])
    feats = pl.DataFrame(
        {
            "segment_id": ids,
            "pitch_mean": rng.normal(size=n) + shift,
            "AU04_rate": np.clip(rng.uniform(0, 0.6, n) + 0.3 * shift, 0, 1),
            "AU12_rate": rng.uniform(0, 1, n),
        }
    )
    quads = pl.DataFrame({"segment_id": ids, "quadrant": q, "p_unimodal": rng.uniform(size=n)})
    return feats, quads


def test_compare_quadrant_frame_pairs_equal_welch_without_labels():
    from stats_refs import ref_t_test

    feats, quads = _quadrant_data()
    res = compare_quadrant_frame(feats, quads, columns="_rate$")
    assert res.pairs == [("red", "blue"), ("green", "blue"), ("red", "green")]
    joined = feats.join(quads, on="segment_id")
    for a, b in res.pairs:
        t = res[(a, b)].to_polars()
        assert t["feature"].to_list() == ["AU04_rate", "AU12_rate"]
        for j, f in enumerate(t["feature"]):
            x = joined.filter(pl.col("quadrant") == a)[f].to_numpy()
            y = joined.filter(pl.col("quadrant") == b)[f].to_numpy()
            # reference: Welch's formula (stats_refs.ref_t_test); this quadrants frame has no label, so unadjusted
            assert_allclose(t["p"][j], ref_t_test(x, y, equal_var=False)[2], rtol=1e-9)
        assert res[(a, b)].family_size == 2
    wide = res.wide()
    assert wide.columns[:5] == ["feature", "n red (red vs blue)", "n blue (red vs blue)", "p (red vs blue)", "p_adj (red vs blue)"]
    assert wide["p (red vs blue)"].is_sorted(nulls_last=True)
    md = res.to_markdown()
    assert "Each comparison is one correction family" in md
    assert "direction (green vs blue)" in res.to_latex()
    long = res.to_polars()
    assert long.height == 6 and long.columns[:3] == ["a", "b", "feature"]


def test_compare_quadrant_frame_empty_quadrant_and_missing_features():
    feats, quads = _quadrant_data()
    quads = quads.with_columns(pl.when(pl.col("quadrant") == "green").then(pl.lit("yellow")).otherwise(pl.col("quadrant")).alias("quadrant"))
    feats = feats.filter(pl.col("segment_id") != "s000")
    res = compare_quadrant_frame(feats, quads, [("green", "blue"), ("red", "blue")])
    t = res[("green", "blue")].to_polars()
    assert t["n_a"].to_list() == [0, 0, 0] and t["p"].is_nan().all()
    assert t["reason"][0] == "n_green = 0 < 2"
    assert res[("red", "blue")].family_size == 3
    assert any("1 segment(s) with a quadrant have no feature row" in n for n in res.notes)
    with pytest.raises(StatsError, match="unknown quadrant"):
        compare_quadrant_frame(feats, quads, [("red", "purple")])
    with pytest.raises(StatsError, match="no comparison"):
        res[("red", "green")]


def _store_with_features(store, feats):
    from ambiguity.stores import schema as S

    n = feats.height
    cols = {f.name: pa.nulls(n, f.type) for f in S.SEGMENTS_SCHEMA}
    cols.update(segment_id=pa.array(feats["segment_id"].to_list()), label=pa.array(["0"] * n), split=pa.array(["test"] * n))
    store.upsert_segments(pa.table(cols, schema=S.SEGMENTS_SCHEMA))
    tbl = feats.with_columns(pl.lit("ok").alias("status"), pl.lit(None, pl.String).alias("error")).to_arrow()
    store.write_features("fake", tbl, tbl.schema, {"extractor": "fake", "extractor_version": "1", "params": {}, "config_key": "k"})


def test_compare_quadrants_reads_the_store(store, monkeypatch):
    feats, quads = _quadrant_data(seed=3)
    _store_with_features(store, feats)
    calls = []

    from ambiguity.stats.stability import SchemeUsed

    def fake_load(store_, unimodal, fusion, splits=None, threshold=0.5, **kw):
        calls.append((unimodal, fusion, splits, threshold, kw))
        return types.SimpleNamespace(frame=quads, scheme=SchemeUsed("fixed", ("test",)))

    mod = importlib.import_module("ambiguity.stats.quadrant_tables")
    monkeypatch.setattr(mod, "quadrants", fake_load)
    res = compare_quadrants(store, "audio", "fusion", "fake", threshold=0.6, columns=["pitch_mean"])
    assert calls == [("audio", "fusion", None, 0.6, {"scheme": "auto", "min_stability": None})]
    assert "fixed split (test)" in res.describe()
    direct = compare_quadrant_frame(feats, quads, columns=["pitch_mean"])
    for pair in res.pairs:
        assert_allclose(res[pair].to_polars()["p"].to_numpy(), direct[pair].to_polars()["p"].to_numpy(), rtol=0)
    # A quadrant frame passed in skips loading.
    compare_quadrants(store, "audio", "fusion", ["fake"], quadrants=quads)
    assert len(calls) == 1


def test_docstring_examples():
    assert doctest.testmod(compare_mod).failed == 0


# -- CLI --------------------------------------------------------------------------------------
def _patch_quadrants(monkeypatch, quads):
    from ambiguity.stats.stability import SchemeUsed

    mod = importlib.import_module("ambiguity.stats.quadrant_tables")
    fake = types.SimpleNamespace(frame=quads, scheme=SchemeUsed("fixed", ("test",)))
    monkeypatch.setattr(mod, "quadrants", lambda store, unimodal, fusion, splits=None, threshold=0.5, **kw: fake)


def test_cli_compare_tables_and_figures(store, monkeypatch, tmp_path):
    from click.testing import CliRunner

    from ambiguity.cli import main

    feats, quads = _quadrant_data(seed=4)
    _store_with_features(store, feats)
    _patch_quadrants(monkeypatch, quads)
    runner = CliRunner()
    base = ["--store", store.uri, "compare", "fake", "--unimodal", "video"]
    r = runner.invoke(main, base + ["--rates", "--figure", str(tmp_path / "fig")])
    assert r.exit_code == 0, r.output
    assert "p (red vs blue)" in r.output and "AU04_rate" in r.output and "pitch_mean" not in r.output
    assert (tmp_path / "fig" / "figure6_au_rates.png").exists() and (tmp_path / "fig" / "figure6_au_rates.svg").exists()
    r = runner.invoke(main, base + ["--feature", "pitch_mean", "--pair", "red:blue", "--adjust", "none", "--test", "mannwhitney", "--format", "csv", "--out", str(tmp_path / "t.csv")])
    assert r.exit_code == 0, r.output
    got = pl.read_csv(tmp_path / "t.csv")
    x = feats.join(quads, on="segment_id")
    # reference: scipy.stats.mannwhitneyu(red, blue)
    ref = scipy.stats.mannwhitneyu(x.filter(pl.col("quadrant") == "red")["pitch_mean"].to_numpy(), x.filter(pl.col("quadrant") == "blue")["pitch_mean"].to_numpy())
    assert got.height == 1 and abs(got["p"][0] - ref.pvalue) < 1e-12
    r = runner.invoke(main, base + ["--columns", "^pitch", "--format", "latex", "--figure", str(tmp_path / "f5")])
    assert r.exit_code == 0 and r"\begin{table}" in r.output and (tmp_path / "f5" / "figure5_features.svg").exists()
    r = runner.invoke(main, base + ["--rates", "--family", "report"])
    assert r.exit_code == 0 and "One correction family over every comparison of the report" in r.output, r.output
    r = runner.invoke(main, base + ["--rates", "--test", "student"])
    assert r.exit_code == 2 and "add --adjust none" in r.output


def test_cli_compare_user_errors_are_one_line(store, monkeypatch):
    from click.testing import CliRunner

    from ambiguity.cli import main

    feats, quads = _quadrant_data()
    _store_with_features(store, feats)
    _patch_quadrants(monkeypatch, quads)
    r = CliRunner().invoke(main, ["--store", store.uri, "compare", "fake", "--unimodal", "audio", "--feature", "nope"])
    assert r.exit_code == 2 and r.output.strip().startswith("error: no column nope") and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["--store", store.uri, "compare", "fake", "--unimodal", "audio", "--pair", "red-blue"])
    assert r.exit_code == 2 and "use A:B" in r.output


def test_infinite_values_are_missing_like_nan():
    # +-Inf is a missing value (as NaN): the row leaves that feature only, and n says so
    xa, xb = _data(seed=5, p=3)
    xa_inf, xa_nan = xa.copy(), xa.copy()
    xa_inf[2, 1], xb_inf = np.inf, xb.copy()
    xb_inf[0, 1] = -np.inf
    xa_nan[2, 1] = np.nan
    xb_nan = xb.copy()
    xb_nan[0, 1] = np.nan
    got = compare(_frame(xa_inf, xb_inf), "q", "red", "blue").to_polars()
    want = compare(_frame(xa_nan, xb_nan), "q", "red", "blue").to_polars()
    assert got["n_a"].to_list() == [len(xa), len(xa) - 1, len(xa)]
    assert got.equals(want)


def test_describe_counts_the_features_left_out_of_the_family():
    xa, xb = _data(seed=3, p=3)
    assert "not tested" not in compare(_frame(xa, xb), "q", "red", "blue").describe()
    xa[:, 1], xb[:, 1] = 7.0, 7.0  # constant: untestable, leaves the family
    res = compare(_frame(xa, xb), "q", "red", "blue")
    assert res.family_size == 2 and res.n_features == 3
    assert "family of 2 features" in res.describe() and "; 1 feature not tested (see reason)" in res.describe()


def test_wide_sorts_by_the_first_pairs_p_by_default():
    feats, quads = _quadrant_data()
    res = compare_quadrant_frame(feats.select("segment_id", "AU12_rate", "AU04_rate"), quads, columns="_rate$")
    unsorted = res.wide(sort=False)["feature"].to_list()
    assert unsorted == ["AU12_rate", "AU04_rate"]  # the frame's order; AU04 (shifted) has the smaller p
    assert res.wide()["feature"].to_list() == ["AU04_rate", "AU12_rate"]
    assert res.wide()["p (red vs blue)"].is_sorted()


def test_mann_whitney_groups_features_by_exact_sample_sizes():
    # Features are tested in groups of equal (n_a, n_b). Here (20, 4) and (14, 5) must not be
    # confused (a key n_a / (n_b_max + 1) + n_b would give both 7.33).
    rng = np.random.default_rng(8)
    xa, xb = rng.normal(0, 1, (20, 2)), rng.normal(0.7, 1, (5, 2))
    xb[0, 0] = np.nan  # f0: 20 vs 4
    xa[:6, 1] = np.nan  # f1: 14 vs 5
    res = compare(_frame(xa, xb), "q", "red", "blue", test="mannwhitney").to_polars()
    assert res["n_a"].to_list() == [20, 14] and res["n_b"].to_list() == [4, 5]
    for j in range(2):
        a, b = xa[:, j][~np.isnan(xa[:, j])], xb[:, j][~np.isnan(xb[:, j])]
        ref = scipy.stats.mannwhitneyu(a, b, alternative="two-sided")
        assert res["statistic"][j] == pytest.approx(ref.statistic) and res["p"][j] == pytest.approx(ref.pvalue, rel=1e-12)


def test_display_has_df_for_t_tests_only_and_direction_of_untested_features():
    xa, xb = _data(seed=6, p=2)
    assert "df" in compare(_frame(xa, xb), "q", "red", "blue").display().columns
    assert "df" not in compare(_frame(xa, xb), "q", "red", "blue", test="mannwhitney").display().columns
    # one red value: untestable, but the direction still follows the means (1 < ~5)
    xa1, xb5 = np.ones((1, 2)), np.full((6, 2), 5.0) + np.arange(6)[:, None] * 0.1
    row = compare(_frame(xa1, xb5), "q", "red", "blue").to_polars().row(0, named=True)
    assert np.isnan(row["p"]) and row["higher"] == "blue"


def test_quadrant_comparison_markdown_is_sorted_by_default():
    feats, quads = _quadrant_data()
    res = compare_quadrant_frame(feats.select("segment_id", "AU12_rate", "AU04_rate"), quads, columns="_rate$")
    md = res.to_markdown()
    assert md.index("AU04_rate") < md.index("AU12_rate")
    assert res.to_markdown(sort=False).index("AU12_rate") < res.to_markdown(sort=False).index("AU04_rate")


def test_quadrant_comparison_latex_defaults_to_four_digits():
    feats, quads = _quadrant_data()
    res = compare_quadrant_frame(feats, quads, columns="_rate$")
    assert res.to_latex() == res.to_latex(digits=4) != res.to_latex(digits=5)


def test_extreme_magnitudes_give_the_same_tests():
    xa, xb = _data(seed=9, p=2)
    base = compare(_frame(xa, xb), "q", "red", "blue").to_polars()
    for scale in (1e300, 1e-300):
        big = compare(_frame(xa * scale, xb * scale), "q", "red", "blue").to_polars()
        assert_allclose(big["statistic"], base["statistic"], rtol=1e-9)
        assert_allclose(big["p"], base["p"], rtol=1e-9)
        assert_allclose(big["hedges_g"], base["hedges_g"], rtol=1e-9)


def test_quadrant_comparison_is_frozen():
    import dataclasses

    feats, quads = _quadrant_data()
    res = compare_quadrant_frame(feats, quads, columns="_rate$")
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.notes = ()


@pytest.mark.parametrize("ci,level", [(0.95, "95%"), (0.9, "90%")])
def test_display_names_the_interval_level(ci, level):
    xa, xb = _data(seed=6, p=2)
    cols = compare(_frame(xa, xb), "q", "red", "blue", ci=ci).display().columns
    assert f"g {level} low" in cols and f"g {level} high" in cols


# -- column batches -------------------------------------------------------------------------------
def _mixed_data(seed=5, n=240):
    """Features of every kind the comparisons treat apart: continuous, NaN holes, 0/1, ordinal, constant, huge."""
    rng = np.random.default_rng(seed)
    ids = [f"s{i:03d}" for i in range(n)]
    quads = pl.DataFrame({"segment_id": ids, "quadrant": rng.choice(["red", "green", "blue", "yellow"], n, p=[0.25, 0.25, 0.35, 0.15]),
                          "label": rng.choice(["neg", "neu", "pos"], n), "speaker": [f"p{v}" for v in rng.integers(0, 25, n)]})
    cols = {f"f{j}": rng.normal(size=n) * (j + 1) + j for j in range(5)}
    cols["f1"][rng.random(n) < 0.15] = np.nan
    cols["f3"][:7] = np.inf
    cols["au_present"] = (rng.random(n) < 0.3).astype(float)
    cols["au_level"] = rng.integers(0, 5, n).astype(float)
    cols["flat"] = np.ones(n)
    cols["huge"] = rng.normal(size=n) * 1e300
    return pl.DataFrame({"segment_id": ids, **cols}), quads


@pytest.mark.parametrize("settings", [{}, {"group_by": "speaker"}, {"adjust": "none"}, {"adjust": "none", "test": "mannwhitney"},
                                      {"adjust": "none", "test": "student", "bayes": True}, {"family": "report"}])
def test_column_batches_give_the_same_table(settings):
    # Every number of a feature but its corrected p comes from its own column, and the adjusted fit
    # adds each column on its own (no matrix product), so one column at a time, three, or all at once
    # give identical tables, bit for bit.
    feats, quads = _mixed_data()
    whole = compare_quadrant_frame(feats, quads, column_batch=100, **settings)
    for size in (1, 3, None):
        part = compare_quadrant_frame(feats, quads, column_batch=size, **settings)
        for r1, r2 in zip(whole.comparisons, part.comparisons, strict=True):
            assert r1.table.equals(r2.table, null_equal=True), (settings, size, r1.a, r1.b)
            assert (r1.family_size, r1.label_counts, r1.n_clusters) == (r2.family_size, r2.label_counts, r2.n_clusters)
        assert whole.notes == part.notes and whole.n_segments == part.n_segments


def test_compare_tests_any_batch_of_columns_the_same():
    feats, quads = _mixed_data(seed=6)
    df = feats.join(quads, on="segment_id")
    kw = {"labels": "label", "clusters": "speaker"}
    whole = compare(df, "quadrant", "red", "blue", column_batch=50, **kw).to_polars()
    assert whole.equals(compare(df, "quadrant", "red", "blue", column_batch=1, **kw).to_polars(), null_equal=True)
    x = feats.drop("segment_id").to_numpy()
    q = quads["quadrant"].to_numpy()
    a = compare(x, q, "red", "blue", test="mannwhitney", column_batch=2).to_polars().drop("feature")
    b = compare(x, q, "red", "blue", test="mannwhitney").to_polars().drop("feature")
    assert a.equals(b, null_equal=True)
    with pytest.raises(StatsError, match="column_batch=0"):
        compare(x, q, "red", "blue", column_batch=0)


def test_the_store_is_read_a_few_columns_at_a_time(store, monkeypatch):
    feats, quads = _mixed_data(seed=7)
    feats = feats.drop("huge")
    _store_with_features(store, feats)
    reads = []
    real = type(store).features

    def spy(self, groups, columns=None, **kw):
        out = real(self, groups, columns, **kw)
        reads.append((columns, out.height))
        return out

    monkeypatch.setattr(type(store), "features", spy)
    res = compare_quadrants(store, "audio", "fusion", "fake", quadrants=quads, column_batch=2)
    monkeypatch.setattr(type(store), "features", real)
    data_reads = [c for c, h in reads if c and h]
    assert data_reads and all(len(c) <= 2 for c in data_reads)
    assert sorted(c for cols in data_reads for c in cols) == sorted(feats.columns[1:])
    # the same numbers as the whole frame in memory, through the frame API
    direct = compare_quadrant_frame(feats, quads)
    for pair in res.pairs:
        assert res[pair].table.equals(direct[pair].table, null_equal=True)


def test_a_feature_group_changed_while_read_is_an_error(store, monkeypatch):
    feats, quads = _mixed_data(seed=8, n=60)
    _store_with_features(store, feats.select("segment_id", "f0", "f2"))
    real = type(store).features

    def shuffled(self, groups, columns=None, **kw):
        out = real(self, groups, columns, **kw)
        return out.reverse() if columns else out  # a batch whose rows are not in the ids' order

    monkeypatch.setattr(type(store), "features", shuffled)
    with pytest.raises(StatsError, match="changed while it was being read"):
        compare_quadrants(store, "audio", "fusion", "fake", quadrants=quads)


def test_kinds_are_of_the_compared_rows():
    # 0/1 in red and blue, 0.5 in yellow (not compared): tested as binary (CMH) in red vs blue.
    feats, quads = _mixed_data(seed=9)
    q = quads["quadrant"].to_numpy()
    present = np.where(q == "yellow", 0.5, feats["au_present"].to_numpy())
    res = compare_quadrant_frame(feats.with_columns(pl.Series("au_present", present)), quads, [("red", "blue")])
    assert res[("red", "blue")].table.filter(pl.col("feature") == "au_present")["kind"][0] == "binary"


def test_several_groups_are_read_a_batch_at_a_time_with_shared_names_prefixed(store):
    feats, quads = _mixed_data(seed=10, n=120)
    _store_with_features(store, feats.select("segment_id", "f0", "f1"))
    # a second group with one column of the same name, missing one segment
    tbl = (feats.select("segment_id", pl.col("f2").alias("f1"), "au_level").slice(1)
           .with_columns(pl.lit("ok").alias("status"), pl.lit(None, pl.String).alias("error")).to_arrow())
    store.write_features("other", tbl, tbl.schema, {"extractor": "other", "extractor_version": "1", "params": {}, "config_key": "k"})
    res = compare_quadrants(store, "audio", "fusion", ["fake", "other"], quadrants=quads, column_batch=1)
    direct = compare_quadrant_frame(store.features(["fake", "other"]), quads)
    assert res[("red", "blue")].table["feature"].to_list() == ["f0", "fake.f1", "other.f1", "au_level"]
    for pair in res.pairs:
        assert res[pair].table.equals(direct[pair].table, null_equal=True)
    assert any("1 segment(s) with a quadrant have no feature row" in n for n in res.notes)
