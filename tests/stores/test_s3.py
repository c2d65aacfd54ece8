"""The store on object storage, for real: a local S3 server (moto's server mode on 127.0.0.1,
started by tests/conftest.py) holds it, and the user's commands run against ``s3://``.

Covered: ingest, extract (a spawned worker pool), status, features, predictions import,
quadrants, compact, and an extract SIGKILLed mid-run that resumes without losing or
duplicating a row. Each result is compared with the same run on a local directory, and the
objects are listed straight from the server with boto3 (not through lance).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from ambiguity import open_store
from ambiguity.cli import main
from ambiguity.extractors.prosody import Prosody
from ambiguity.extractors.runner import run
from ambiguity.segments import load_manifest
from trace_kill import TRACED, kill_after_mark

N = 8
LABELS = ["1", "0"] * (N // 2)
# P(class "1") per segment: unimodal "text" and "fusion". Right means p(correct label) > 0.5.
P_TEXT = [0.9, 0.2, 0.3, 0.6, 0.8, 0.7, 0.4, 0.1]
P_FUSION = [0.2, 0.3, 0.8, 0.9, 0.7, 0.4, 0.3, 0.6]


def manifest(tmp_path, speech_dir):
    path = tmp_path / "m.csv"
    rows = [f"s{i},{speech_dir / f'{i:02d}.wav'},{LABELS[i]},test" for i in range(N)]
    path.write_text("segment_id,media,label,split\n" + "\n".join(rows) + "\n")
    return path


def cli(*args, env=None):
    r = CliRunner().invoke(main, list(args), env=env)
    assert r.exit_code == 0, r.output
    return r.output


def by_definition(label: str, p1_uni: float, p1_fus: float) -> str:
    """The quadrant from the paper's definition, written out here (independent of assign_quadrants)."""
    right_u = (p1_uni if label == "1" else 1 - p1_uni) > 0.5
    right_f = (p1_fus if label == "1" else 1 - p1_fus) > 0.5
    return {(True, False): "red", (False, True): "green", (True, True): "blue", (False, False): "yellow"}[(right_u, right_f)]


def test_store_on_s3_end_to_end(tmp_path, speech_dir, s3_bucket, s3_keys):
    uri = f"s3://{s3_bucket}/project/store"
    man = manifest(tmp_path, speech_dir)
    assert "ingested 8 segments (test 8)" in cli("--store", uri, "ingest", str(man))
    out = cli("--store", uri, "extract", "--extractor", "prosody", "--workers", "2", "--batch-size", "2", "--quiet")
    assert "8 ok" in out, out
    assert "prosody" in cli("--store", uri, "status")
    keys = s3_keys(s3_bucket, "project/store/")
    assert any(k.startswith("project/store/features.prosody.lance/data/") for k in keys), keys[:5]
    assert any(k.startswith("project/store/segments.lance/_versions/") for k in keys)

    # the same features as a local store computes
    local = open_store(tmp_path / "local")
    local.upsert_segments(load_manifest(man))
    run(local, Prosody(), workers=1, batch_size=2, progress=False)
    a = local.features("prosody").sort("segment_id")
    cli("--store", uri, "features", "prosody", "--out", str(tmp_path / "p.parquet"))
    b = pl.read_parquet(tmp_path / "p.parquet").sort("segment_id")
    assert a["segment_id"].to_list() == b["segment_id"].to_list() == [f"s{i}" for i in range(N)]
    cols = [c for c in a.columns if c not in ("segment_id", "status", "error")]
    np.testing.assert_allclose(b.select(cols).to_numpy(), a.select(cols).to_numpy(), rtol=0, atol=1e-6)

    # predictions and quadrants
    preds = tmp_path / "preds.csv"
    lines = ["segment_id,model,modalities,p_0,p_1"]
    for model, mods, ps in (("text.x", "text", P_TEXT), ("fusion", "text+audio", P_FUSION)):
        lines += [f"s{i},{model},{mods},{1 - p:.2f},{p:.2f}" for i, p in enumerate(ps)]
    preds.write_text("\n".join(lines) + "\n")
    cli("--store", uri, "predictions", "import", str(preds))
    got = cli("--store", uri, "quadrants", "--unimodal", "text", "--bootstrap", "20", "--format", "json")
    import json

    counts = {r["quadrant"]: r["n"] for r in json.loads(got)["quadrants text.x vs fusion"]}
    want = {q: 0 for q in ("red", "green", "blue", "yellow")}
    for i in range(N):
        want[by_definition(LABELS[i], P_TEXT[i], P_FUSION[i])] += 1
    assert counts == want and min(want.values()) >= 1

    # compaction on the object store: fewer fragments, same rows, old versions still readable data
    store = open_store(uri)
    before = len(store._open("features.prosody").get_fragments())
    assert before >= 2  # four batches of two segments
    frags = store.compact(["features.prosody"])
    assert frags["features.prosody"] < before
    c = store.features("prosody").sort("segment_id")
    np.testing.assert_allclose(c.select(cols).to_numpy(), a.select(cols).to_numpy(), rtol=0, atol=1e-6)


def test_open_store_on_s3_needs_no_local_folder(tmp_path, s3_bucket, s3_keys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = open_store(f"s3://{s3_bucket}/s")
    assert store.table_names() == []
    assert list(tmp_path.iterdir()) == []  # nothing was created locally for an s3:// store
    assert s3_keys(s3_bucket) == []


def _extract_cmd(uri: str) -> list[str]:
    return [sys.executable, "-m", "ambiguity.cli", "--store", uri, "extract", "--extractor", "prosody",
            "--batch-size", "2", "--workers", "1", "--quiet"]


# (write #, delay): #1 lands inside the group table's creation (data objects, no version yet),
# #2 inside a later batch's commit.
@pytest.mark.parametrize(("kill_at", "delay"), [(1, 0.03), (2, 0.01)])
def test_extract_on_s3_resumes_after_sigkill(tmp_path, speech_dir, s3_bucket, s3_env, kill_at, delay):
    uri = f"s3://{s3_bucket}/store"
    man = manifest(tmp_path, speech_dir)
    store = open_store(uri)
    store.upsert_segments(load_manifest(man))
    env = {**os.environ, **s3_env}
    traced = [sys.executable, *TRACED, *_extract_cmd(uri)[3:]]  # the phase marks on stderr (tests/trace_kill.py)
    proc = subprocess.Popen(traced, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    assert kill_after_mark(proc, "write", kill_at, delay, timeout_s=120), f"the run ended before write #{kill_at}"
    st = open_store(uri).group_status("prosody")  # an empty frame if the group was never committed
    assert st.height < N and st["segment_id"].n_unique() == st.height  # partial, no duplicate
    done_before = st.height
    rerun = subprocess.run(_extract_cmd(uri), capture_output=True, text=True, env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{done_before} already done" in rerun.stdout, rerun.stdout
    st = open_store(uri).group_status("prosody")
    assert sorted(st["segment_id"].to_list()) == sorted(f"s{i}" for i in range(N))
    assert (st["status"] == "ok").all()
