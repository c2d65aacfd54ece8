"""SIGKILL `ambiguity extract` at 10 distinct points, rerun, compare with an uninterrupted run.

The runner marks its phases (audit events, printed by tests/trace_kill.py); the harness kills the
process a random few milliseconds after the chosen marker: after planning, inside
extraction, inside the first write (table creation), inside later upserts, right after a
commit, inside compaction. One point is shown to be INSIDE a Lance commit: the harness
watches the table's folder and freezes the process (SIGSTOP) the moment a new data file
exists while no new manifest does -- the commit has begun and not finished -- checks that
on disk while the process cannot move, and only then kills it.
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
from ambiguity.stores import schema as S
from trace_kill import TRACED, kill_after_mark

N_SEGMENTS = 8
# (phase, occurrence): 8 segments in batches of 2 -> 4 "process", 4 "write" and 4 "written"
# marks, 1 "compact"; "in-commit" is the frozen-inside-a-commit point (see kill_in_commit).
PLANS = [("planned", 1), ("process", 1), ("write", 1), ("write", 2), ("written", 2),
         ("process", 3), ("write", 3), ("process", 4), ("compact", 1), ("in-commit", 1)]
assert len(set(PLANS)) == 10


@pytest.fixture(scope="module")
def seeded_store(seed_prosody):
    return seed_prosody(N_SEGMENTS, batch_size=2)


CMD = [*TRACED, "--compact-after", "3", "extract", "--extractor", "prosody", "--batch-size", "2", "--workers", "1",
       "--quiet"]


def _start(store_dir):
    cmd = [sys.executable, *CMD[:3], "--store", str(store_dir), *CMD[3:]]
    return subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)


def _files(folder) -> set[str]:
    try:
        return set(os.listdir(folder))
    except FileNotFoundError:
        return set()


def kill_in_commit(store_dir) -> bool:
    """Freeze the run inside an upsert's Lance commit (data file written, manifest not), then kill.

    True when the kill was shown to land inside the commit. Tries the upserts of writes 2-4
    (write 1 creates the table); each is watched from its "trace write" mark on.
    """
    table = store_dir / f"{S.table_name('prosody')}.lance"
    proc = _start(store_dir)
    writes = 0
    try:
        for line in proc.stderr:
            if line.strip() != "trace write":
                continue
            writes += 1
            if writes < 2:
                continue
            data0, versions0 = _files(table / "data"), _files(table / "_versions")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and proc.poll() is None:
                if _files(table / "data") - data0:
                    os.kill(proc.pid, signal.SIGSTOP)  # frozen: nothing moves on disk now
                    new_versions = _files(table / "_versions") - versions0
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    if not new_versions:
                        return True
                    break  # too late: the manifest was there already; try the next write
                if _files(table / "_versions") - versions0:
                    break  # the commit finished between two looks; try the next write
            if writes >= 4 or proc.poll() is not None:
                return False
        return False
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def kill_at(store_dir, phase: str, occurrence: int, jitter_s: float) -> bool:
    return kill_after_mark(_start(store_dir), phase, occurrence, jitter_s, timeout_s=90)


@pytest.mark.parametrize("k", range(len(PLANS)))
def test_kill_then_rerun_loses_nothing(seeded_store, tmp_path, k):
    fresh, reference = seeded_store
    phase, occurrence = PLANS[k]
    store_dir = tmp_path / "store"
    shutil.copytree(fresh, store_dir)
    rng = random.Random(k)
    if phase == "in-commit":
        killed = False
        for _ in range(5):  # the window is milliseconds; a fresh copy for each try
            shutil.rmtree(store_dir)
            shutil.copytree(fresh, store_dir)
            if kill_in_commit(store_dir):
                killed = True
                break
        assert killed, "never caught a commit between its data file and its manifest in 5 runs"
    else:
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
