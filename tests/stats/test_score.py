"""The ambiguity score: the weighted mean over present components, from its definition."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from ambiguity.errors import StatsError
from ambiguity.stats.score import COMPONENTS, ambiguity_scores, combine, rank
from explore_data import make_store


def test_combine_by_definition():
    df = pl.DataFrame({
        "segment_id": ["a", "b", "c"], "committee": [0.5, None, None], "knn": [1.0, 0.2, None], "annotators": [0.0, 0.6, None],
    })
    out = combine(df, {"knn": 2})
    # a: (0.5*1 + 1.0*2 + 0*1) / 4; b: (0.2*2 + 0.6*1) / 3; c: nothing present
    assert out["score"].to_list()[:2] == pytest.approx([2.5 / 4, 1.0 / 3])
    assert out["score"].to_list()[2] is None and out["n_components"].to_list() == [3, 2, 0]
    only = combine(df, {c: 0 for c in COMPONENTS} | {"knn": 1})
    assert only["score"].to_list()[:2] == pytest.approx([1.0, 0.2])  # a component alone


@pytest.mark.parametrize(("weights", "match"), [
    ({"bogus": 1}, "unknown score component"), ({"knn": -1}, ">= 0"), ({"knn": math.nan}, "finite"),
    ({"knn": "x"}, "number"), ({c: 0 for c in COMPONENTS}, "every weight is 0"),
])
def test_bad_weights(weights, match):
    with pytest.raises(StatsError, match=match):
        combine(pl.DataFrame({"segment_id": ["a"], "knn": [0.1]}), weights)


def test_store_scores_and_rank(store, tmp_path):
    ids, labels, p, _ = make_store(store, 80)
    res = ambiguity_scores(store)
    assert res.available == ("committee", "conflict")
    assert "--folds" in res.missing["disagreement"] and "embedding" in res.missing["knn"]
    assert "in sample" in res.missing["confidence"]  # cartography: training segments only, off by default
    from scipy.spatial.distance import jensenshannon

    split = dict(zip(*store.segments(["segment_id", "split"]).to_dict(as_series=False).values(), strict=True))
    f = res.frame.sort("segment_id")
    # fixed scheme only: out of sample means the test split; every other segment has no model component
    assert f.filter(pl.col("committee").is_not_null())["segment_id"].to_list() == sorted(s for s in p["fusion"] if split[s] == "test")
    for r in f.filter(pl.col("committee").is_not_null()).iter_rows(named=True):
        s = r["segment_id"]
        # committee: vote entropy of the three members' predicted labels (two classes), by hand
        right = sum(p[m][s] > 0.5 for m in ("text.m", "audio.m", "fusion"))
        share = right / 3
        h = 0.0 if share in (0, 1) else -(share * math.log(share) + (1 - share) * math.log(1 - share)) / math.log(2)
        assert r["committee"] == pytest.approx(h)
        # conflict: JS divergence (bits) of the two unimodal distributions; its maximum is 1 bit here
        a, b = [p["text.m"][s], 1 - p["text.m"][s]], [p["audio.m"][s], 1 - p["audio.m"][s]]
        assert r["conflict"] == pytest.approx(jensenshannon(a, b, base=2) ** 2, abs=1e-6)
        assert r["score"] == pytest.approx((h + r["conflict"]) / 2)
    top = rank(store, 5)
    assert top.height == 5 and top["score"].to_list() == sorted(top["score"].to_list(), reverse=True)
    assert set(top["split"].to_list()) == {"test"}
    assert top["rank"].to_list() == [1, 2, 3, 4, 5] and "transcript" in top.columns

    from ambiguity.cli import main

    out = tmp_path / "top.csv"
    r = CliRunner().invoke(main, ["--store", store.uri, "rank", "--top", "7", "--format", "csv", "--out", str(out), "--embedding", "none"])
    assert r.exit_code == 0, r.output
    got = pl.read_csv(out)
    assert got.height == 7 and got["segment_id"].to_list() == rank(store, 7)["segment_id"].to_list()
    bad = CliRunner().invoke(main, ["--store", store.uri, "rank", "--weight", "knn"])
    assert bad.exit_code == 2 and "COMPONENT=WEIGHT" in bad.output


def test_only_segments_with_every_component_are_ranked(store):
    from ambiguity.stats.score import ScoreResult, ranked

    ids, labels, p, _ = make_store(store, 12)
    frame = combine(pl.DataFrame({"segment_id": ids[:3], "committee": [0.9, 0.2, None], "knn": [0.1, 0.3, 1.0]}))
    res = ScoreResult(frame, {}, ("committee", "knn"))
    # ids[2] has the highest mean over what it has (1.0, knn alone) but lacks committee: it is not ranked
    assert res.complete()["segment_id"].to_list() == ids[:2]
    assert ranked(store, res, 5)["segment_id"].to_list() == [ids[0], ids[1]]
    none = ScoreResult(combine(pl.DataFrame({"segment_id": ids[:1], "committee": [None], "knn": [0.5]})), {}, ("committee", "knn"))
    with pytest.raises(StatsError, match="no segment has every available component"):
        ranked(store, none, 5)


def test_a_score_without_out_of_sample_predictions_says_what_to_run(store):
    from ambiguity.stats.conflicts import conflict_scores

    make_store(store, 30)
    with pytest.raises(StatsError, match="in sample .*--folds 5"):
        conflict_scores(store, splits=["train"])
    empty_store = store  # the fixed predictions above hold test rows; a store without predictions:
    from ambiguity import open_store

    bare = open_store(empty_store.uri + "-bare")
    bare.upsert_segments(store.read("segments").to_arrow())
    with pytest.raises(StatsError, match="no out-of-sample predictions: run `ambiguity train GROUPS --folds 5`"):
        conflict_scores(bare, ["a", "b"])
    res = ambiguity_scores(bare)
    assert "run `ambiguity train" in res.missing["committee"]
    with pytest.raises(StatsError, match="no score component is available"):
        rank(bare, 5)


def test_annotator_component(store):
    from ambiguity.annotate.records import Answer, write_answers
    from ambiguity.annotate.tasks import save_task, stratified_sample

    ids, labels, p, _ = make_store(store, 12)
    frame = pl.DataFrame({"segment_id": ids[:4], "quadrant": ["red", "green", "blue", "yellow"], "label": labels[:4]})
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = stratified_sample({"text": frame}, 1, 0, name="t", choices=["empathetic", "neutral"])
    save_task(store, t)
    answers = []
    for name, j in [("ann1", "empathetic"), ("ann2", "empathetic"), ("ann3", "neutral")]:
        answers.append(Answer("t", name, f"text:{ids[0]}", ids[0], "multimodal", j))
    for name in ("ann1", "ann2"):
        answers.append(Answer("t", name, f"text:{ids[1]}", ids[1], "multimodal", "neutral"))
    write_answers(store, answers)
    res = ambiguity_scores(store)
    a = dict(zip(res.frame["segment_id"].to_list(), res.frame["annotators"].to_list(), strict=True))
    # (1 - majority share) / (1 - 1/C): 2 of 3 agree, C = 2 -> (1/3) / (1/2); unanimous -> 0
    assert a[ids[0]] == pytest.approx((1 / 3) / 0.5) and a[ids[1]] == 0.0 and a[ids[2]] is None


def test_knn_component_is_the_other_label_share(store):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
    from synth import write_vector_group

    ids, labels, p, _ = make_store(store, 40)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 5)).astype(np.float32)
    write_vector_group(store, "emb", ids, X)
    res = ambiguity_scores(store, embedding="emb", k=5)
    # from the definition: cosine distance, 5 nearest others, share with another label
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    D = 1 - U @ U.T
    np.fill_diagonal(D, np.inf)
    knn = dict(zip(res.frame["segment_id"].to_list(), res.frame["knn"].to_list(), strict=True))
    for i, s in enumerate(ids):
        near = np.argsort(D[i], kind="stable")[:5]
        assert knn[s] == pytest.approx(np.mean([labels[j] != labels[i] for j in near]))
