"""`extract`'s exit status: 0 when the run finished even with failed segments (listed, kept as
`failed` rows); 3 with --strict when any segment failed; 0 with --strict when none did."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from ambiguity import open_store
from ambiguity.cli import main
from ambiguity.segments import load_manifest


@pytest.fixture
def store_with_a_broken_segment(tmp_path, speech_dir):
    gone = tmp_path / "gone.wav"
    shutil.copy(speech_dir / "00.wav", gone)
    man = tmp_path / "m.csv"
    man.write_text(f"segment_id,media\nok1,{speech_dir / '01.wav'}\nbad,{gone}\nok2,{speech_dir / '02.wav'}\n")
    store = open_store(tmp_path / "store")
    store.upsert_segments(load_manifest(man))
    gone.unlink()  # deleted after ingest: the segment fails with "media file not found"
    return tmp_path / "store"


def _extract(store_dir, *extra):
    """`ambiguity extract` in this process (CliRunner): the exit status and the two streams."""
    args = ["--store", str(store_dir), "extract", "--extractor", "prosody", "--workers", "1", "--quiet", *extra]
    r = CliRunner().invoke(main, args)
    return SimpleNamespace(returncode=r.exit_code, stdout=r.stdout, stderr=r.stderr)


def test_failed_segments_exit_0_and_are_listed(store_with_a_broken_segment):
    r = _extract(store_with_a_broken_segment)
    assert r.returncode == 0, r.stderr
    assert "failed bad:" in r.stderr and "not found" in r.stderr
    st = open_store(store_with_a_broken_segment).group_status("prosody").sort("segment_id")
    assert st["status"].to_list() == ["failed", "ok", "ok"]


def test_strict_exits_3_when_a_segment_failed_and_keeps_the_rows(store_with_a_broken_segment, speech_dir):
    r = _extract(store_with_a_broken_segment, "--strict")
    assert r.returncode == 3, r.stderr
    assert r.stderr.strip().splitlines()[-1] == "error: 1 segment(s) failed (--strict); see `ambiguity status --failed`"
    st = open_store(store_with_a_broken_segment).group_status("prosody")
    assert st.height == 3 and (st["status"] == "ok").sum() == 2
    # a rerun retries the failed segment (only ok/empty rows count as done): it fails again
    r = _extract(store_with_a_broken_segment, "--strict")
    assert r.returncode == 3 and "0 processed" not in r.stdout
    # the file is back: the retry succeeds and strict is satisfied
    shutil.copy(speech_dir / "00.wav", store_with_a_broken_segment.parent / "gone.wav")
    r = _extract(store_with_a_broken_segment, "--strict")
    assert r.returncode == 0, r.stderr
    assert (open_store(store_with_a_broken_segment).group_status("prosody")["status"] == "ok").all()


def test_strict_exits_0_when_nothing_failed(tmp_path, speech_dir):
    man = tmp_path / "m.csv"
    man.write_text(f"segment_id,media\na,{speech_dir / '01.wav'}\n")
    open_store(tmp_path / "store").upsert_segments(load_manifest(man))
    r = _extract(tmp_path / "store", "--strict")
    assert r.returncode == 0, r.stderr


def test_engine_ray_is_picked_by_the_cli_and_reports_as_the_local_runner(tmp_path, speech_dir, monkeypatch):
    # The runner no longer knows engines: `extract --engine ray` calls ambiguity.engines.ray.run itself.
    import ambiguity.engines.ray as engine
    from ambiguity.extractors.plan import RunReport

    man = tmp_path / "m.csv"
    man.write_text(f"segment_id,media\na,{speech_dir / '01.wav'}\n")
    open_store(tmp_path / "store").upsert_segments(load_manifest(man))
    calls = []

    def fake_run(store, ex, **kw):
        calls.append((ex.name, kw["address"], kw["workers"]))
        return RunReport(group=ex.default_group(), pending=1, ok=1)

    monkeypatch.setattr(engine, "run", fake_run)
    r = _extract(tmp_path / "store", "--engine", "ray", "--address", "ray://head:10001")
    assert r.returncode == 0, r.stderr
    assert calls == [("prosody", "ray://head:10001", 1)]
    assert "prosody: 1 processed (1 ok" in r.stdout and r.stdout.strip().endswith("next: ambiguity train prosody")
