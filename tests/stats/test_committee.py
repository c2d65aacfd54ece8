"""`ambiguity select` on a store with unlabelled segments: the committee is the trained models
(refitted with their stored configuration they reproduce the stored predictions), only
unlabelled segments are picked, and the picks become a task `ambiguity annotate serve` runs."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

pytest.importorskip("torch")  # the committee refits models: not in the bare environment

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from synth import synthetic, write_scalar_group, write_segments, write_vector_group  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from ambiguity import open_store
    from ambiguity.models.spec import TrainConfig
    from ambiguity.models.training import train

    store = open_store(tmp_path_factory.mktemp("committee") / "store")
    ids, labels, splits, info, noise = synthetic(n=160, seed=4)
    labels = [None if i % 8 == 0 else lab for i, lab in enumerate(labels)]  # 20 segments without a label
    write_segments(store, ids, labels, splits)
    write_vector_group(store, "text.syn", ids, info, modality="text")
    write_scalar_group(store, "noise", ids, noise, modality="audio")
    train(store, ["text.syn", "noise"], config=TrainConfig(epochs=3, seed=0, device="cpu"))
    return store, {i for i, lab in zip(ids, labels, strict=True) if lab is None}


def test_refitted_committee_reproduces_the_stored_predictions(trained):
    from ambiguity.stats.committee import UNLABELLED, committee_probs, members_from_store, with_unlabelled

    store, unlabelled = trained
    members = members_from_store(store)
    assert [m.name for m in members] == ["fusion", "noise", "text.syn"]
    ds, new = with_unlabelled(store, ["text.syn", "noise"])
    assert set(new) == unlabelled and (ds.split == UNLABELLED).sum() == len(unlabelled)
    probs = committee_probs(ds, members)
    stored = store.read("predictions", ["model", "segment_id", "probs"])
    for k, m in enumerate(members):
        want = {r["segment_id"]: r["probs"] for r in stored.filter(pl.col("model") == m.name).iter_rows(named=True)}
        rows = [i for i, s in enumerate(ds.segment_ids) if s in want]
        assert len(rows) == len(want)
        np.testing.assert_allclose(probs[k, rows], [want[ds.segment_ids[i]] for i in rows], atol=1e-5)


def test_select_cli_picks_unlabelled_and_saves_a_task(trained):
    from starlette.testclient import TestClient

    from ambiguity.annotate.app import create_app
    from ambiguity.annotate.tasks import load_task
    from ambiguity.cli import main

    store, unlabelled = trained
    r = CliRunner().invoke(main, ["--store", store.uri, "select", "--budget", "6", "--format", "json", "--task", "next"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output[r.output.index("["):])
    picked = [x["segment_id"] for x in rows]
    assert len(picked) == 6 and set(picked) <= unlabelled
    ve = [x["vote_entropy"] for x in rows]
    assert ve == sorted(ve, reverse=True)
    t = load_task(store, "next")
    assert t.items["segment_id"].to_list() == picked
    c = TestClient(create_app(store, "next"), base_url="http://127.0.0.1")
    assert c.post("/api/login", json={"name": "ann"}).status_code == 200 and c.get("/api/state").json()["total"] == 6
    rnd = CliRunner().invoke(main, ["--store", store.uri, "select", "--budget", "20", "--strategy", "random", "--format", "csv"])
    got = pl.read_csv(io.StringIO(rnd.output[rnd.output.index("rank,"):]))
    assert set(got["segment_id"].to_list()) == unlabelled  # a budget of all of them takes all of them


def test_select_without_a_committee_is_one_line(store):
    from ambiguity.cli import main

    ids, labels, splits, info, noise = synthetic(n=20, seed=1)
    write_segments(store, ids, labels, splits)
    r = CliRunner().invoke(main, ["--store", store.uri, "select", "--budget", "3"])
    assert r.exit_code == 2 and r.output.strip().startswith("error:") and r.output.strip().count("\n") == 0
    assert "ambiguity train" in r.output
