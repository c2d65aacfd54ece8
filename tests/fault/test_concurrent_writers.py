"""Two `extract` processes on one store: different groups both finish; the same group ends without
duplicates or lost rows (Lance commits are atomic; conflicting upserts are retried)."""

from __future__ import annotations

import subprocess
import sys

from ambiguity import open_store
from ambiguity.segments import load_manifest


def start(store_dir, extractor, group=None):
    cmd = [sys.executable, "-m", "ambiguity.cli.__main__", "--store", str(store_dir), "extract",
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
    store = seeded(tmp_path, speech_dir)
    a, b = start(tmp_path / "store", "prosody"), start(tmp_path / "store", "prosody")
    for p in (a, b):
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    st = store.group_status("prosody")
    assert st.height == 12 and st["segment_id"].n_unique() == 12 and (st["status"] == "ok").all()
