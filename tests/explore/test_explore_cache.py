"""The explorer's stored data (explore/cache.py): reused while the predictions are unchanged,
recomputed when they change, and the reused document is the one a fresh computation gives."""

from __future__ import annotations

import numpy as np
import pytest

from explore_data import CLASSES, _probs, make_store


def _points(data) -> dict:
    """The summary and every row of the entry's points file (as the server queries it)."""
    return {"summary": data.page_summary(), "rows": data.points.table.to_pylist()}


def _x(doc: dict, model: str) -> list[float]:
    i = [m["name"] for m in doc["summary"]["models"]].index(model)
    return [r[f"m{i}.x"] for r in doc["rows"]]


def _forbid_compute(monkeypatch):
    """A reused entry must not compute quadrants or scores again."""
    import ambiguity.explore.compute as C

    def boom(*a, **k):
        raise AssertionError("recomputed although nothing changed")

    monkeypatch.setattr(C, "entry", boom)


def test_reused_when_nothing_changed(store, monkeypatch):
    from ambiguity.explore.data import load

    ids, _, p, _ = make_store(store, 50, split="test")
    first = load(store)
    assert not first.cached
    fresh = _points(first)
    with monkeypatch.context() as m:
        _forbid_compute(m)
        again = load(store)
        assert again.cached
        assert _points(again) == fresh  # the same summary and rows
        assert (again.folder / "points.arrow").read_bytes() == (first.folder / "points.arrow").read_bytes()
        # the lazy parts come back from the cache too: a segment page works
        assert again.quadrants["text.m"].height == first.quadrants["text.m"].height
        assert again.scores.frame.sort("segment_id").equals(first.scores.frame.sort("segment_id"))
        assert again.detail(ids[0])["score"] is not None
    # counts in the document are exact: the quadrants of text.m counted from the drawn probabilities
    want = {"red": 0, "green": 0, "blue": 0, "yellow": 0}
    for s in ids:
        want[{(True, False): "red", (False, True): "green", (True, True): "blue", (False, False): "yellow"}[(p["text.m"][s] > 0.5, p["fusion"][s] > 0.5)]] += 1
    assert fresh["summary"]["counts"]["text.m"] == want


def test_recomputed_when_predictions_change(store, monkeypatch):
    from ambiguity.explore.data import load
    from ambiguity.models.predictions import prediction_table, write_predictions

    ids, labels, p, _ = make_store(store, 40, split="test")
    before = _points(load(store))
    # new predictions of text.m: every segment's p(correct) is now 0.9
    write_predictions(store, prediction_table(
        model="text.m", kind="probe", arch="logistic", modalities=["text"], groups=[], segment_ids=ids,
        splits=store.segments(["segment_id", "split"]).sort("segment_id")["split"].to_list(), labels=labels, classes=CLASSES,
        probs=_probs(labels, np.full(len(ids), 0.9)),
    ))
    after = load(store)
    assert not after.cached
    doc = _points(after)
    x = _x(doc, "text.m")
    assert x == pytest.approx([0.9] * len(ids)) and x != _x(before, "text.m")
    # and that new entry is the one reused next
    with monkeypatch.context() as m:
        _forbid_compute(m)
        assert load(store).cached and _points(load(store)) == doc


def test_options_have_their_own_entry_and_no_cache_computes(store):
    from ambiguity.explore.data import load

    make_store(store, 30, split="test")
    assert not load(store).cached
    assert not load(store, threshold=0.7).cached  # another threshold: other quadrants
    assert load(store, threshold=0.7).cached
    assert not load(store, cache=False).cached


@pytest.mark.parametrize("table", ["tasks"])
def test_the_explorers_own_writes_keep_the_entry(store, table):
    """Adding a selection to a task (the explorer writes it) does not throw the entry away."""
    from starlette.testclient import TestClient

    from ambiguity.explore.app import create_app
    from ambiguity.explore.data import load

    ids, *_ = make_store(store, 30, split="test")
    c = TestClient(create_app(load(store)), base_url="http://127.0.0.1")
    assert c.post("/api/task", json={"ids": ids[:3], "task": "t1", "modality": "text"}).status_code == 200
    assert store.has_table(table) and load(store).cached


def test_steps_in_their_own_processes_give_the_same_entry(store, monkeypatch):
    """Above APART_ABOVE segments the quadrants and the scores are computed in spawned processes (lowered to 0
    here): the entry is the one computed in this process, and an error in a step arrives here as itself."""
    import ambiguity.explore.compute as C
    from ambiguity.errors import StatsError
    from ambiguity.explore.data import load

    make_store(store, 40, repeats=2)
    here = load(store, cache=False)
    monkeypatch.setattr(C, "APART_ABOVE", 0)
    import ambiguity.stats.quadrant_tables as QT
    import ambiguity.stats.score as SC

    def here_only(*a, **k):
        raise AssertionError("computed in this process")

    # broken in this process only: a spawned process imports its own (working) copies
    monkeypatch.setattr(QT, "load_quadrants", here_only)
    monkeypatch.setattr(SC, "ambiguity_scores", here_only)
    apart = load(store, cache=False)
    assert apart.folder != here.folder
    assert _points(apart) == _points(here)
    assert apart.scores.frame.equals(here.scores.frame) and apart.quadrants["text.m"].equals(here.quadrants["text.m"])
    with pytest.raises(StatsError, match="unknown score component 'nope'"):  # raised in the scores' process
        load(store, cache=False, weights={"nope": 1})
