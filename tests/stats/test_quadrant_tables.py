"""Quadrants, Table 1, Table 2 and their figures: properties, direct computations, references."""

from __future__ import annotations

import sys
from itertools import combinations
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypothesis_profiles import examples

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from synth import write_segments  # noqa: E402

from ambiguity.constants import QUADRANTS  # noqa: E402
from ambiguity.errors import ConfigError, StatsError  # noqa: E402
from ambiguity.models.predictions import prediction_table, write_predictions  # noqa: E402
from ambiguity.stats.assign import assign_quadrants  # noqa: E402
from ambiguity.stats.quadrant_tables import (  # noqa: E402
    bootstrap_rate_ci,
    disagreement,
    disagreement_rates,
    load_quadrants,
    performance,
    quadrant_counts,
    quadrants,
    resolve_model,
    table1,
    table2,
)

prob = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
pairs = st.lists(st.tuples(prob, prob), min_size=0, max_size=60)
thresholds = st.sampled_from([0.5, 0.0, 0.3, 0.75, 0.999])


@given(pairs, thresholds)
def test_every_segment_in_exactly_one_quadrant_and_counts_add_up(ps, t):
    pu = np.array([a for a, _ in ps])
    pf = np.array([b for _, b in ps])
    q = assign_quadrants(pu, pf, t)
    assert len(q) == len(ps)
    masks = np.array([q == name for name in QUADRANTS])
    assert (masks.sum(0) == 1).all()
    counts = quadrant_counts(q)
    assert sum(counts.values()) == len(ps)
    # Direct reading of the definition (right means p > t).
    assert counts["red"] == int(((pu > t) & ~(pf > t)).sum())
    assert counts["green"] == int((~(pu > t) & (pf > t)).sum())
    assert counts["blue"] == int(((pu > t) & (pf > t)).sum())


@given(pairs, thresholds)
def test_swapping_models_swaps_red_and_green(ps, t):
    pu = np.array([a for a, _ in ps])
    pf = np.array([b for _, b in ps])
    q = assign_quadrants(pu, pf, t)
    swapped = assign_quadrants(pf, pu, t)
    back = {"red": "green", "green": "red", "blue": "blue", "yellow": "yellow"}
    assert [back[x] for x in q] == list(swapped)


def test_boundary_counts_as_wrong():
    q = assign_quadrants([0.5, 0.5, 0.5000001, 0.2], [0.5, 0.9, 0.5, 0.5000001])
    assert list(q) == ["yellow", "green", "red", "green"]


def test_invalid_probabilities_are_refused():
    with pytest.raises(StatsError, match="position 1"):
        assign_quadrants([0.2, np.nan], [0.1, 0.2])
    with pytest.raises(StatsError):
        assign_quadrants([0.2, 1.2], [0.1, 0.2])
    with pytest.raises(StatsError, match="align"):
        assign_quadrants([0.2], [0.1, 0.2])
    with pytest.raises(StatsError, match="threshold"):
        assign_quadrants([0.2], [0.1], threshold=1.0)
    with pytest.raises(StatsError, match="unknown quadrant"):
        quadrant_counts(["red", "purple"])


labels = st.sampled_from(["a", "b", "c", None])


@settings(max_examples=examples(60))
@given(st.integers(1, 5), st.integers(0, 30), st.data())
def test_disagreement_matrix_is_symmetric_zero_diagonal_and_direct(m, n, data):
    P = np.array([[data.draw(labels) for _ in range(n)] for _ in range(m)], dtype=object).reshape(m, n)
    rate, cnt = disagreement_rates(P)
    for i in range(m):
        assert rate[i, i] == 0 or (cnt[i, i] == 0 and np.isnan(rate[i, i]))
    np.testing.assert_array_equal(rate, rate.T)
    np.testing.assert_array_equal(cnt, cnt.T)
    for i, j in combinations(range(m), 2):
        both = [k for k in range(n) if P[i, k] is not None and P[j, k] is not None]
        assert cnt[i, j] == len(both)
        if both:
            direct = sum(P[i, k] != P[j, k] for k in both) / len(both)
            assert rate[i, j] == pytest.approx(direct)
        else:
            assert np.isnan(rate[i, j])


