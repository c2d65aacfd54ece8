"""Conflict scores: Jensen-Shannon divergence and the most confident opposing pair."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy

from ambiguity import open_store
from ambiguity.errors import StatsError
from ambiguity.models.predictions import prediction_table, write_predictions
from ambiguity.stats.conflicts import (
    annotator_disagreement,
    conflict_correlations,
    conflict_scores,
    conflict_set,
    jensen_shannon,
    opposing_margin,
    spearman_ci,
)


def test_jsd_of_two_equals_scipy_and_of_three_the_definition():
    rng = np.random.default_rng(0)
    p = rng.dirichlet([1, 1, 1], size=(50, 2))
    # scipy.spatial.distance.jensenshannon returns the JS *distance* (the square root of the divergence).
    ref = np.array([jensenshannon(a, b, base=2) ** 2 for a, b in p])
    np.testing.assert_allclose(jensen_shannon(p), ref, atol=1e-12)
    q = rng.dirichlet([1, 1], size=(30, 3))
    ref3 = np.array([entropy(r.mean(0), base=2) - np.mean([entropy(x, base=2) for x in r]) for r in q])
    np.testing.assert_allclose(jensen_shannon(q), ref3, atol=1e-12)
    same = np.repeat(rng.dirichlet([1, 1], size=(5, 1)), 3, axis=1)
    np.testing.assert_allclose(jensen_shannon(same), 0, atol=1e-12)
    np.testing.assert_allclose(jensen_shannon(np.array([[[1.0, 0.0], [0.0, 1.0]]])), [1.0])  # the 1-bit maximum


def test_opposing_margin():
    p = np.array([
        [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]],  # pairs (0,1): min(.9,.8)=.8; (1,2): min(.8,.6)=.6 -> 0.8, (0, 1)
        [[0.7, 0.3], [0.6, 0.4], [0.9, 0.1]],  # all agree -> 0
        [[0.55, 0.45], [0.1, 0.9], [0.95, 0.05]],  # (1,2): min(.9,.95)=.9
    ])
    m, a, b = opposing_margin(p)
    np.testing.assert_allclose(m, [0.8, 0.0, 0.9])
    assert a.tolist() == [0, -1, 1] and b.tolist() == [1, -1, 2]


def _store(tmp_path):
    sys.path.insert(0, str(Path(__file__).parents[1] / "models"))
    from synth import write_segments

    store = open_store(tmp_path / "s")
    ids = [f"s{i}" for i in range(6)]
    labels = ["a", "b", "a", "b", "a", "b"]
    write_segments(store, ids, labels, ["test"] * 6)
    pt, pa_ = PT, PA
    for name, mod, pr in (("t", "text", pt), ("au", "audio", pa_)):
        write_predictions(store, prediction_table(model=name, kind="probe", arch="logistic", modalities=[mod], groups=[name],
                                                  segment_ids=ids, splits=["test"] * 6, labels=labels, classes=["a", "b"], probs=pr))
    return store


PT = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.1, 0.9], [0.95, 0.05], [0.5, 0.5]])
PA = np.array([[0.1, 0.9], [0.3, 0.7], [0.7, 0.3], [0.85, 0.15], [0.2, 0.8], [0.5, 0.5]])


def test_stored_jsd_equals_scipy(tmp_path):
    from scipy.spatial.distance import jensenshannon

    sc = conflict_scores(_store(tmp_path)).sort("segment_id")
    # reference: scipy's Jensen-Shannon distance in bits, squared (the divergence), per segment
    want = [jensenshannon(PT[i], PA[i], base=2) ** 2 for i in range(6)]
    np.testing.assert_allclose(sc["jsd"].to_numpy(), want, atol=1e-7)  # probabilities are stored as float32


def test_conflict_scores_and_set_from_a_store(tmp_path):
    store = _store(tmp_path)
    sc = conflict_scores(store)
    assert sc.height == 6
    r = {row["segment_id"]: row for row in sc.iter_rows(named=True)}
    np.testing.assert_allclose(r["s0"]["margin"], 0.9)
    assert {r["s0"]["class_a"], r["s0"]["class_b"]} == {"a", "b"}
    assert r["s1"]["margin"] == 0 and r["s1"]["model_a"] is None
    assert json.loads(r["s3"]["predicted"]) == {"au": "a", "t": "b"}
    cs = conflict_set(sc, 0.85)
    assert cs["segment_id"].to_list() == ["s0", "s3"]  # margins 0.9 and 0.85; s4 has 0.8
    assert (cs["margin"] >= 0.85).all()
    with pytest.raises(StatsError, match="at least two unimodal models"):
        conflict_scores(store, ["t"])
    with pytest.raises(StatsError, match="threshold"):
        conflict_set(sc, 0.3)
    corr = conflict_correlations(store, sc, n_boot=50)
    assert corr.filter(corr["with"] == "annotator disagreement")["note"].to_list() == ["the store has no annotations"]
    # No crossfit run in this store: one row per unimodal model says so.
    notes = corr.filter(corr["with"].str.starts_with("crossfit stability"))
    assert notes.height == 2 and notes["note"].null_count() == 0
    # With a stability frame given: rho against it, equal to scipy's.
    from scipy import stats

    st = sc.select("segment_id", (1 - sc["jsd"] + np.arange(6) * 0.01).alias("stability"))
    got = conflict_correlations(store, sc, stability=st, n_boot=50)
    row = got.filter((got["with"] == "crossfit stability (given)") & (got["score"] == "jsd")).row(0, named=True)
    assert row["rho"] == pytest.approx(stats.spearmanr(sc["jsd"], st["stability"]).statistic)


def test_spearman_and_disagreement(tmp_path):
    from scipy import stats

    rng = np.random.default_rng(1)
    x = rng.normal(size=40)
    y = x + rng.normal(size=40)
    res = spearman_ci(x, y, n_boot=300)
    assert res["rho"] == pytest.approx(stats.spearmanr(x, y).statistic)
    assert res["ci_low"] < res["rho"] < res["ci_high"]
    store = open_store(tmp_path / "s")
    import pyarrow as pa

    store.upsert("annotations", pa.table({"key": ["1", "2", "3", "4", "5"], "task": ["t"] * 5,
                                          "segment_id": ["a", "a", "a", "b", "b"], "judgment": ["x", "x", "y", "x", "x"]}), key="key")
    dis = annotator_disagreement(store, "t")
    # 3 answers x, x, y: 2 of the 6 ordered pairs agree -> disagreement 1 - 2/6.
    assert dis["disagreement"].to_list() == pytest.approx([1 - 2 / 6, 0.0])


def test_spearman_uses_complete_pairs_and_needs_three():
    from scipy.stats import spearmanr

    x = np.array([1.0, 2.0, np.nan, 4.0, 5.0, 3.0])
    y = np.array([2.0, 1.0, 3.0, np.inf, 5.0, 4.0])
    res = spearman_ci(x, y, n_boot=50)
    keep = np.isfinite(x) & np.isfinite(y)
    assert res["n"] == 4 and res["rho"] == pytest.approx(spearmanr(x[keep], y[keep]).statistic)
    assert spearman_ci([1.0, 2.0, 3.0], [1.0, 3.0, 2.0], n_boot=20)["n"] == 3  # three are enough
    with pytest.raises(StatsError, match="at least 3"):
        spearman_ci([1.0, 2.0], [2.0, 1.0])


def test_spearman_interval_on_a_narrow_range_and_the_two_model_message(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=30)
    res = spearman_ci(x, 0.01 * x + 0.001 * rng.normal(size=30), n_boot=100)  # y spans far less than 1
    assert np.isfinite(res["ci_low"]) and res["ci_low"] <= res["rho"] <= res["ci_high"]
    with pytest.raises(StatsError, match="at least two unimodal models; found t$"):
        conflict_scores(_store(tmp_path), ["t"])


def test_models_on_different_segments_are_scored_on_the_segments_all_of_them_predict(tmp_path):
    # three models over overlapping sets: t on s0-s5, au on s0-s3, v on s2-s5 -> only s2, s3 are common
    # (kills the mutation-run survivor that collected each model's segments with != instead of ==)
    store = _store(tmp_path)
    ids = [f"s{i}" for i in range(2, 6)]
    write_predictions(store, prediction_table(model="v", kind="probe", arch="logistic", modalities=["video"], groups=["v"],
                                              segment_ids=ids, splits=["test"] * 4, labels=["a", "b", "a", "b"],
                                              classes=["a", "b"], probs=PT[2:]))
    store.delete("predictions", "model = 'au' AND segment_id IN ('s4', 's5')")
    sc = conflict_scores(store, ["t", "au", "v"]).sort("segment_id")
    assert sc["segment_id"].to_list() == ["s2", "s3"]
