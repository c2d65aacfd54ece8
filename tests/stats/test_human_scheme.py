"""People through the model machinery (issue 26 item 2): the CREMA-D vote counts imported as the predictors
human:audio, human:video and human:all (scheme human) go through load_quadrants, Tables 1-2, compare and the CLI,
and the numbers equal a count from the definition on the CSV's own rows (right: the gold label alone has the most
votes; a tie is not right). The human scheme is never mixed with the model schemes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from ambiguity.cli import main
from ambiguity.errors import StatsError
from ambiguity.stores.lance import FeatureStore

ROOT = Path(__file__).resolve().parents[2]
CREMA = ROOT / "examples" / "data" / "crema-d" / "tabulatedVotes.csv"
CLASSES = ("A", "D", "F", "H", "N", "S")
GOLD = {"ANG": "A", "DIS": "D", "FEA": "F", "HAP": "H", "NEU": "N", "SAD": "S"}
MODALITY = {"1": "audio", "2": "video", "3": "all"}  # CREMA-D's row id: 1 voice, 2 face, 3 audio-visual


@pytest.fixture(scope="module")
def reference():
    """From the definition on the CSV rows: per (item, modality) whether gold alone leads, and the plurality
    label (None on a tie)."""
    right, plural = {}, {}
    with open(CREMA, newline="") as f:
        for r in csv.DictReader(f):
            counts = {k: int(r[k]) for k in CLASSES}
            gold = GOLD[r["fileName"].split("_")[2]]
            key = (r["fileName"], MODALITY[r[""][0]])
            right[key] = all(counts[gold] > v for k, v in counts.items() if k != gold)
            top = max(counts.values())
            leaders = [k for k, v in counts.items() if v == top]
            plural[key] = leaders[0] if len(leaders) == 1 else None
    return right, plural


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """The CREMA-D tables imported as a user would: `ambiguity annotations import --preset crema-d`."""
    path = str(tmp_path_factory.mktemp("crema") / "store")
    FeatureStore(path)
    res = CliRunner().invoke(main, ["--store", path, "annotations", "import", str(CREMA), "--preset", "crema-d"])
    assert res.exit_code == 0, res.output
    return FeatureStore(path)


def _quadrant(u: bool, f: bool) -> str:
    return "red" if u and not f else "green" if f and not u else "blue" if u else "yellow"


@pytest.mark.parametrize("modality", ["audio", "video"])
def test_human_quadrants_from_the_model_machinery_match_the_definition(store, reference, modality):
    from ambiguity.stats.quadrant_tables import load_quadrants

    right, _ = reference
    q = load_quadrants(store, f"human:{modality}", "human:all", scheme="human")
    items = sorted({i for i, _ in right})
    want = {i: _quadrant(right[(i, modality)], right[(i, "all")]) for i in items}
    assert q.height == len(items) == 4901
    assert dict(zip(q["segment_id"].to_list(), q["quadrant"].to_list(), strict=True)) == want
    assert set(q["scheme"].to_list()) == {"human"}
    # auto takes the human scheme when every predictor is human
    assert load_quadrants(store, f"human:{modality}", "human:all").equals(q)


def test_model_machinery_equals_stats_crowd_human_quadrants(store):
    # the two paths to the human quadrants (stats.crowd from the votes, stats.quadrant_tables from the predictors)
    from ambiguity.annotate.human import analyse_store
    from ambiguity.stats.quadrant_tables import quadrants

    crowd = analyse_store(store, n_boot=10).quadrant_counts
    for m in ("audio", "video"):
        got = quadrants(store, f"human:{m}", "human:all", scheme="human").counts
        assert got == {r["quadrant"]: r["items"] for r in crowd.filter(pl.col("modality") == m).iter_rows(named=True)}


def test_tables_1_and_2_on_people_match_the_definition(store, reference):
    from ambiguity.stats.quadrant_tables import table1, table2

    right, plural = reference
    items = sorted({i for i, _ in right})
    t1 = {r["model"]: r for r in table1(store, scheme="human").iter_rows(named=True)}
    assert set(t1) == {"human:audio", "human:video", "human:all"}  # people only: no model joins them
    for m in ("audio", "video", "all"):
        assert t1[f"human:{m}"]["n"] == 4901
        assert t1[f"human:{m}"]["accuracy"] == pytest.approx(np.mean([right[(i, m)] for i in items]), abs=1e-12)
    t2 = table2(store, ["human:audio", "human:all"], scheme="human", n_boot=50)
    both = [i for i in items if plural[(i, "audio")] is not None and plural[(i, "all")] is not None]
    rate = np.mean([plural[(i, "audio")] != plural[(i, "all")] for i in both])
    row = t2.to_polars().row(0, named=True)
    assert (row["n"], row["rate"]) == (len(both), pytest.approx(rate, abs=1e-12))


def test_compare_runs_on_human_quadrants(store, reference):
    # a feature group on the label-only segments (the actor's age from the demographics), compared between the
    # human quadrants: the group sizes are the definition's quadrant counts
    from ambiguity.stats.comparisons import compare_quadrants

    right, _ = reference
    segs = store.segments(["segment_id", "metadata"])
    age = [float(json.loads(m)["age"]) for m in segs["metadata"].to_list()]
    tbl = pl.DataFrame({"segment_id": segs["segment_id"], "age": age, "status": "ok", "error": None},
                       schema_overrides={"error": pl.String}).to_arrow()
    store.write_features("demo_age", tbl, tbl.schema, {"extractor": "t", "extractor_version": "1", "params": {}, "config_key": "k"})
    res = compare_quadrants(store, "human:audio", "human:all", "demo_age", [("red", "blue")], scheme="human")
    items = sorted({i for i, _ in right})
    qs = [_quadrant(right[(i, "audio")], right[(i, "all")]) for i in items]
    row = res[("red", "blue")].table.row(0, named=True)
    assert (row["n_a"], row["n_b"]) == (qs.count("red"), qs.count("blue"))
    assert "people, not models" in " ".join(res.notes)

    out = CliRunner().invoke(main, ["--store", store.uri, "compare", "demo_age", "--unimodal", "human:audio",
                                    "--scheme", "human", "--pair", "red:blue"])
    assert out.exit_code == 0, out.output
    assert "people, not models" in out.output


def test_cli_quadrants_scheme_human(store, reference):
    right, _ = reference
    res = CliRunner().invoke(main, ["--store", store.uri, "quadrants", "--scheme", "human", "--format", "csv"])
    assert res.exit_code == 0, res.output
    items = sorted({i for i, _ in right})
    for m in ("audio", "video"):  # human:all is the fusion by default under --scheme human
        qs = [_quadrant(right[(i, m)], right[(i, "all")]) for i in items]
        block = res.output.split(f"quadrants human:{m} vs human:all")[1].strip().split("\n\n")[0]
        got = {r["quadrant"]: int(r["n"]) for r in csv.DictReader(block.splitlines())}
        assert got == {q: qs.count(q) for q in ("red", "green", "blue", "yellow")}
    md = CliRunner().invoke(main, ["--store", store.uri, "quadrants", "--scheme", "human"])
    assert md.exit_code == 0 and "people, not models" in md.output



def test_people_and_models_are_never_mixed(tmp_path):
    # a store with cross-fitted models and human votes: models read as models, people as people, a mix refused
    from tests.annotate.test_judgments import _store_with_both

    from ambiguity.models.predictions import model_summary
    from ambiguity.stats.quadrant_tables import load_quadrants, table1, unimodal_models
    from ambiguity.stats.stability import resolve_scheme

    s = _store_with_both(tmp_path, planted=False, n=40)
    assert unimodal_models(s) == ["audio_probe"] and unimodal_models(s, human=True) == ["human:audio"]
    assert set(table1(s)["model"].to_list()) == {"audio_probe", "fusion"}
    assert set(table1(s, scheme="human")["model"].to_list()) == {"human:audio", "human:all"}
    assert set(load_quadrants(s, "audio_probe", "fusion")["scheme"].to_list()) == {"crossfit"}
    with pytest.raises(StatsError, match="cannot be mixed.*people, not models"):
        load_quadrants(s, "human:audio", "fusion")
    with pytest.raises(StatsError, match="no human judgments for audio_probe, fusion"):
        load_quadrants(s, "audio_probe", "fusion", scheme="human")
    with pytest.raises(StatsError, match="no fixed-split predictions for human:audio"):
        load_quadrants(s, "human:audio", "human:all", scheme="fixed")
    # readers of model predictions only (attribution, conflicts) do not take the human scheme
    with pytest.raises(StatsError, match="scheme 'human'"):
        resolve_scheme(model_summary(s), ["human:audio"], "human")


def test_explorer_on_the_human_scheme(store, reference):
    # the explorer's points document on people: human:all is the fusion, its exact counts are the definition's
    from ambiguity.explore.data import load

    right, _ = reference
    data = load(store, scheme="human", cache=False)
    assert (data.scheme, data.fusion, data.unimodal) == ("human", "human:all", ["human:audio", "human:video"])
    doc = json.loads(data.payload())
    items = sorted({i for i, _ in right})
    for m in ("audio", "video"):
        qs = [_quadrant(right[(i, m)], right[(i, "all")]) for i in items]
        assert doc["counts"][f"human:{m}"] == {q: qs.count(q) for q in ("red", "green", "blue", "yellow")}
    seg = data.detail(items[0])
    assert {p["model"] for p in seg["predictions"]} == {"human:audio", "human:video", "human:all"}
    assert {q["scheme"] for q in seg["quadrants"]} == {"human"}