def _frame(preds: dict[str, list[str]]) -> pl.DataFrame:
    rows = [{"model": m, "segment_id": f"s{k}", "predicted": p} for m, ps in preds.items() for k, p in enumerate(ps) if p is not None]
    return pl.DataFrame(rows)


def test_disagreement_result_tables():
    preds = {"text": ["a", "a", "b", "b"], "audio": ["a", "b", "b", "a"], "fusion": ["a", "a", "b", None]}
    res = disagreement(_frame(preds), n_boot=500)
    assert res.models == ("text", "audio", "fusion")
    long = res.to_polars()
    row = long.filter((pl.col("model_a") == "text") & (pl.col("model_b") == "audio")).row(0, named=True)
    assert row["rate"] == 0.5 and row["n"] == 4
    row = long.filter((pl.col("model_a") == "text") & (pl.col("model_b") == "fusion")).row(0, named=True)
    assert row["rate"] == 0.0 and row["n"] == 3  # s3 has no fusion prediction
    wide = res.matrix()
    assert wide.columns == ["model", "text", "audio", "fusion", "n"]
    assert wide["n"].to_list() == [4, 4, 3]  # segments each model predicted (Table 2 gives n per model)
    assert wide["text"][0] == "–" and wide["audio"][0].startswith("0.500 [")
    with pytest.raises(StatsError, match="no predictions for model"):
        disagreement(_frame(preds), ["video"])


def test_bootstrap_ci_matches_scipy_resampling():
    from scipy.stats import bootstrap

    rng = np.random.default_rng(1)
    d = (rng.random(300) < 0.23).astype(float)
    lo, hi = bootstrap_rate_ci(d.mean(), d.size, n_boot=20000, rng=np.random.default_rng(2))
    # Reference: scipy.stats.bootstrap((d,), np.mean, method="percentile", n_resamples=20000) resamples the
    # segments themselves; the binomial shortcut must give the same interval up to Monte Carlo error.
    ref = bootstrap((d,), np.mean, method="percentile", n_resamples=20000, random_state=3).confidence_interval
    assert lo == pytest.approx(ref.low, abs=0.008)
    assert hi == pytest.approx(ref.high, abs=0.008)


def test_performance_by_direct_counting():
    df = pl.DataFrame({
        "model": ["m"] * 6, "label": ["x", "x", "y", "y", "z", "z"], "predicted": ["x", "y", "y", "y", "x", "z"],
    })
    t = performance(df)
    assert t["accuracy"][0] == pytest.approx(4 / 6)
    # Macro F1 by hand: per class precision/recall from the counts above.
    f1 = {"x": 2 * 0.5 * 0.5 / (0.5 + 0.5), "y": 2 * (2 / 3) * 1 / (2 / 3 + 1), "z": 2 * 1 * 0.5 / (1 + 0.5)}
    assert t["f1"][0] == pytest.approx(sum(f1.values()) / 3)


@pytest.fixture
def pred_store(store):
    """Three models with hand-set probabilities over five test segments and one val segment."""
    ids = ["a", "b", "c", "d", "e", "f"]
    lab = ["1", "0", "1", "0", "1", "0"]
    split = ["test"] * 5 + ["val"]
    write_segments(store, ids, lab, split)
    p1 = {  # P(class "1")
        "text.x": [0.9, 0.2, 0.4, 0.6, 0.5, 0.1],
        "prosody": [0.3, 0.7, 0.8, 0.1, 0.9, 0.4],
        "fusion": [0.8, 0.6, 0.3, 0.3, 0.7, 0.2],
    }
    mods = {"text.x": ["text"], "prosody": ["audio"], "fusion": ["text", "audio"]}
    for m, p in p1.items():
        p = np.array(p)
        write_predictions(store, prediction_table(
            model=m, kind="fusion" if m == "fusion" else "probe", arch="x", modalities=mods[m], groups=[m],
            segment_ids=ids, splits=split, labels=lab, classes=["0", "1"], probs=np.stack([1 - p, p], 1)))
    return store


