"""The explorer's API and its bad-input list: no predictions, a missing media file, a port in
use, bad selections; the actions write a task `ambiguity annotate serve` runs, and exports."""

from __future__ import annotations

import csv
import io
import json
import socket

import numpy as np
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from explore_data import CLASSES, make_store


def _client(store, **kw):
    from ambiguity.explore.app import create_app
    from ambiguity.explore.data import load

    return TestClient(create_app(load(store, **kw)), base_url="http://127.0.0.1")


def _all_rows(c, **params) -> list[dict]:
    """Every row of the table, in segment-id order (pages of 1,000 joined)."""
    rows, offset = [], 0
    while True:
        r = c.get("/api/table", params={"sort": "segment_id", "desc": "0", "offset": offset, "limit": 1000, **params}).json()
        rows += r["rows"]
        offset += 1000
        if offset >= r["total"]:
            return rows


def test_points_payload_matches_the_store(store):
    ids, labels, p, _ = make_store(store, 60)
    c = _client(store)
    d = c.get("/api/points").json()  # the summary: no rows
    assert d["n"] == 60 and "ids" not in d and d["problem"] is None
    assert [m["name"] for m in d["models"]] == ["audio.m", "text.m"] and d["fusion"] == "fusion" and d["scheme"] == "fixed"
    split = {r["segment_id"]: r["split"] for r in store.segments(["segment_id", "split"]).iter_rows(named=True)}
    rows = _all_rows(c, model="text.m")
    assert [r["segment_id"] for r in rows] == sorted(ids)
    for r in rows:
        s = r["segment_id"]
        if split[s] != "test":  # fixed scheme: train and val are in sample, so no number is shown for them
            assert r["p_unimodal"] is None and r["p_fusion"] is None and r["quadrant"] is None
            continue
        assert r["p_unimodal"] == pytest.approx(p["text.m"][s], abs=1e-4)
        assert r["p_fusion"] == pytest.approx(p["fusion"][s], abs=1e-4)
        assert r["quadrant"] == {(True, False): "red", (False, True): "green", (True, True): "blue", (False, False): "yellow"}[(p["text.m"][s] > 0.5, p["fusion"][s] > 0.5)]
    tests = [s for s in ids if split[s] == "test"]
    assert sum(d["counts"]["text.m"].values()) == len(tests) > 0  # the exact counts cover the test split only
    for s in ids:  # the segment page says why a train or val segment has no prediction
        seg = c.get(f"/api/segment/{s}").json()
        if split[s] == "test":
            assert len(seg["predictions"]) == 3 and seg["quadrants"]
        else:
            assert "in sample" in seg["predictions"]["error"] and "in sample" in seg["quadrants"]["error"]
    assert d["meta"]["planted"] == ["audio", "video"] and "speaker" in d["meta"]
    assert "disagreement" in d["missing"] and "--folds" in d["missing"]["disagreement"]
    assert "committee" in d["components"]


def test_crossfit_scheme_colours_by_modal_quadrant_and_scores_disagreement(store):
    ids, labels, p, _ = make_store(store, 40, repeats=3)

    def quad(pu, pf):
        return {(True, False): "red", (False, True): "green", (True, True): "blue", (False, False): "yellow"}[(pu > 0.5, pf > 0.5)]

    c = _client(store)  # auto: every model has repeats, so crossfit
    d = c.get("/api/points").json()
    assert d["scheme"] == "crossfit"
    rows = _all_rows(c, model="text.m")
    for r in rows:
        s = r["segment_id"]
        per = [quad(p[f"text.m#{k}"][s], p[f"fusion#{k}"][s]) for k in range(3)]
        top = max(per.count(q) for q in set(per))
        assert r["stability"] == pytest.approx(top / 3, abs=1e-3)  # share of repeats in the modal quadrant
        # disagreement: P(red or green) over repeats, the mean over both unimodal models
        both = [[quad(p[f"{u}#{k}"][s], p[f"fusion#{k}"][s]) in ("red", "green") for k in range(3)] for u in ("text.m", "audio.m")]
        assert r["c:disagreement"] == pytest.approx(np.mean([np.mean(b) for b in both]), abs=1e-3)
        if top >= 2:  # a unique mode
            assert r["quadrant"] == max(set(per), key=per.count)
    seg = c.get(f"/api/segment/{ids[0]}").json()
    rep = seg["quadrants"][0]["repeats"]
    assert set(rep) >= {"share_red", "share_green", "share_blue", "share_yellow", "stability"}
    assert len(seg["predictions"]) == 3  # the fixed row of each model, not one per repeat
    fixed = _client(store, scheme="fixed").get("/api/points").json()
    assert fixed["scheme"] == "fixed" and not fixed["models"][0]["stability"]


