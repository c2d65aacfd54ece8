"""Stratified sampling per quadrant per modality, the tasks table, exports, the `sample` command."""

from __future__ import annotations

import json
import warnings
import xml.etree.ElementTree as ET

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from ambiguity.annotate.tasks import (
    QUADRANTS,
    ShortQuadrantWarning,
    label_studio_config,
    load_task,
    save_task,
    stratified_sample,
    task_names,
)
from ambiguity.errors import StatsError, StoreError


def frames(n=200, seed=0, modalities=("text", "audio", "video")):
    """Quadrant frames shaped like load_quadrants' output: every modality over the same segments."""
    rng = np.random.default_rng(seed)
    ids = [f"seg{i:04d}" for i in range(n)]
    out = {}
    for m in modalities:
        out[m] = pl.DataFrame(
            {
                "segment_id": ids,
                "quadrant": rng.choice(QUADRANTS, n).tolist(),
                "p_unimodal": rng.random(n),
                "p_fusion": rng.random(n),
                "label": rng.choice(["empathetic", "neutral"], n).tolist(),
                "split": ["test"] * n,
            }
        )
    return out


def test_exact_counts_per_quadrant_and_modality():
    fr = frames(600)
    t = stratified_sample(fr, 17, seed=1)
    counts = t.counts()
    assert counts.height == 12 and set(counts["n"].to_list()) == {17}
    assert t.items.height == 204  # the paper's 17 x 4 x 3
    # every item sits in the quadrant its modality's frame gives it
    for r in t.items.iter_rows(named=True):
        q = fr[r["modality"]].filter(pl.col("segment_id") == r["segment_id"])["quadrant"][0]
        assert q == r["quadrant"]
    assert t.items["item"].n_unique() == 204
    assert t.items["segment_id"].n_unique() == 204  # distinct by default
    assert sorted(t.items["position"].to_list()) == list(range(204))
    assert t.choices == ("empathetic", "neutral")


def test_same_seed_same_sample_whatever_the_row_order():
    a = stratified_sample(frames(), 10, seed=7)
    shuffled = {m: df.sample(fraction=1.0, shuffle=True, seed=3) for m, df in frames().items()}
    b = stratified_sample(shuffled, 10, seed=7)
    assert a.items.equals(b.items)
    c = stratified_sample(frames(), 10, seed=8)
    assert set(a.items["item"]) != set(c.items["item"])


def test_short_quadrant_gives_all_and_warns():
    fr = frames(40)
    fr["text"] = fr["text"].with_columns(
        pl.when(pl.int_range(pl.len()) < 3).then(pl.lit("red")).otherwise(pl.lit("blue")).alias("quadrant")
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = stratified_sample({"text": fr["text"]}, 5, seed=0)
    msgs = sorted(str(w.message) for w in caught if issubclass(w.category, ShortQuadrantWarning))
    assert len(msgs) == 3 and any(m.startswith("text/red: only 3 segment(s) available, 5 asked for") for m in msgs)
    got = t.counts().filter(pl.col("modality") == "text")
    assert dict(zip(got["quadrant"], got["n"], strict=True)) == {"red": 3, "blue": 5}
    short = {(s.modality, s.quadrant): (s.available, s.requested) for s in t.shortfalls}
    assert short == {("text", "red"): (3, 5), ("text", "green"): (0, 5), ("text", "yellow"): (0, 5)}


def test_distinct_across_modalities_or_repeats_allowed():
    fr = frames(60, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShortQuadrantWarning)
        d = stratified_sample(fr, 6, seed=0)
        r = stratified_sample(fr, 6, seed=0, distinct=False)
    assert d.items["segment_id"].n_unique() == d.items.height
    assert r.items.height == 72 and set(r.counts()["n"].to_list()) == {6}
    # without replacement inside every stratum even when repeats across modalities are allowed
    assert r.items.group_by("modality").agg(pl.col("segment_id").n_unique().alias("u"), pl.len())["u"].to_list() == [24] * 3


def test_draw_is_uniform_within_a_stratum():
    from scipy.stats import chisquare

    pool = {"text": pl.DataFrame({"segment_id": [f"s{i}" for i in range(20)], "quadrant": ["red"] * 20, "label": ["a", "b"] * 10})}
    hits: dict[str, int] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShortQuadrantWarning)
        for seed in range(400):
            for s in stratified_sample(pool, 5, seed=seed).items["segment_id"]:
                hits[s] = hits.get(s, 0) + 1
    counts = np.array([hits.get(f"s{i}", 0) for i in range(20)])
    assert counts.sum() == 2000
    # reference: scipy.stats.chisquare against equal expected counts (100 each)
    assert chisquare(counts).pvalue > 1e-3


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"smell": pl.DataFrame({"segment_id": ["a"], "quadrant": ["red"]})}, "unknown modality"),
        ({"text": pl.DataFrame({"segment_id": ["a"]})}, "missing column"),
        ({"text": pl.DataFrame({"segment_id": ["a"], "quadrant": ["purple"]})}, "unknown quadrant"),
        ({"text": pl.DataFrame({"segment_id": ["a", "a"], "quadrant": ["red", "red"]})}, "listed twice"),
        ({"text": pl.DataFrame({"segment_id": [None], "quadrant": ["red"]}, schema={"segment_id": pl.String, "quadrant": pl.String})}, "no segment_id"),
        ({"text": "not a frame"}, "polars DataFrame"),
        ({}, "no quadrant frames"),
    ],
)
def test_bad_frames(bad, match):
    with pytest.raises(StatsError, match=match):
        stratified_sample(bad, 3, seed=0)


