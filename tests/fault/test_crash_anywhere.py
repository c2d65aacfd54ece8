"""SIGKILL `ambiguity extract` at 10 points (processing, batch writes, compaction), rerun, compare.

The runner marks its phases on stderr when AMBIGUITY_TRACE=1; the harness kills the
process a random few milliseconds after the chosen marker, so kills land inside
decoding/extraction, inside a Lance commit, and inside compaction.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from ambiguity import open_store
from ambiguity.extractors.prosody import Prosody
from ambiguity.extractors.runner import run
from ambiguity.segments import load_manifest
from ambiguity.stores import schema as S

N_SEGMENTS = 8
ENV = {**os.environ, "AMBIGUITY_TRACE": "1", "AMBIGUITY_COMPACT_AFTER": "3"}
# (phase, occurrence): 8 segments in batches of 2 -> 4 "process" and 4 "write" marks, 1 "compact".
PLANS = [("process", 1), ("write", 1), ("write", 2), ("process", 3), ("write", 3),
         ("compact", 1), ("write", 4), ("process", 2), ("compact", 1), ("write", 2)]


@pytest.fixture(scope="module")
def seeded_store(tmp_path_factory, bad):
    base = tmp_path_factory.mktemp("crash")
    man = base / "m.csv"
    rows = [f"t{i},{bad['two_hours']},{60 * i},{60 * i + 1.5}" for i in range(N_SEGMENTS)]
    man.write_text("segment_id,media,start_s,end_s\n" + "\n".join(rows) + "\n")
    ref = open_store(base / "ref")
    ref.upsert_segments(load_manifest(man))
    fresh = base / "fresh"
    shutil.copytree(base / "ref", fresh)
    run(ref, Prosody(), workers=1, batch_size=2, progress=False)
    return fresh, ref.features("prosody").sort("segment_id").drop("status", "error")


def kill_at(store_dir, phase: str, occurrence: int, jitter_s: float) -> bool:
    cmd = [sys.executable, "-m", "ambiguity.cli.__main__", "--store", str(store_dir), "extract",
           "--extractor", "prosody", "--batch-size", "2", "--workers", "1", "--quiet"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=ENV)
    seen = 0
    deadline = time.time() + 90
    for line in proc.stderr:
        if line.strip() == f"trace {phase}":
            seen += 1
            if seen == occurrence:
                time.sleep(jitter_s)
                proc.send_signal(signal.SIGKILL)
                break
        if time.time() > deadline:
            break
    proc.wait()
    return proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("k", range(len(PLANS)))
def test_kill_then_rerun_loses_nothing(seeded_store, tmp_path, k):
    fresh, reference = seeded_store
    phase, occurrence = PLANS[k]
    store_dir = tmp_path / "store"
    shutil.copytree(fresh, store_dir)
    rng = random.Random(k)
    killed = kill_at(store_dir, phase, occurrence, rng.uniform(0, 0.02))
    assert killed, f"the run ended before reaching {phase} #{occurrence}"
    store = open_store(store_dir)  # the store opens after any kill
    if store.has_group("prosody"):
        st = store.group_status("prosody")
        assert st["segment_id"].n_unique() == st.height  # never a duplicate row
    run(store, Prosody(), workers=1, batch_size=2, progress=False)
    st = store.group_status("prosody")
    assert st.height == N_SEGMENTS and st["segment_id"].n_unique() == N_SEGMENTS
    assert (st["status"] == "ok").all()
    got = store.features("prosody").sort("segment_id").drop("status", "error")
    assert got.equals(reference)
    assert store.version(S.table_name("prosody")) >= 1
