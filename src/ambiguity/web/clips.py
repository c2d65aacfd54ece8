"""Cut a segment's media to its start/end for the browser: WAV audio, MP4 video.

Browsers cannot be trusted to honour a start/end on a long source file (and a
player would let annotators scrub outside the segment), so each segment is cut
and re-encoded once with PyAV into a cache folder and served as a plain file
(with HTTP range requests). Three kinds:

- ``audio``: the segment's audio only, mono 16-bit WAV at the source rate;
- ``video``: the segment's video with no audio track at all (pass 1, video flag);
- ``full``: video with sound (pass 2); WAV when the source has no video track.

The cache key covers the source path, size and modification time, the times and
the kind, so an edited source or segment gets a new clip.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import threading
import wave
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ambiguity.inputs import SegmentInput
from ambiguity.media import MediaError, load_segment_audio, probe

KINDS = ("audio", "video", "full")
MAX_HEIGHT = 720  # larger sources are scaled down: annotation needs faces, not 4K
_VERSION = "1"


@dataclass(frozen=True)
class Source:
    """Where a segment's media lives: ``media`` (video or audio file), optional separate ``audio``."""

    segment_id: str
    media: str | None
    audio: str | None = None
    start_s: float | None = None
    end_s: float | None = None

    @property
    def audio_source(self) -> str | None:
        return self.audio or self.media


def has_video(src: Source) -> bool:
    return bool(src.media) and probe(str(src.media)).has_video


def has_audio(src: Source) -> bool:
    path = src.audio_source
    return bool(path) and probe(str(path)).has_audio


def _write_wav(samples: np.ndarray, rate: int, out: Path) -> None:
    pcm = np.clip(samples, -1.0, 1.0)
    pcm = (pcm * 32767.0).round().astype("<i2")
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(rate))
        w.writeframes(pcm.tobytes())


def _segment_audio(src: Source) -> tuple[np.ndarray, int]:
    path = src.audio_source
    if not path:
        raise MediaError(f"segment {src.segment_id} has no media file")
    info = probe(str(path))
    if not info.has_audio or not info.sample_rate:
        raise MediaError(f"no audio track in {path}")
    seg = SegmentInput(segment_id=src.segment_id, media=src.media, start_s=src.start_s, end_s=src.end_s, audio_path=src.audio)
    return load_segment_audio(seg, info.sample_rate), int(info.sample_rate)


def cut_audio(src: Source, out: Path) -> None:
    samples, rate = _segment_audio(src)
    _write_wav(samples, rate, out)


def cut_video(src: Source, out: Path, *, with_audio: bool, max_height: int = MAX_HEIGHT) -> None:
    """Re-encode [start, end) of the video as H.264 (+ AAC when ``with_audio``) in MP4."""
    import av  # 0.16 s: only when a video clip is cut

    path = str(src.media)
    start = src.start_s or 0.0
    end = src.end_s if src.end_s is not None else (probe(path).duration or math.inf)
    audio = _segment_audio(src) if with_audio and has_audio(src) else None
    try:
        inp = av.open(path)
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"cannot open {path}: {exc}") from None
    with inp:
        if not inp.streams.video:
            raise MediaError(f"no video track in {path}")
        vin = inp.streams.video[0]
        rate = Fraction(vin.average_rate) if vin.average_rate else Fraction(25)
        w, h = vin.codec_context.width, vin.codec_context.height
        if h > max_height:
            w, h = int(w * max_height / h), max_height
        w, h = w - w % 2, h - h % 2  # yuv420p needs even sizes
        with av.open(str(out), "w", format="mp4", container_options={"movflags": "+faststart"}) as oc:
            vs = oc.add_stream("libx264", rate=rate)
            vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
            vs.options = {"preset": "veryfast", "crf": "23"}
            aus = None
            if audio is not None:
                aus = oc.add_stream("aac", rate=audio[1], layout="mono")
            if start > 0 and vin.time_base:
                inp.seek(int(start / vin.time_base), stream=vin, backward=True)
            last_pts = -1
            half = 0.5 / float(rate)
            for frame in inp.decode(vin):
                t = frame.time if frame.time is not None else 0.0
                if t < start - half:
                    continue
                if t >= end - half:
                    break
                pts = int(round((t - start) * rate))
                if pts <= last_pts:
                    continue  # variable frame rate: drop frames that land on a taken tick
                last_pts = pts
                f = frame.reformat(width=w, height=h, format="yuv420p")
                f.pts, f.time_base = pts, 1 / rate
                oc.mux(vs.encode(f))
            oc.mux(vs.encode(None))
            if aus is not None and audio is not None:
                samples, arate = audio
                chunk = 1024 * 16
                for i in range(0, len(samples), chunk):
                    part = np.ascontiguousarray(samples[i : i + chunk], dtype=np.float32)[None, :]
                    af = av.AudioFrame.from_ndarray(part, format="fltp", layout="mono")
                    af.rate, af.pts, af.time_base = arate, i, Fraction(1, arate)
                    oc.mux(aus.encode(af))
                oc.mux(aus.encode(None))
    if last_pts < 0:
        raise MediaError(f"no video frames between {start:.3f} s and {end:.3f} s in {path}")


class ClipCache:
    """Cut clips on first request and keep them in ``directory`` (a temp folder by default)."""

    def __init__(self, directory: str | os.PathLike | None = None):
        self.directory = Path(directory) if directory else Path(tempfile.gettempdir()) / "ambiguity-clips"
        self.directory.mkdir(parents=True, exist_ok=True)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _key(self, src: Source, kind: str) -> str:
        parts = [_VERSION, kind, repr(src.start_s), repr(src.end_s)]
        for p in (src.media, src.audio):
            if p:
                st = os.stat(p)
                parts += [os.path.abspath(p), str(st.st_size), str(st.st_mtime_ns)]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]

    def get(self, src: Source, kind: str) -> tuple[Path, str]:
        """(path, media type) of the clip; cuts it if it is not cached yet."""
        if kind not in KINDS:
            raise MediaError(f"unknown clip kind {kind!r}: use {', '.join(KINDS)}")
        for p in (src.media, src.audio):
            if p and not os.path.exists(p):
                raise MediaError(f"media file not found: {p}")
        if not src.media and not src.audio:
            raise MediaError(f"segment {src.segment_id} has no media file")
        video = has_video(src)
        if kind == "video" and not video:
            raise MediaError(f"segment {src.segment_id} has no video track")
        as_wav = kind == "audio" or (kind == "full" and not video)
        suffix, mtype = (".wav", "audio/wav") if as_wav else (".mp4", "video/mp4")
        key = self._key(src, "audio" if as_wav else kind)
        out = self.directory / f"{key}{suffix}"
        if out.exists():
            return out, mtype
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if out.exists():
                return out, mtype
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=suffix)
            os.close(fd)
            try:
                if as_wav:
                    cut_audio(src, Path(tmp))
                else:
                    cut_video(src, Path(tmp), with_audio=(kind == "full"))
                os.replace(tmp, out)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        return out, mtype
