"""The adjusted comparison (ambiguity.stats.adjusted): against dense from-the-definition references
in stats_refs.py (CR2 / Bell-McCaffrey, CMH), and the identities that pin it down."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from numpy.testing import assert_allclose
from stats_refs import ref_cmh, ref_cr2, ref_t_test

from ambiguity.errors import StatsError
from ambiguity.stats.adjusted import design, fit
from ambiguity.stats.comparisons import compare, compare_quadrant_frame


def _rows(seed, n=80, labels=3, clusters=None):
    rng = np.random.default_rng(seed)
    lab = rng.integers(0, labels, n).astype(str)
    in_a = rng.random(n) < 0.3
    y = rng.normal(size=n) * np.where(in_a, 2.0, 1.0) + lab.astype(int)
    cl = None if clusters is None else rng.integers(0, clusters, n)
    return y, in_a, lab, cl


@pytest.mark.parametrize("seed,clusters,n", [(0, None, 80), (1, None, 80), (2, 9, 80), (3, 14, 80), (6, 4, 160), (7, 2, 90)])
def test_cr2_and_bell_mccaffrey_df_equal_the_dense_definition(seed, clusters, n):
    # (6, 4, 160) and (7, 2, 90): a few clusters of 40+ segments, where CR2 works on (labels + 1)-column
    # factors of H_gg instead of the n_g x n_g matrix
    y, in_a, lab, cl = _rows(seed, n=n, clusters=clusters)
    des = design(in_a, lab, cl)
    beta, se, t, p = fit(des, y[:, None])
    # reference: stats_refs.ref_cr2 (dense X, hat matrix, (I - H_gg)^-1/2, tr(B)^2 / tr(B^2))
    want = ref_cr2(y, in_a, lab.tolist(), None if cl is None else cl.tolist())
    assert_allclose([beta[0], se[0], t[0], des.df, p[0]], want, rtol=1e-9)


def test_one_label_hc2_is_welchs_variance():
    # With one stratum, HC2 = s_a^2 / n_a + s_b^2 / n_b exactly (Imbens & Kolesar 2016, sec. 3).
    rng = np.random.default_rng(4)
    a, b = rng.normal(0, 3, 12), rng.normal(0, 1, 150)
    y, in_a = np.r_[a, b], np.r_[np.ones(12, bool), np.zeros(150, bool)]
    _, _, t, _ = fit(design(in_a, np.zeros(162)), y[:, None])
    # reference: Welch's t from its formula (stats_refs.ref_t_test)
    assert_allclose(t[0], ref_t_test(a, b, equal_var=False)[0], rtol=1e-12)


def test_estimate_is_the_precision_weighted_mean_of_within_label_differences():
    y, in_a, lab, _ = _rows(5, n=120)
    beta = fit(design(in_a, lab), y[:, None])[0][0]
    # reference: sum_l w_l (mean_a,l - mean_b,l) / sum_l w_l, w_l = n_a,l n_b,l / n_l (Frisch-Waugh)
    num = den = 0.0
    for v in np.unique(lab):
        m = lab == v
        ya, yb = y[m & in_a], y[m & ~in_a]
        w = len(ya) * len(yb) / m.sum()
        num += w * (ya.mean() - yb.mean())
        den += w
    assert_allclose(beta, num / den, rtol=1e-12)


def test_a_feature_driven_by_the_label_only_is_not_a_quadrant_effect():
    rng = np.random.default_rng(6)
    n = 400
    lab = rng.integers(0, 2, n)
    red = rng.random(n) < np.where(lab == 1, 0.3, 0.03)
    y = 2.0 * lab + rng.normal(size=n)
    df = pl.DataFrame({"y": y, "q": np.where(red, "red", "blue"), "label": lab.astype(str)})
    unadjusted = compare(df, "q", "red", "blue", columns=["y"]).to_polars()["p"][0]
    adjusted = compare(df, "q", "red", "blue", columns=["y"], labels="label").to_polars()["p"][0]
    assert unadjusted < 1e-4 and adjusted > 0.01


def test_binary_features_get_cmh_and_the_mantel_haenszel_odds_ratio():
    rng = np.random.default_rng(7)
    n = 300
    lab = rng.integers(0, 3, n).astype(str)
    red = rng.random(n) < 0.3
    au = (rng.random(n) < np.where(red, 0.5, 0.3)).astype(float)
    df = pl.DataFrame({"AU04_c": au, "q": np.where(red, "red", "blue"), "label": lab})
    row = compare(df, "q", "red", "blue", labels="label").to_polars().row(0, named=True)
    tables = []
    for v in np.unique(lab):
        m = lab == v
        ya, yb = au[m & red], au[m & ~red]
        tables.append([[ya.sum(), len(ya) - ya.sum()], [yb.sum(), len(yb) - yb.sum()]])
    chi2, p, odds = ref_cmh(tables)  # reference: CMH and MH odds ratio from their definitions
    assert row["kind"] == "binary"
    assert_allclose([row["statistic"], row["p"], row["odds_ratio"]], [chi2, p, odds], rtol=1e-9)
    assert row["direction"] == "μ_red > μ_blue"


def test_untestable_designs_get_a_reason():
    df = pl.DataFrame({"y": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "q": ["red"] * 3 + ["blue"] * 3,
                       "label": ["x"] * 3 + ["y"] * 3})
    row = compare(df, "q", "red", "blue", labels="label").to_polars().row(0, named=True)
    assert row["reason"] == "no label has segments in both groups" and np.isnan(row["p"])


def test_label_mix_and_settings_in_the_caption():
    y, in_a, lab, cl = _rows(8, n=200, clusters=20)
    n = len(y)
    ids = [f"s{i}" for i in range(n)]
    feats = pl.DataFrame({"segment_id": ids, "pitch": y})
    quads = pl.DataFrame({"segment_id": ids, "quadrant": np.where(in_a, "red", "blue"), "label": lab,
                          "speaker": cl.astype(str)})
    res = compare_quadrant_frame(feats, quads, [("red", "blue")], group_by="speaker")
    cap = res[("red", "blue")].describe()
    counts = {v: int(((lab == v) & in_a).sum()) for v in sorted(set(lab))}
    assert f"red n={int(in_a.sum())} ({', '.join(f'{k}: {v}' for k, v in counts.items())})" in cap
    assert "errors clustered by speaker (20 clusters)" in cap and "within label" in cap
    # reference: the dense CR2 with speaker clusters
    want = ref_cr2(y, in_a, lab.tolist(), cl.astype(str).tolist())
    assert_allclose(res[("red", "blue")].to_polars()["p"][0], want[4], rtol=1e-9)
    md = res.to_markdown()
    assert "n red (red vs blue)" in md and "label mix" in md
    none = compare_quadrant_frame(feats, quads, [("red", "blue")], adjust="none")
    assert "not adjusted for the label" in none.describe() and "label mix: red" in none.describe()
    # reference: the paper's unadjusted Welch test
    assert_allclose(none[("red", "blue")].to_polars()["p"][0], ref_t_test(y[in_a], y[~in_a], False)[2], rtol=1e-10)


def test_adjusted_settings_are_checked():
    df = pl.DataFrame({"y": np.arange(8.0), "q": ["red", "blue"] * 4, "label": ["a"] * 8})
    with pytest.raises(StatsError, match="adjust='none'"):
        compare(df, "q", "red", "blue", labels="label", test="mannwhitney")
    with pytest.raises(StatsError, match="adjust='none'"):
        compare(df, "q", "red", "blue", labels="label", bayes=True)
    with pytest.raises(StatsError, match="pass labels"):
        compare(df, "q", "red", "blue", clusters="label")
    quads = pl.DataFrame({"segment_id": ["a", "b"], "quadrant": ["red", "blue"], "label": ["x", "y"]})
    feats = pl.DataFrame({"segment_id": ["a", "b"], "y": [1.0, 2.0]})
    with pytest.raises(StatsError, match="unknown adjust"):
        compare_quadrant_frame(feats, quads, adjust="speaker")
    with pytest.raises(StatsError, match="unknown family"):
        compare_quadrant_frame(feats, quads, family="all")
    with pytest.raises(StatsError, match="no such column"):
        compare_quadrant_frame(feats, quads, group_by="speaker")


def test_a_quadrants_frame_without_labels_falls_back_and_says_so():
    feats = pl.DataFrame({"segment_id": [f"s{i}" for i in range(8)], "y": np.arange(8.0)})
    quads = pl.DataFrame({"segment_id": [f"s{i}" for i in range(8)], "quadrant": ["red", "blue"] * 4})
    res = compare_quadrant_frame(feats, quads, [("red", "blue")])
    assert "no label column" in res.describe() and res[("red", "blue")].test == "welch"


def test_family_report_is_one_correction_over_every_pair():
    from stats_refs import ref_holm

    rng = np.random.default_rng(9)
    n = 240
    ids = [f"s{i}" for i in range(n)]
    quad = rng.choice(["red", "green", "blue"], n, p=[0.25, 0.25, 0.5])
    feats = pl.DataFrame({"segment_id": ids, **{f"f{j}": rng.normal(size=n) + (quad == "red") * 0.5 * j for j in range(4)}})
    quads = pl.DataFrame({"segment_id": ids, "quadrant": quad, "label": rng.integers(0, 2, n).astype(str)})
    res = compare_quadrant_frame(feats, quads, family="report")
    p = np.concatenate([c.table["p"].to_numpy() for c in res.comparisons])
    got = np.concatenate([c.table["p_adj"].to_numpy() for c in res.comparisons])
    # reference: Holm's step-down definition over all 3 pairs x 4 features at once
    assert_allclose(got, ref_holm(p), rtol=1e-12)
    assert all(c.family == "report" and c.family_size == 12 for c in res.comparisons)
    assert "p (Holm, report)" in res[("red", "blue")].to_markdown()
    per_pair = compare_quadrant_frame(feats, quads)
    assert_allclose(per_pair[("red", "blue")].table["p_adj"].to_numpy(), ref_holm(res[("red", "blue")].table["p"].to_numpy()), rtol=1e-12)


@pytest.mark.filterwarnings("error")
def test_swapping_groups_and_affine_maps_and_hostile_values():
    rng = np.random.default_rng(10)
    x = rng.normal(size=(60, 3))
    g = np.where(rng.random(60) < 0.4, "red", "blue")
    lab = rng.integers(0, 3, 60)
    a = compare(x, g, "red", "blue", labels=lab).to_polars()
    b = compare(3 * x + 7, g, "blue", "red", labels=lab).to_polars()
    assert_allclose(a["p"].to_numpy(), b["p"].to_numpy(), rtol=1e-10)
    assert_allclose(a["statistic"].to_numpy(), -b["statistic"].to_numpy(), rtol=1e-10)
    assert a["direction"].to_list() == b["direction"].to_list()
    g, lab = ["red"] * 5 + ["blue"] * 5, ["a", "b"] * 5
    for values in ([1e308, -1e308, 1e308, 0, 1, 2, 3, 4, 5, 6], [5e-324] * 10, [np.nan] * 10, [1, np.inf, 2, 3, 4, 5, 6, 7, 8, 9]):
        row = compare(np.array(values, float)[:, None], g, "red", "blue", labels=lab).to_polars().row(0, named=True)
        assert (np.isfinite(row["p"]) and 0 <= row["p"] <= 1) or row["reason"]


def test_quadrant_comparisons_adjust_for_the_label_by_default():
    # documented default (docs/statistics.md): adjust="label", family="pair"; a call without them equals
    # the call with them, and differs from adjust="none" on label-confounded data
    y, in_a, lab, _ = _rows(11, n=150)
    ids = [f"s{i}" for i in range(len(y))]
    feats = pl.DataFrame({"segment_id": ids, "f": y})
    quads = pl.DataFrame({"segment_id": ids, "quadrant": np.where(in_a, "red", "blue"), "label": lab})
    default = compare_quadrant_frame(feats, quads, [("red", "blue")])[("red", "blue")]
    explicit = compare_quadrant_frame(feats, quads, [("red", "blue")], adjust="label", family="pair")[("red", "blue")]
    none = compare_quadrant_frame(feats, quads, [("red", "blue")], adjust="none")[("red", "blue")]
    assert default.test == "ols_cr2" and default.family == "pair"
    assert default.table.equals(explicit.table) and not default.table.equals(none.table)


def test_group_by_reads_a_segments_metadata_key_from_the_store(store):
    import json

    import pyarrow as pa

    from ambiguity.stats.comparisons import compare_quadrants
    from ambiguity.stores import schema as S

    y, in_a, lab, cl = _rows(12, n=120, clusters=12)
    ids = [f"s{i:03d}" for i in range(len(y))]
    n = len(ids)
    cols = {f.name: pa.nulls(n, f.type) for f in S.SEGMENTS_SCHEMA}
    cols.update(segment_id=pa.array(ids), label=pa.array(lab.tolist()), split=pa.array(["test"] * n),
                metadata=pa.array([json.dumps({"speaker": f"p{c}"}) for c in cl]))
    store.upsert_segments(pa.table(cols, schema=S.SEGMENTS_SCHEMA))
    feats = pl.DataFrame({"segment_id": ids, "f": y}).with_columns(pl.lit("ok").alias("status"), pl.lit(None, pl.String).alias("error"))
    tbl = feats.to_arrow()
    store.write_features("fake", tbl, tbl.schema, {"extractor": "fake", "extractor_version": "1", "params": {}, "config_key": "k"})
    quads = pl.DataFrame({"segment_id": ids, "quadrant": np.where(in_a, "red", "blue"), "label": lab})
    res = compare_quadrants(store, "audio", "fusion", "fake", [("red", "blue")], quadrants=quads, group_by="speaker")
    # reference: the dense CR2 with the speakers as clusters
    want = ref_cr2(y, in_a, lab.tolist(), [f"p{c}" for c in cl])
    assert_allclose(res[("red", "blue")].to_polars()["p"][0], want[4], rtol=1e-9)
    assert "clustered by speaker (12 clusters)" in res.describe()
    with pytest.raises(StatsError, match="no such column or metadata key"):
        compare_quadrants(store, "audio", "fusion", "fake", quadrants=quads, group_by="dialect")


def test_ordinal_features_get_the_stratified_rank_test():
    from stats_refs import ref_stratified_rank

    rng = np.random.default_rng(13)
    lab = np.repeat(["x", "y", "z"], [10, 11, 12])
    red = np.zeros(33, bool)
    red[[0, 1, 2, 3, 10, 11, 12, 13, 14, 21, 22, 23]] = True
    level = rng.integers(0, 5, 33).astype(float) + red  # intensity levels 0..5, higher in red
    df = pl.DataFrame({"AU12_level": level, "q": np.where(red, "red", "blue"), "label": lab})
    row = compare(df, "q", "red", "blue", labels="label").to_polars().row(0, named=True)
    # reference: the permutation mean and variance of each label's rank sum, by enumeration
    q, p = ref_stratified_rank(red, lab, level)
    assert row["kind"] == "ordinal"
    assert_allclose([row["statistic"], row["p"]], [q, p], rtol=1e-9)
    assert row["direction"] == "μ_red > μ_blue"


def test_a_cluster_fitted_exactly_gets_a_reason():
    # One cluster holds every segment of a label: its rows of I - H are singular, so CR2 is undefined
    # (the dense eigendecomposition of stats_refs.ref_cr2 would divide by zero).
    lab = np.array(["x"] * 6 + ["y"] * 6)
    in_a = np.array([True, False] * 6)
    cl = np.array([0] * 6 + [1, 1, 2, 2, 3, 3])
    des = design(in_a, lab, cl)
    assert not des.ok and "fitted exactly" in des.reason
