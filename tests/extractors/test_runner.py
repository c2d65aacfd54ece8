"""The runner: resume, no-op reruns, per-segment failures, bad media, SIGKILL and rerun."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from ambiguity.extractors.base import Empty, Extractor, Failure
from ambiguity.extractors.prosody import Prosody
from ambiguity.extractors.runner import run
from ambiguity.inputs import SegmentInput
from ambiguity.segments import load_manifest
from ambiguity.stores import schema as S


def write_wav(path: Path, x: np.ndarray, rate: int = 16000, channels: int = 1) -> Path:
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def ingest(store, tmp_path: Path, rows: list[dict]) -> None:
    import csv

    keys = sorted({k for r in rows for k in r})
    man = tmp_path / "manifest.csv"
    with man.open("w", newline="") as fh:
        w = csv.DictWriter(fh, keys)
        w.writeheader()
        w.writerows(rows)
    store.upsert_segments(load_manifest(man, check_files=False))


def clips(speech_dir: Path, n: int) -> list[dict]:
    return [{"segment_id": f"c{i:02d}", "media": str(speech_dir / f"{i:02d}.wav")} for i in range(n)]


def test_resume_and_noop_rerun(store, tmp_path, speech_dir):
    ingest(store, tmp_path, clips(speech_dir, 6))
    first = run(store, Prosody(), limit=4, workers=1, progress=False)
    assert first.ok == 4
    second = run(store, Prosody(), workers=1, progress=False)
    assert (second.ok, second.skipped) == (2, 4)
    version = store.version(S.table_name("prosody"))
    third = run(store, Prosody(), workers=1, progress=False)
    assert third.processed == 0 and third.skipped == 6
    assert store.version(S.table_name("prosody")) == version  # a no-op rerun adds no version
    st = store.group_status("prosody")
    assert st.height == 6 and st["segment_id"].n_unique() == 6


def test_pool_and_sequential_give_identical_values(store, tmp_path, speech_dir):
    ingest(store, tmp_path, clips(speech_dir, 6))
    run(store, Prosody(), group="seq", workers=1, progress=False)
    run(store, Prosody(), group="pool", workers=2, batch_size=2, progress=False)
    a = store.features("seq").sort("segment_id").drop("status", "error")
    b = store.features("pool").sort("segment_id").drop("status", "error")
    assert a.equals(b)


@dataclass(frozen=True)
class _BadSegment:
    bad: str = "c01"


class BreaksOnOne(Extractor):
    """Breaks (``break_down``) on the batch holding segment ``bad``; the others must still be written."""

    modality = "audio"
    Params = _BadSegment

    def columns(self):
        return [pa.field("n", pa.float64())]

    def break_down(self) -> None:
        raise NotImplementedError

    def process(self, batch: Sequence[SegmentInput]):
        if any(s.segment_id == self.params.bad for s in batch):
            self.break_down()
        return [{"n": float(len(s.audio(8000)))} for s in batch]


class Boom(BreaksOnOne):
    """Raises."""

    name = "boom"

    def break_down(self) -> None:
        raise RuntimeError("kaboom")


def test_one_raising_segment_fails_alone(store, tmp_path, speech_dir):
    ingest(store, tmp_path, clips(speech_dir, 4))
    rep = run(store, Boom(), batch_size=4, workers=1, progress=False)
    assert (rep.ok, rep.failed) == (3, 1)
    st = store.group_status("boom")
    bad = st.filter(st["segment_id"] == "c01").row(0, named=True)
    assert bad["status"] == "failed" and "RuntimeError: kaboom" in bad["error"]


def test_bad_media_become_failed_or_empty_rows(store, tmp_path, speech_dir):
    empty_file = tmp_path / "zero.wav"
    empty_file.write_bytes(b"")
    noise = tmp_path / "noise.wav"
    noise.write_bytes(np.random.default_rng(1).bytes(4096))
    silence = write_wav(tmp_path / "silence.wav", np.zeros(16000))
    gone = write_wav(tmp_path / "gone.wav", np.zeros(16000))
    clip = str(speech_dir / "00.wav")  # 4.2 s
    rows = [
        {"segment_id": "ok", "media": clip},
        {"segment_id": "zero", "media": str(empty_file)},
        {"segment_id": "noise", "media": str(noise)},
        {"segment_id": "silence", "media": str(silence)},
        {"segment_id": "short", "media": clip, "start_s": "1.0", "end_s": "1.03"},
        {"segment_id": "past", "media": clip, "start_s": "30", "end_s": "31"},
        {"segment_id": "overrun", "media": clip, "start_s": "3", "end_s": "9"},
        {"segment_id": "gone", "media": str(gone)},
    ]
    ingest(store, tmp_path, rows)
    gone.unlink()  # the file disappears after ingest
    rep = run(store, Prosody(), workers=1, progress=False)
    st = {r["segment_id"]: r for r in store.group_status("prosody").iter_rows(named=True)}
    assert st["ok"]["status"] == "ok"
    assert st["silence"]["status"] == "empty" and "silence" in st["silence"]["error"]
    for sid, words in [("zero", "cannot"), ("noise", "cannot"), ("short", "30 ms"), ("past", "past the end"),
                       ("overrun", "past the end"), ("gone", "not found")]:
        assert st[sid]["status"] == "failed", sid
        assert words in st[sid]["error"], (sid, st[sid]["error"])
    assert (rep.ok, rep.empty, rep.failed) == (1, 1, 6)
    counts = store.status().row(0, named=True)
    assert (counts["ok"], counts["empty"], counts["failed"], counts["missing"]) == (1, 1, 6, 0)


def test_invalid_utf8_transcript_fails_text_extractors_only(store, tmp_path, speech_dir):
    man = tmp_path / "m.csv"
    man.write_bytes(b"segment_id,media,transcript\na," + str(speech_dir / "00.wav").encode() + b",caf\xe9 ok\n"
                    b"b," + str(speech_dir / "01.wav").encode() + b",fine\n")
    store.upsert_segments(load_manifest(man))

    class Words(Extractor):
        name = "words"
        modality = "text"

        def columns(self):
            return [pa.field("n_words", pa.float64())]

        def process(self, batch):
            return [{"n_words": float(len(s.transcript.split()))} for s in batch]

    run(store, Words(), workers=1, progress=False)
    st = {r["segment_id"]: r for r in store.group_status("words").iter_rows(named=True)}
    assert st["a"]["status"] == "failed" and "UTF-8" in st["a"]["error"]
    assert st["b"]["status"] == "ok"


def _extract_cmd(store_dir: Path) -> list[str]:
    return [sys.executable, "-m", "ambiguity.cli.__main__", "--store", str(store_dir), "extract",
            "--extractor", "prosody", "--batch-size", "1", "--workers", "1", "--quiet"]


def test_sigkill_then_rerun_equals_uninterrupted(tmp_path, speech_dir):
    from ambiguity import open_store

    n = 10
    ref_store = open_store(tmp_path / "ref")
    ingest(ref_store, tmp_path, clips(speech_dir, n))
    run(ref_store, Prosody(), workers=1, progress=False)

    killed = open_store(tmp_path / "killed")
    ingest(killed, tmp_path, clips(speech_dir, n))
    proc = subprocess.Popen(_extract_cmd(tmp_path / "killed"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        if killed.has_group("prosody") and killed.group_status("prosody").height >= 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    written = killed.group_status("prosody").height
    assert 3 <= written < n, "the kill should land mid-run"
    subprocess.run(_extract_cmd(tmp_path / "killed"), check=True, capture_output=True)
    st = killed.group_status("prosody")
    assert st.height == n and st["segment_id"].n_unique() == n and (st["status"] == "ok").all()
    a = ref_store.features("prosody").sort("segment_id").drop("status", "error")
    b = killed.features("prosody").sort("segment_id").drop("status", "error")
    assert a.equals(b)


def test_recompute_and_group_conflict(store, tmp_path, speech_dir):
    from ambiguity.errors import GroupConflictError

    ingest(store, tmp_path, clips(speech_dir, 2))
    run(store, Prosody(), workers=1, progress=False)
    with pytest.raises(GroupConflictError, match="pass group NAME to keep both, or recompute"):
        run(store, Prosody(pitch_floor=100), workers=1, progress=False)
    other = run(store, Prosody(pitch_floor=100), group="prosody.f100", workers=1, progress=False)
    assert other.ok == 2
    again = run(store, Prosody(pitch_floor=100), recompute=True, workers=1, progress=False)
    assert again.ok == 2
    assert store.groups()["prosody"]["params"]["pitch_floor"] == 100


def test_failures_are_retried_and_only_failed(store, tmp_path, speech_dir):
    ingest(store, tmp_path, clips(speech_dir, 3))
    run(store, Boom(), workers=1, progress=False)
    rep = run(store, Boom(), only_failed=True, workers=1, progress=False)
    assert rep.pending == 1 and rep.failed == 1


def test_result_objects_are_checked(store, tmp_path, speech_dir):
    ingest(store, tmp_path, clips(speech_dir, 1))

    class Bad(Extractor):
        name = "bad"
        modality = "audio"

        def columns(self):
            return [pa.field("x", pa.float64())]

        def process(self, batch):
            return [{"x": 1.0, "y": 2.0}]

    run(store, Bad(), workers=1, progress=False)
    row = store.group_status("bad").row(0, named=True)
    assert row["status"] == "failed" and "undeclared column" in row["error"]


def test_empty_and_failure_are_distinct():
    assert Empty("x") != Failure("x")


class DieInWorker(BreaksOnOne):
    """Kills its worker process, as a segfaulting codec would."""

    name = "die"
    batch_size = 1

    def break_down(self) -> None:
        os._exit(3)


def test_a_worker_that_dies_fails_its_batch_only(store, tmp_path, speech_dir):
    ingest(store, tmp_path, clips(speech_dir, 6))
    rep = run(store, DieInWorker(bad="c02"), workers=2, batch_size=1, progress=False)
    st = {r["segment_id"]: r for r in store.group_status("die").iter_rows(named=True)}
    assert len(st) == 6
    assert st["c02"]["status"] == "failed" and "worker process died" in st["c02"]["error"]
    assert all(st[f"c0{i}"]["status"] == "ok" for i in (0, 1, 3, 4, 5))
    assert (rep.ok, rep.failed) == (5, 1)


def test_a_pool_is_started_only_for_cpu_extractors_with_several_workers_and_batches(store, tmp_path, speech_dir, monkeypatch):
    import ambiguity.extractors.runner as R

    started = []

    class Counted(R.Pool):
        def __init__(self, ex, n, half="process"):
            started.append(n)
            super().__init__(ex, n, half)

    monkeypatch.setattr(R, "Pool", Counted)
    ingest(store, tmp_path, clips(speech_dir, 4))
    run(store, Prosody(), group="one", workers=1, batch_size=2, progress=False)
    assert started == []  # one worker: in this process
    run(store, Prosody(), group="onebatch", workers=2, batch_size=4, progress=False)
    assert started == []  # one batch: no pool worth starting
    run(store, Prosody(), group="two", workers=2, batch_size=2, progress=False)
    assert started == [2]


class SetupBreaks(Prosody):
    name = "setupbreaks"

    def setup(self) -> None:
        raise RuntimeError("the model file is gone")


def test_a_setup_that_raises_in_the_workers_stops_the_run_with_its_words(store, tmp_path, speech_dir):
    from ambiguity.errors import ExtractorError

    ingest(store, tmp_path, clips(speech_dir, 4))
    with pytest.raises(ExtractorError, match="setupbreaks setup failed: RuntimeError: the model file is gone"):
        run(store, SetupBreaks(), workers=2, batch_size=1, progress=False)
    assert not store.has_group("setupbreaks") or store.group_status("setupbreaks").height == 0


def test_the_last_progress_line_is_100_percent_with_the_final_counts(store, tmp_path, speech_dir, capsys):
    ingest(store, tmp_path, clips(speech_dir, 3) + [{"segment_id": "gone", "media": str(tmp_path / "gone.wav")}])
    run(store, Prosody(), workers=1, batch_size=1, progress=True)  # stderr is not a terminal: a line per 10%
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("prosody: 100% (4/4 seg") and last.endswith("ok 3, failed 1, empty 0)"), last
