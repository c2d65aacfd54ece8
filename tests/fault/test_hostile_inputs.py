"""Hostile inputs: each gives its documented outcome (docs/reliability.md), and nothing else is lost."""

from __future__ import annotations

import time

import numpy as np
import pytest
from click.testing import CliRunner

from ambiguity.cli import main
from ambiguity.errors import ManifestError
from ambiguity.extractors.prosody import Prosody
from ambiguity.extractors.runner import run
from ambiguity.inputs import SegmentInput
from ambiguity.media import sample_frames
from ambiguity.segments import load_manifest


def ingest_rows(store, tmp_path, rows):
    import csv

    man = tmp_path / "m.csv"
    with man.open("w", newline="") as fh:
        w = csv.DictWriter(fh, ["segment_id", "media", "start_s", "end_s"])
        w.writeheader()
        w.writerows(rows)
    store.upsert_segments(load_manifest(man))


def statuses(store, group):
    return {r["segment_id"]: r for r in store.group_status(group).iter_rows(named=True)}


def test_audio_edge_cases_through_prosody(store, tmp_path, bad):
    rows = [
        {"segment_id": "truncated", "media": bad["truncated"]},  # moov atom cut off
        {"segment_id": "no_audio", "media": bad["no_audio"]},
        {"segment_id": "with_audio", "media": bad["av"], "start_s": 0.5, "end_s": 2.5},
        {"segment_id": "8k", "media": bad["8k"]},
        {"segment_id": "96k", "media": bad["96k"]},
        {"segment_id": "6ch", "media": bad["6ch"]},
    ]
    ingest_rows(store, tmp_path, rows)
    rep = run(store, Prosody(), workers=1, progress=False)
    st = statuses(store, "prosody")
    assert st["truncated"]["status"] == "failed" and "cannot open" in st["truncated"]["error"]
    # a video without an audio track has no audio to measure: a missing modality, not an error
    assert st["no_audio"]["status"] == "empty" and "no audio track" in st["no_audio"]["error"]
    for sid in ("with_audio", "8k", "96k", "6ch"):
        assert st[sid]["status"] == "ok", (sid, st[sid]["error"])
    assert rep.ok == 4 and rep.failed == 1 and rep.empty == 1
    pitch = dict(store.features("prosody", ["pitch_mean"]).iter_rows())
    # The generated tone has f0 = 160 Hz with +-5% vibrato, whatever the file's rate.
    for sid in ("8k", "96k", "with_audio"):
        assert 150 < pitch[sid] < 170, (sid, pitch[sid])


def test_resampling_and_downmix_lengths(bad):
    for key, n in (("8k", 2.0), ("96k", 2.0), ("6ch", 2.0)):
        x = SegmentInput(key, str(bad[key])).audio(16000)
        assert abs(len(x) - n * 16000) <= 1 and x.dtype == np.float32
    # 6 channels of one tone at 1/6 .. 6/6 amplitude: the mono mix is their mean.
    six = SegmentInput("6ch", str(bad["6ch"])).audio(16000)
    single = SegmentInput("a", str(bad["audio_only"])).audio(16000)
    assert np.corrcoef(six, single)[0, 1] > 0.5


def test_variable_frame_rate_sampling(bad):
    # Frames at 0, 0.1, 0.12, 0.22, 0.24, ...: the frame shown at t is the last one with pts <= t.
    frames = sample_frames(str(bad["vfr"]), 0.0, 1.0, fps=10)
    assert len(frames) == 10
    bars = [int((img[10] > 100).sum(axis=-1).astype(bool).sum()) for _, img in frames]
    assert bars == sorted(bars) and bars[-1] > bars[0]  # time moves forward, never backward


def test_audio_without_video_where_video_is_required(bad):
    from ambiguity.media import MediaError

    with pytest.raises(MediaError, match="no video track"):
        sample_frames(str(bad["audio_only"]), None, None, fps=5)


def test_two_hour_file_cut_into_many_segments(store, tmp_path, bad):
    rows = [{"segment_id": f"m{m:03d}", "media": bad["two_hours"], "start_s": m * 60, "end_s": m * 60 + 2}
            for m in range(0, 120, 3)]
    ingest_rows(store, tmp_path, rows)
    t = time.perf_counter()
    rep = run(store, Prosody(), workers=2, progress=False)
    assert rep.ok == len(rows), rep.failures[:3]
    pitch = store.features("prosody", ["pitch_mean"])["pitch_mean"].to_numpy()
    assert np.all((pitch > 150) & (pitch < 170))
    # Each segment decodes only its own span (seek, then forward), not the 2 hours before it.
    assert time.perf_counter() - t < 120


def test_empty_manifest_is_one_line(bad, tmp_path):
    r = CliRunner().invoke(main, ["--store", str(tmp_path / "s"), "ingest", str(bad["empty_manifest"])])
    assert r.exit_code == 2 and "no rows" in r.output and len(r.output.strip().splitlines()) == 1


def test_manifest_with_100k_rows(store, bad):
    t = time.perf_counter()
    table = load_manifest(bad["manifest_100k"])
    store.upsert_segments(table)
    assert store.segments(["segment_id"]).height == 100_000
    assert time.perf_counter() - t < 120


def test_paths_with_spaces_and_non_ascii(store, bad):
    store.upsert_segments(load_manifest(bad["weird_manifest"]))
    rep = run(store, Prosody(), workers=1, progress=False)
    assert rep.ok == 1
    seg = store.segments().row(0, named=True)
    assert seg["segment_id"] == "seg ü 1" and seg["transcript"] == "naïve café" and "音声" in seg["media"]


def test_manifest_with_nan_times(tmp_path, bad):
    man = tmp_path / "m.csv"
    man.write_text(f"segment_id,media,start_s,end_s\na,{bad['audio_only']},nan,1\nb,{bad['audio_only']},0,inf\n")
    with pytest.raises(ManifestError) as err:
        load_manifest(man)
    assert len(err.value.problems) == 2 and "not finite" in str(err.value)


def test_nan_and_inf_in_imported_predictions_are_refused_with_rows(tmp_path, bad, speech_dir):
    man = tmp_path / "m.csv"
    man.write_text("segment_id,media,label,split\n" + "".join(
        f"s{i},{speech_dir / f'0{i}.wav'},{i % 2},test\n" for i in range(1, 5)))
    store = str(tmp_path / "s")
    assert CliRunner().invoke(main, ["--store", store, "ingest", str(man)]).exit_code == 0
    r = CliRunner().invoke(main, ["--store", store, "predictions", "import", str(bad["predictions_nan"])])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "row 3: p_0 not finite" in r.output and "row 4: p_0 not finite" in r.output
    from ambiguity import open_store

    assert not open_store(store).has_table("predictions")  # nothing half-imported


def test_video_segment_past_the_end_fails(bad):
    from ambiguity.media import MediaError

    with pytest.raises(MediaError, match="past the end"):
        sample_frames(str(bad["no_audio"]), 5.0, 6.0, fps=5)
    with pytest.raises(MediaError, match="past the end"):
        sample_frames(str(bad["no_audio"]), 1.0, 9.0, fps=5)