def test_bad_parameters():
    fr = frames(100)
    for n in (0, -1, 2.5, True):
        with pytest.raises(StatsError, match="per_quadrant"):
            stratified_sample(fr, n, seed=0)
    with pytest.raises(StatsError, match="seed"):
        stratified_sample(fr, 2, seed=-3)
    with pytest.raises(StoreError, match="invalid task name"):
        stratified_sample(fr, 2, seed=0, name="../x")
    with pytest.raises(StatsError, match="two distinct labels"):
        stratified_sample(fr, 2, seed=0, choices=["only"])


def test_save_load_roundtrip_and_replace(store):
    t = stratified_sample(frames(80), 4, seed=3, name="pilot", models={"text": "roberta"}, fusion="gated")
    save_task(store, t)
    back = load_task(store, "pilot")
    assert back.items.equals(t.items) and back.choices == t.choices and back.seed == 3
    assert back.items.filter(pl.col("modality") == "text")["unimodal_model"].unique().to_list() == ["roberta"]
    assert task_names(store) == ["pilot"]
    with pytest.raises(StoreError, match="exists already"):
        save_task(store, t)
    t2 = stratified_sample(frames(80), 2, seed=4, name="pilot")
    save_task(store, t2, replace=True)
    assert load_task(store, "pilot").items.height == 24
    with pytest.raises(StoreError, match="no annotation task 'other'"):
        load_task(store, "other")


def test_exports(tmp_path):
    t = stratified_sample(frames(60), 2, seed=0, name="ex")
    segs = pl.DataFrame({"segment_id": [f"seg{i:04d}" for i in range(60)], "media": ["/data/v.mp4"] * 60, "audio": [None] * 60,
                         "start_s": [float(i) for i in range(60)], "end_s": [i + 1.5 for i in range(60)], "transcript": ["hi <b>there</b>"] * 60})
    csv = pl.read_csv(t.to_csv(tmp_path / "t.csv", segs))
    assert csv.height == 24 and {"item", "quadrant", "media", "start_s", "transcript"} <= set(csv.columns)
    data = json.loads(t.to_label_studio(tmp_path / "t.json", segs).read_text())
    assert len(data) == 24
    assert "quadrant" not in data[0]["data"] and data[0]["meta"]["quadrant"] in QUADRANTS  # blind view
    assert data[0]["data"]["transcript"] == "hi <b>there</b>"
    root = ET.fromstring(label_studio_config(['say "no"', "<neutral>"]))
    names = [c.get("name") for c in root.iter("Choices")]
    assert names == ["unimodal", "multimodal"]
    assert [c.get("value") for c in root.iter("Choice")][:2] == ['say "no"', "<neutral>"]


def _store_with_predictions(store, n=120, seed=0):
    """Segments and predictions of three unimodal models and a fusion model (random probabilities)."""
    import pyarrow as pa

    from ambiguity.models.predictions import prediction_table, write_predictions
    from ambiguity.stores.schema import SEGMENTS_SCHEMA

    rng = np.random.default_rng(seed)
    ids = [f"seg{i:04d}" for i in range(n)]
    labels = rng.choice(["empathetic", "neutral"], n).tolist()
    store.upsert_segments(pa.table({"segment_id": ids, "media": ["v.mp4"] * n, "audio": [None] * n, "start_s": [0.0] * n,
                                    "end_s": [1.0] * n, "transcript": ["t"] * n, "label": labels,
                                    "split": ["test"] * n, "metadata": ["{}"] * n}, schema=SEGMENTS_SCHEMA))
    for model, mods in (("rob", ["text"]), ("hub", ["audio"]), ("vmae", ["video"]), ("gated", ["text", "audio", "video"])):
        p = rng.random(n)
        write_predictions(store, prediction_table(
            model=model, kind="fusion" if len(mods) > 1 else "probe", arch="mlp", modalities=mods, groups=mods,
            segment_ids=ids, splits=["test"] * n, labels=labels, classes=["empathetic", "neutral"],
            probs=np.stack([p, 1 - p], axis=1)))
    return ids


def test_sample_command(store, tmp_path):
    """`ambiguity sample` on real predictions: quadrants via load_quadrants, models resolved by modality."""
    from ambiguity.cli import main
    from ambiguity.stats.quadrant_tables import load_quadrants

    _store_with_predictions(store)
    args = ["--store", store.uri, "sample", "--per-quadrant", "3", "--modality", "text,audio", "--seed", "5",
            "--task", "s1", "--csv", str(tmp_path / "s1.csv"), "--label-studio", str(tmp_path / "s1.json")]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "24 items" in res.output
    t = load_task(store, "s1")
    assert t.items.height == 24 and set(t.counts()["n"].to_list()) == {3}
    assert dict(t.items.select("modality", "unimodal_model").unique().iter_rows()) == {"text": "rob", "audio": "hub"}
    assert set(t.items["fusion_model"]) == {"gated"}
    # each item's quadrant is the one load_quadrants gives for its modality's model
    for m, model in (("text", "rob"), ("audio", "hub")):
        q = dict(load_quadrants(store, model, "gated").select("segment_id", "quadrant").iter_rows())
        for r in t.items.filter(pl.col("modality") == m).iter_rows(named=True):
            assert q[r["segment_id"]] == r["quadrant"]
    assert (tmp_path / "s1.xml").exists() and pl.read_csv(tmp_path / "s1.csv").height == 24
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2 and "exists already" in again.output
    same = CliRunner().invoke(main, args + ["--replace"])
    assert same.exit_code == 0 and load_task(store, "s1").items.equals(t.items)  # same seed, same sample
    res = CliRunner().invoke(main, ["--store", store.uri, "sample", "--modality", "text", "--fusion", "nope", "--task", "s2"])
    assert res.exit_code == 2 and "no model 'nope'" in res.output
