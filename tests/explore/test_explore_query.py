"""Filters, counts, sorting, paging, the density grid and hover's nearest point, answered by the server
(explore/points.py), each checked against a from-the-definition implementation written here in plain
Python over the probabilities the store was built with."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from starlette.testclient import TestClient

from explore_data import make_store

QUADRANTS = ["red", "green", "blue", "yellow"]  # the page's order (constants.QUADRANTS)
N = 300


def _quadrant(pu: float, pf: float) -> str:
    # the definition (paper, Figure 2): right means p(correct) > 0.5
    return {(True, False): "red", (False, True): "green", (True, True): "blue", (False, False): "yellow"}[(pu > 0.5, pf > 0.5)]


@pytest.fixture
def world(store):
    """A fixed-scheme store (random splits: only test segments have a quadrant) and its rows by definition."""
    from ambiguity.explore.app import create_app
    from ambiguity.explore.data import load
    from ambiguity.stats.score import ambiguity_scores

    ids, labels, p, _ = make_store(store, N)
    segs = store.segments(["segment_id", "split", "metadata"])
    split = dict(zip(segs["segment_id"], segs["split"], strict=True))
    meta = {s: json.loads(m) for s, m in zip(segs["segment_id"], segs["metadata"], strict=True)}
    sc = ambiguity_scores(store).frame  # the score of stats.score, the component the table shows next to its filters
    score = {s: (None if v is None or v != v else v) for s, v in zip(sc["segment_id"], sc["score"], strict=True)}
    rows = {}
    for i, s in enumerate(ids):
        r = {"segment_id": s, "label": labels[i], "split": split[s], "score": score.get(s), "meta": meta[s]}
        for m in ("text.m", "audio.m"):
            held_out = split[s] == "test"  # the fixed scheme shows the test split only
            # probabilities are stored as float32 (models.predictions), so the server holds those values
            pu, pf = (float(np.float32(p[m][s])), float(np.float32(p["fusion"][s]))) if held_out else (None, None)
            r[m] = {"x": pu, "y": pf, "q": _quadrant(pu, pf) if held_out else None}
        rows[s] = r
    client = TestClient(create_app(load(store)), base_url="http://127.0.0.1")
    return client, rows


def _matches(r: dict, f: dict) -> bool:
    """The page's filters, from their definition."""
    m = r[f["model"]]
    if f.get("q") and m["q"] not in f["q"].split(","):
        return False
    if f.get("label") and r["label"] != f["label"]:
        return False
    if f.get("split") and r["split"] != f["split"]:
        return False
    if f.get("metaval") and str(r["meta"].get(f["metacol"])) != f["metaval"]:
        return False
    for bound, ok in (("smin", lambda v, b: v >= b), ("smax", lambda v, b: v <= b)):
        if f.get(bound) is not None and (r["score"] is None or not ok(r["score"], f[bound])):
            return False
    if f.get("box"):
        x0, x1, y0, y1 = f["box"]
        if m["x"] is None or not (x0 <= m["x"] <= x1 and y0 <= m["y"] <= y1):
            return False
    return True


def _key(r: dict, f: dict, col: str):
    """Sort key of a row; None is missing (last whichever the direction)."""
    m = r[f["model"]]
    if col == "quadrant":
        return None if m["q"] is None else QUADRANTS.index(m["q"])
    if col == "label":
        return ["empathetic", "neutral"].index(r["label"])
    return {"p_unimodal": m["x"], "p_fusion": m["y"], "score": r["score"]}[col]


def _reference(rows: dict, f: dict, sort: str, desc: bool) -> list[str]:
    hit = sorted(s for s, r in rows.items() if _matches(r, f))
    if sort == "segment_id":
        return hit[::-1] if desc else hit
    have = [s for s in hit if _key(rows[s], f, sort) is not None]
    have.sort(key=lambda s: (-_key(rows[s], f, sort) if desc else _key(rows[s], f, sort), s))
    return have + [s for s in hit if _key(rows[s], f, sort) is None]


def _params(f: dict, **extra) -> dict:
    out = {k: v for k, v in f.items() if v not in (None, "") and k != "box"}
    if f.get("box"):
        out["box"] = ",".join(map(str, f["box"]))
    return out | extra