def test_store_without_predictions_says_what_to_run(store):
    make_store(store, 10, predictions=False)
    c = _client(store)
    d = c.get("/api/points").json()
    assert "ambiguity train" in d["problem"] and d["models"] == []
    # the table still lists the segments (no quadrant, no probabilities) and the scatter has nothing to draw
    rows = _all_rows(c)
    assert [r["segment_id"] for r in rows] == [f"seg{i:06d}" for i in range(10)] and all(r["quadrant"] is None for r in rows)
    assert c.get("/api/scatter").json()["n"] == 0
    seg = c.get("/api/segment/seg000003").json()  # the segment page still works
    assert seg["transcript"].startswith("Transcript of segment 3") and "ambiguity train" in seg["predictions"]["error"]
    assert c.get("/").status_code == 200


def test_missing_media_file_is_named_and_the_rest_works(store, tmp_path):
    gone = tmp_path / "moved-away.mp4"
    make_store(store, 8, media=[str(gone)] * 8)
    c = _client(store)
    seg = c.get("/api/segment/seg000002").json()
    assert seg["media"]["missing"] == [str(gone)] and seg["media"]["urls"] == {}
    assert seg["predictions"] and seg["quadrants"]
    r = c.get("/api/media/audio/seg000002")
    assert r.status_code == 404 and "moved-away.mp4" in r.json()["error"]


def test_unknown_host_refused(store):
    make_store(store, 4)
    from ambiguity.explore.app import create_app
    from ambiguity.explore.data import load

    c = TestClient(create_app(load(store)), base_url="http://evil.example")
    assert c.get("/api/points").status_code == 400


def test_add_selection_to_a_task_that_annotate_serves(store):
    from ambiguity.annotate.app import create_app as annotate_app
    from ambiguity.annotate.tasks import load_task

    ids, labels, p, _ = make_store(store, 40, repeats=2)  # cross-fitted: every segment has an out-of-sample quadrant
    c = _client(store)
    pick = sorted(ids)[:5]
    r = c.post("/api/task", json={"ids": pick, "task": "look", "modality": "audio", "model": "text.m"})
    assert r.status_code == 200 and r.json() == {"task": "look", "added": 5, "items": 5}
    again = c.post("/api/task", json={"ids": sorted(ids)[3:8], "task": "look", "modality": "audio", "model": "text.m"}).json()
    assert again == {"task": "look", "added": 3, "items": 8}  # items already in the task are kept once
    t = load_task(store, "look")
    assert t.items["item"].to_list() == [f"audio:{s}" for s in sorted(ids)[:8]]
    assert set(t.choices) == set(CLASSES)
    app = TestClient(annotate_app(store, "look"), base_url="http://127.0.0.1")
    assert app.post("/api/login", json={"name": "alice"}).status_code == 200
    state = app.get("/api/state").json()
    assert state["total"] == 8 and state["item"]["flag"] == "audio"


def test_export_csv_and_label_studio(store):
    ids, labels, p, _ = make_store(store, 20)
    c = _client(store)
    split = {r["segment_id"]: r["split"] for r in store.segments(["segment_id", "split"]).iter_rows(named=True)}
    pick = [s for s in sorted(ids) if split[s] == "test"][:4]  # the fixed scheme's quadrants: the test split
    assert len(pick) >= 2
    r = c.post("/api/export", json={"ids": pick, "format": "csv", "model": "audio.m"})
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [x["segment_id"] for x in rows] == pick
    assert all(abs(float(x["p_unimodal"]) - p["audio.m"][x["segment_id"]]) < 1e-9 for x in rows)
    ls = c.post("/api/export", json={"ids": pick, "format": "label-studio"}).json()
    assert [t["data"]["segment_id"] for t in ls] == pick and "quadrant" in ls[0]["meta"]


@pytest.mark.parametrize(("body", "status"), [
    ({"ids": []}, 400), ({"ids": "seg000001"}, 400), ({"ids": [1, 2]}, 400), ({"ids": ["../../etc/passwd"]}, 404),
    ({"ids": ["seg000001"], "format": "xlsx"}, 400),
])
def test_bad_selections(store, body, status):
    make_store(store, 5)
    c = _client(store)
    assert c.post("/api/export", json=body).status_code == status
    assert c.post("/api/export", content=json.dumps({"ids": ["seg000001"]}), headers={"Content-Type": "text/plain"}).status_code == 415
    assert c.post("/api/task", json={"ids": ["seg000001"], "task": "bad name!"}).status_code == 422


def test_port_in_use_is_one_line(store):
    make_store(store, 3)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        from ambiguity.cli import main

        res = CliRunner().invoke(main, ["--store", store.uri, "explore", "--port", str(port)])
    finally:
        busy.close()
    assert res.exit_code != 0
    err = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert err == [f"error: 127.0.0.1:{port} is already in use: pass --port N (another one)"]
    assert "Traceback" not in res.output
