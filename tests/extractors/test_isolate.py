"""Missing is a state: a segment without the input an extractor measures (no audio track, no
video track, no media at all, no transcript) is `empty` with the reason, never retried and
counted by `status`; a corrupt or unreadable file stays `failed`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from ambiguity.extractors.base import Extractor
from ambiguity.extractors.prosody import Prosody
from ambiguity.extractors.runner import run
from ambiguity.segments import load_manifest


def silent_video(path: Path, seconds: float = 1.0, fps: int = 10) -> Path:
    """An mp4 with a video track and no audio track (PyAV, written here)."""
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        for i in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 10 * i, np.uint8), format="rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


class Brightness(Extractor):
    """A video extractor that reads frames itself (no try/except): the runner decides the state."""

    name = "brightness"
    modality = "video"

    def columns(self):
        return [pa.field("mean", pa.float64())]

    def process(self, batch):
        return [{"mean": float(np.mean([f for _, f in s.frames(num=2)]))} for s in batch]


class Loudness(Extractor):
    """An audio extractor that decodes itself, without checked_audio."""

    name = "loudness"
    modality = "audio"

    def columns(self):
        return [pa.field("rms", pa.float64())]

    def process(self, batch):
        return [{"rms": float(np.sqrt(np.mean(s.audio(16000) ** 2)))} for s in batch]


def seeded(store, tmp_path, speech_dir):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(3).bytes(5000))
    rows = [
        ("speech", str(speech_dir / "00.wav")),  # audio only
        ("mute", str(silent_video(tmp_path / "mute.mp4"))),  # video only
        ("nothing", ""),  # no media file at all (a text-only segment)
        ("corrupt", str(corrupt)),  # unreadable: an error, not a missing modality
    ]
    man = tmp_path / "m.csv"
    man.write_text("segment_id,media,transcript\n" + "".join(f"{sid},{m},words here\n" for sid, m in rows))
    store.upsert_segments(load_manifest(man, check_files=False))


def states(store, group):
    return {r["segment_id"]: (r["status"], r["error"]) for r in store.group_status(group).iter_rows(named=True)}


def test_a_missing_track_is_empty_and_a_corrupt_file_is_failed(store, tmp_path, speech_dir):
    seeded(store, tmp_path, speech_dir)
    for ex, has, lacks in [(Prosody(), "speech", "mute"), (Loudness(), "speech", "mute"), (Brightness(), "mute", "speech")]:
        rep = run(store, ex, workers=1, progress=False)
        st = states(store, rep.group)
        assert st[has][0] == "ok", (ex.name, st[has])
        kind = "video" if ex.modality == "video" else "audio"
        assert st[lacks] == ("empty", f"no {kind} track in {store.segments().filter(segment_id=lacks)['media'][0]}"), ex.name
        assert st["nothing"][0] == "empty" and "has no" in st["nothing"][1], (ex.name, st["nothing"])
        assert st["corrupt"][0] == "failed" and "cannot" in st["corrupt"][1], (ex.name, st["corrupt"])
        assert (rep.ok, rep.empty, rep.failed) == (1, 2, 1)
        again = run(store, ex, workers=1, progress=False)
        assert again.pending == 1 and again.skipped == 3  # only the failed one is retried
        counts = store.status().filter(group=rep.group).row(0, named=True)
        assert (counts["ok"], counts["empty"], counts["failed"]) == (1, 2, 1)


def test_missing_tracks_are_empty_in_the_pool_too(store, tmp_path, speech_dir):
    seeded(store, tmp_path, speech_dir)
    rep = run(store, Prosody(), workers=2, batch_size=1, progress=False)
    st = states(store, rep.group)
    assert [st[s][0] for s in ("speech", "mute", "nothing", "corrupt")] == ["ok", "empty", "empty", "failed"]