def test_filters_counts_sorting_and_paging_match_the_definition(world):
    client, rows = world
    rng = np.random.default_rng(7)
    for trial in range(60):
        f = {"model": str(rng.choice(["text.m", "audio.m"]))}
        if rng.random() < 0.5:
            f["q"] = ",".join(rng.choice(QUADRANTS, size=int(rng.integers(1, 3)), replace=False))
        if rng.random() < 0.4:
            f["label"] = str(rng.choice(["empathetic", "neutral"]))
        if rng.random() < 0.4:
            f["split"] = str(rng.choice(["train", "val", "test"]))
        if rng.random() < 0.4:
            f["metacol"] = "speaker"
            f["metaval"] = str(rng.choice(["sp0", "sp1", "sp2"]))
        if rng.random() < 0.5:  # bounds on a segment's own score half the time: the ends are inside
            have = sorted(r["score"] for r in rows.values() if r["score"] is not None)
            lo, hi = sorted(float(v) for v in rng.choice(have, 2, replace=False))
            if rng.random() < 0.5:
                lo, hi = float(np.round(rng.uniform(0, 0.6), 2)), float(np.round(rng.uniform(0.6, 1), 2))
            f["smin"], f["smax"] = lo, hi
        if rng.random() < 0.2:
            f["box"] = (0.2, 0.8, 0.1, 0.7)
        sort = str(rng.choice(["score", "p_unimodal", "p_fusion", "quadrant", "label", "segment_id"]))
        desc = bool(rng.random() < 0.5)
        want = _reference(rows, f, sort, desc)
        limit = int(rng.choice([7, 25, 50]))
        got = []
        offset = 0
        while True:  # every page, in turn: together they are the sorted filtered rows
            r = client.get("/api/table", params=_params(f, sort=sort, desc="1" if desc else "0", offset=offset, limit=limit))
            assert r.status_code == 200, r.text
            d = r.json()
            assert d["total"] == len(want), (trial, f)
            assert len(d["rows"]) <= limit
            got += [x["segment_id"] for x in d["rows"]]
            offset += limit
            if offset >= d["total"]:
                break
        assert got == want, (trial, f, sort, desc)
        # exact quadrant counts of what is shown
        counts = {q: sum(rows[s][f["model"]]["q"] == q for s in want) for q in QUADRANTS}
        assert d["counts"] == counts, (trial, f)


def test_scatter_points_density_and_nearest_match_the_definition(world, monkeypatch):
    import ambiguity.explore.points as P

    client, rows = world
    drawn = sorted(s for s, r in rows.items() if r["text.m"]["q"] == "red")
    d = client.get("/api/scatter", params={"model": "text.m", "q": "red"}).json()
    assert d["mode"] == "points" and d["ids"] == drawn and d["n"] == len(drawn)
    assert d["x"] == [round(rows[s]["text.m"]["x"], 3) for s in drawn]
    assert [QUADRANTS[q] for q in d["q"]] == ["red"] * len(drawn)

    monkeypatch.setattr(P, "DENSE_ABOVE", 10)  # above it: a density grid, never the points
    w, h = 40, 30
    r = client.get("/api/scatter", params={"model": "audio.m", "w": w, "h": h})
    assert r.headers["content-type"] == "application/octet-stream" and r.headers["x-grid"] == f"{w},{h}"
    total = np.frombuffer(r.content[: 4 * w * h], dtype="<u4")
    best = np.frombuffer(r.content[4 * w * h:], dtype=np.uint8)
    cells: dict[int, list[int]] = {}
    for row in rows.values():  # the binning by definition: column floor(x * w), row floor((1 - y) * h) from the top
        m = row["audio.m"]
        if m["q"] is None:
            continue
        cell = min(h - 1, int((1 - m["y"]) * h)) * w + min(w - 1, int(m["x"] * w))
        cells.setdefault(cell, [0, 0, 0, 0])[QUADRANTS.index(m["q"])] += 1
    want_total = np.zeros(w * h, dtype=np.uint32)
    for cell, c in cells.items():
        want_total[cell] = sum(c)
        assert best[cell] == int(np.argmax(c))  # the quadrant with most points (ties: the first)
    assert np.array_equal(total, want_total) and int(r.headers["x-drawn"]) == int(want_total.sum())

    # hover in the density: the nearest shown point within the radii, or none
    for x, y, rx, ry in [(0.3, 0.6, 0.05, 0.05), (0.9, 0.1, 0.02, 0.03), (0.5, 0.5, 0.001, 0.001), (0.1, 0.9, 0.2, 0.2)]:
        best_s, best_d = None, 1.0
        for s in sorted(rows):
            m = rows[s]["audio.m"]
            if m["q"] is None:
                continue
            dd = ((m["x"] - x) / rx) ** 2 + ((m["y"] - y) / ry) ** 2
            if dd <= best_d and (best_s is None or dd < best_d):
                best_s, best_d = s, dd
        got = client.get("/api/nearest", params={"model": "audio.m", "x": x, "y": y, "rx": rx, "ry": ry}).json()
        assert got["segment_id"] == best_s, (x, y)
        if best_s:
            assert got["transcript"].startswith("Transcript of segment") and got["quadrant"] == rows[best_s]["audio.m"]["q"]


def test_actions_take_the_filters_instead_of_ids(world):
    client, rows = world
    f = {"model": "text.m", "q": "blue", "metacol": "speaker", "metaval": "sp1"}
    want = sorted(s for s, r in rows.items() if _matches(r, f))
    from urllib.parse import urlencode

    r = client.post("/api/export", json={"query": urlencode(f), "format": "csv", "model": "text.m"})
    assert r.status_code == 200, r.text
    got = [x["segment_id"] for x in csv.DictReader(io.StringIO(r.text))]
    assert sorted(got) == want and want
    assert client.post("/api/export", json={"query": "model=text.m&label=nobody", "format": "csv"}).status_code == 400


@pytest.mark.parametrize(("path", "needle"), [
    ("/api/table?model=nope", "no unimodal model 'nope'"), ("/api/table?smin=abc", "smin must be a number"),
    ("/api/table?limit=100000", "limit between 0 and"), ("/api/table?offset=x", "integers"),
    ("/api/scatter?w=0", "w and h must be between"), ("/api/nearest?x=1", "numbers"), ("/api/table?box=1,2", "box must be four numbers"),
])
def test_bad_queries_are_one_line(world, path, needle):
    client, _ = world
    r = client.get(path)
    assert r.status_code == 400 and needle in r.json()["error"]
