"""Two `extract` processes on one store: different groups both finish; the same group ends without
duplicates or lost rows (Lance commits are atomic; conflicting upserts are retried). The same-group
test shows the two writers' commits interleaved in time (each writer logs its commits with its pid)
and the values equal to those of a single writer."""

from __future__ import annotations

import subprocess
import sys

from ambiguity import open_store
from ambiguity.segments import load_manifest
from trace_kill import TRACED


def start(store_dir, extractor, group=None, phases=None):
    head = [*TRACED, "--phases", str(phases)] if phases else ["-m", "ambiguity.cli.__main__"]
    cmd = [sys.executable, *head, "--store", str(store_dir), "extract",
           "--extractor", extractor, "--batch-size", "1", "--workers", "1", "--quiet"]
    if group:
        cmd += ["--group", group]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def seeded(tmp_path, speech_dir, n=12):
    man = tmp_path / "m.csv"
    man.write_text("segment_id,media\n" + "".join(f"c{i:02d},{speech_dir / f'{i:02d}.wav'}\n" for i in range(n)))
    store = open_store(tmp_path / "store")
    store.upsert_segments(load_manifest(man))
    return store


def test_two_writers_on_different_groups(tmp_path, speech_dir):
    store = seeded(tmp_path, speech_dir)
    a, b = start(tmp_path / "store", "prosody"), start(tmp_path / "store", "opensmile")
    for p in (a, b):
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    for g in ("prosody", "opensmile.egemaps"):
        st = store.group_status(g)
        assert st.height == 12 and st["segment_id"].n_unique() == 12 and (st["status"] == "ok").all()


def test_two_writers_on_the_same_group(tmp_path, speech_dir):
    from ambiguity.extractors.prosody import Prosody
    from ambiguity.extractors.runner import run
    from ambiguity.stores import schema as S

    store = seeded(tmp_path, speech_dir)
    phases = tmp_path / "phases.log"  # "<unix time> <pid> <phase>" per mark, from both writers
    a, b = start(tmp_path / "store", "prosody", phases=phases), start(tmp_path / "store", "prosody", phases=phases)
    for p in (a, b):
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    st = store.group_status("prosody")
    assert st.height == 12 and st["segment_id"].n_unique() == 12 and (st["status"] == "ok").all()

    # the commits interleave: sorted by time, the committing writer changes more than once
    commits = sorted((float(t), int(pid)) for t, pid, phase in (line.split() for line in phases.read_text().splitlines())
                     if phase == "written")
    writers = [pid for _, pid in commits]
    assert set(writers) == {a.pid, b.pid}, "both writers committed"
    switches = sum(x != y for x, y in zip(writers, writers[1:], strict=False))
    assert switches >= 2, f"the writers did not overlap: {writers}"
    # every commit is a table version (plus the creation), none lost
    versions = store._open(S.table_name("prosody")).versions()
    assert len(versions) >= len(commits)

    # and the values are those of one writer alone
    (tmp_path / "solo").mkdir()
    solo = seeded(tmp_path / "solo", speech_dir)
    run(solo, Prosody(), workers=1, batch_size=1, progress=False)
    got = store.features("prosody").sort("segment_id").drop("status", "error")
    assert got.equals(solo.features("prosody").sort("segment_id").drop("status", "error"))
