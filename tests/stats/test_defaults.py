"""The documented defaults, checked by behaviour: a call without the argument equals the call
with the documented value (a mutated default -- 2001 resamples, alpha 0.1 -- changes the result).
Documented in docs/statistics.md (alpha 0.05, Holm, 95 %, 2,000 resamples), the docstring of
ambiguity.stats.conflicts (threshold 0.8) and docs/cli.md (`ingest --seed`, default 0)."""

from __future__ import annotations

import inspect

import numpy as np
import polars as pl
import pytest

from ambiguity.stats.attribution_by_quadrant import auc_lower, quadrant_attribution, summarise
from ambiguity.stats.comparisons import TEST_DEFAULTS, compare, compare_quadrant_frame
from ambiguity.stats.conflicts import conflict_set, spearman_ci
from ambiguity.stats.multitest import adjust


def test_adjust_defaults_to_holm_at_005():
    p = np.array([0.01, 0.03, 0.07])  # Holm: 0.03, 0.06, 0.07
    got = adjust(p)
    assert got[1].tolist() == [True, False, False]  # at 0.1 all three would be rejected
    np.testing.assert_array_equal(got[0], adjust(p, "holm", 0.05)[0])
    assert not np.array_equal(got[0], adjust(p, "bonferroni", 0.05)[0])


def test_resampling_defaults_are_2000_at_95_percent():
    rng = np.random.default_rng(0)
    f, o = rng.normal(0, 1, 25), rng.normal(0.5, 1, 30)
    assert auc_lower(f, o) == auc_lower(f, o, n_boot=2000, ci=0.95, seed=0)
    x, y = rng.normal(size=40), rng.normal(size=40)
    assert spearman_ci(x, y) == spearman_ci(x, y, n_boot=2000, ci=0.95, seed=0)


def test_conflict_threshold_defaults_to_08():
    scores = pl.DataFrame({"segment_id": ["a", "b", "c"], "margin": [0.79, 0.8, 0.95]})
    assert conflict_set(scores)["segment_id"].to_list() == ["c", "b"]


def test_attribution_defaults():
    # quadrant_attribution needs a store; its defaults are passed straight to summarise
    sig = inspect.signature(quadrant_attribution).parameters
    assert {k: sig[k].default for k in ("test", "correction", "alpha", "ci", "threshold")} == {
        "test": "welch", "correction": "holm", "alpha": 0.05, "ci": 0.95, "threshold": 0.5}
    sig = inspect.signature(summarise).parameters
    assert {k: sig[k].default for k in ("test", "correction", "alpha", "ci")} == {
        "test": "welch", "correction": "holm", "alpha": 0.05, "ci": 0.95}


def test_splits_are_assigned_with_seed_0_by_default(tmp_path):
    from ambiguity.segments import load_manifest

    man = tmp_path / "m.csv"
    man.write_text("segment_id,media,label\n" + "".join(f"s{i},x.wav,{i % 3}\n" for i in range(60)))
    default = load_manifest(man, check_files=False).column("split").to_pylist()
    assert default == load_manifest(man, check_files=False, seed=0).column("split").to_pylist()
    assert default != load_manifest(man, check_files=False, seed=1).column("split").to_pylist()


@pytest.mark.parametrize("field,value", [("seed", 0), ("per_quadrant", 0), ("choices", ())])
def test_annotation_task_record_defaults(field, value):
    # explore builds tasks by hand without these: a hand-made task is "not sampled" (0 per quadrant)
    from ambiguity.annotate.tasks import AnnotationTask

    task = AnnotationTask(name="t", items=pl.DataFrame({"item": ["x"]}))
    assert getattr(task, field) == value


def test_quadrant_comparisons_test_as_compare_does_by_default():
    # compare()'s documented keywords and TEST_DEFAULTS, which the quadrant comparisons use, are one set of values
    sig = inspect.signature(compare).parameters
    assert {k: sig[k].default for k in TEST_DEFAULTS} == {"test": "welch", "correction": "holm", "alpha": 0.05, "ci": 0.95, "bayes": False}
    assert TEST_DEFAULTS == {k: sig[k].default for k in TEST_DEFAULTS}
    rng = np.random.default_rng(1)
    quads = pl.DataFrame({"segment_id": [f"s{i}" for i in range(40)], "quadrant": ["red", "blue"] * 20})
    feats = pl.DataFrame({"segment_id": quads["segment_id"], "x": rng.normal(size=40), "y": rng.normal(size=40)})
    got = compare_quadrant_frame(feats, quads, [("red", "blue")]).comparisons[0].table
    ref = compare(feats.join(quads, on="segment_id"), "quadrant", "red", "blue", columns=["x", "y"]).table
    assert got.select("p", "p_adj").equals(ref.select("p", "p_adj"))
    with pytest.raises(TypeError, match="corection"):
        compare_quadrant_frame(feats, quads, corection="bonferroni")  # type: ignore[call-arg]