def test_load_quadrants_contract(pred_store):
    df = load_quadrants(pred_store, "text.x", "fusion")
    assert df.columns == ["segment_id", "quadrant", "p_unimodal", "p_fusion", "label", "split", "scheme"]
    assert df["segment_id"].to_list() == ["a", "b", "c", "d", "e"]
    # p_correct by hand: label 1 -> P(1), label 0 -> 1 - P(1); e has p_unimodal exactly 0.5 (wrong).
    np.testing.assert_allclose(df["p_unimodal"], [0.9, 0.8, 0.4, 0.4, 0.5], rtol=1e-6)
    np.testing.assert_allclose(df["p_fusion"], [0.8, 0.4, 0.3, 0.7, 0.7], rtol=1e-6)
    assert df["quadrant"].to_list() == ["blue", "red", "yellow", "green", "green"]
    both = load_quadrants(pred_store, "text", "fusion", splits=("test", "val"))  # a modality names its model
    assert both.height == 6 and both["split"][-1] == "val"
    res = quadrants(pred_store, "text", "fusion")
    assert res.counts == {"red": 1, "green": 2, "blue": 1, "yellow": 1}
    assert resolve_model(pred_store, "audio") == "prosody"
    with pytest.raises(StatsError, match="no model 'video'"):
        load_quadrants(pred_store, "video", "fusion")
    with pytest.raises(ConfigError, match="splits dev: choose from train, val, test"):
        load_quadrants(pred_store, "text", "fusion", splits=("dev",))


def test_quadrants_reads_the_model_summary_once(pred_store, monkeypatch):
    import ambiguity.models.predictions as P

    calls = []
    real = P.model_summary
    monkeypatch.setattr(P, "model_summary", lambda store: calls.append(1) or real(store))
    res = quadrants(pred_store, "text", "fusion")  # a modality and a model name both resolved
    assert (res.unimodal, res.fusion) == ("text.x", "fusion") and len(calls) == 1  # was 4
    calls.clear()
    load_quadrants(pred_store, "text", "fusion")
    assert len(calls) == 1


def test_tables_from_store(pred_store):
    t1 = table1(pred_store)
    assert t1["model"].to_list() == ["prosody", "text.x", "fusion"]  # unimodal first
    # text.x predicts 1,0,0,1,(0.5 tie -> class "0") on labels 1,0,1,0,1: right on a, b.
    assert t1.filter(pl.col("model") == "text.x")["accuracy"][0] == pytest.approx(2 / 5)
    t2 = table2(pred_store, n_boot=200)
    r = t2.to_polars().filter((pl.col("model_a") == "text.x") & (pl.col("model_b") == "fusion"))
    # predictions text.x: 1 0 0 1 0 ; fusion: 1 1 0 0 1 -> differ on b, d, e.
    assert r["rate"][0] == pytest.approx(3 / 5)
    assert r["ci_low"][0] <= 0.6 <= r["ci_high"][0]


def test_figures_are_written_and_not_blank(pred_store, tmp_path):
    import matplotlib.image as mpimg

    from ambiguity.report.fig_quadrants import write_datamap, write_figure2

    paths = write_figure2(pred_store, tmp_path, "fusion", splits=("test", "val"))
    assert [p.suffix for p in paths] == [".png", ".svg"]
    img = mpimg.imread(paths[0])
    assert img.shape[1] > img.shape[0] and img[..., :3].std() > 0.05
    assert "<svg" in paths[1].read_text()[:500]
    with pytest.raises(Exception, match="training dynamics"):
        write_datamap(pred_store, tmp_path)


def test_models_are_ordered_unimodal_first_each_part_by_name(pred_store):
    # the row order of Tables 1 and 2 (kills the mutation-run survivors in ordered_models)
    from ambiguity.stats.quadrant_tables import ordered_models

    assert ordered_models(pred_store) == ["prosody", "text.x", "fusion"]
