"""Media decoding with PyAV: audio as float32 mono at a rate, sampled video frames.

Audio is decoded at the file's native rate and sliced by sample index, then each
segment is resampled on its own: a segment's samples are then the same whichever
other segments share its decode (so a resumed run equals an uninterrupted one).
PyAV seeks land on the keyframe before the target, so decoding always runs
forward to the target time.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Protocol

import numpy as np

from ambiguity.errors import AmbiguityError


class Span(Protocol):
    """What decoding needs of a segment (:class:`ambiguity.inputs.SegmentInput` has it)."""

    @property
    def segment_id(self) -> str: ...
    @property
    def start_s(self) -> float | None: ...
    @property
    def end_s(self) -> float | None: ...
    @property
    def audio_source(self) -> str | None: ...

#: Decode this much before a segment so that codecs with overlap (AAC, MP3) settle.
PRE_ROLL_S = 0.5
#: A segment may end this far past the end of its file (rounding in manifests).
END_TOLERANCE_S = 0.05


class MediaError(AmbiguityError, ValueError):
    """A media file cannot be decoded as asked."""


class MissingTrack(MediaError):
    """The segment has no such input at all: no audio or video track in its file, no file named.
    Not an error of the data: extractors record the segment ``empty`` with this reason."""


@dataclass(frozen=True)
class MediaInfo:
    duration: float | None
    has_audio: bool
    has_video: bool
    sample_rate: int | None
    channels: int | None
    fps: float | None


#: Containers whose header fully describes the stream: skip FFmpeg's packet probing
#: (about 9 ms per open, which dominated decoding many short segments of one file).
_HEADER_ONLY = {".wav", ".wave", ".flac", ".aif", ".aiff"}


def _open(path: str):
    import av  # 0.12 s to import (python -X importtime)

    cheap = os.path.splitext(str(path))[1].lower() in _HEADER_ONLY
    try:
        return av.open(str(path), options={"probesize": "32", "analyzeduration": "0"} if cheap else None)
    except FileNotFoundError:
        raise MediaError(f"media file not found: {path}") from None
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise MediaError(f"cannot open {path}: {exc}") from None


@lru_cache(maxsize=256)
def probe(path: str) -> MediaInfo:
    with _open(path) as c:
        a = c.streams.audio[0] if c.streams.audio else None
        v = c.streams.video[0] if c.streams.video else None
        dur = None
        if c.duration:
            dur = c.duration / 1_000_000
        elif a is not None and a.duration and a.time_base:
            dur = float(a.duration * a.time_base)
        fps = float(v.average_rate) if v is not None and v.average_rate else None
        return MediaInfo(
            duration=dur,
            has_audio=a is not None,
            has_video=v is not None,
            sample_rate=a.rate if a is not None else None,
            channels=a.channels if a is not None else None,
            fps=fps,
        )


def decode_audio(path: str, start: float | None = None, end: float | None = None) -> tuple[np.ndarray, int, int]:
    """Native-rate mono float32 samples covering [start, end].

    Returns ``(samples, rate, first)`` where ``first`` is the file-level index of
    ``samples[0]``, so callers slice by absolute sample index.
    """
    import av  # 0.12 s to import (python -X importtime)

    with _open(path) as c:
        if not c.streams.audio:
            raise MissingTrack(f"no audio track in {path}")
        stream = c.streams.audio[0]
        rate = stream.rate
        if not rate:
            raise MediaError(f"audio track of {path} has no sample rate")
        pcm = stream.codec_context.name.startswith("pcm_")
        seek_to = max(0.0, (start or 0.0) - (0.0 if pcm else PRE_ROLL_S))  # PCM needs no codec settling
        if seek_to > 0 and stream.time_base:
            try:
                c.seek(int(seek_to / stream.time_base), stream=stream, backward=True)
            except av.error.FFmpegError:
                c.seek(0)
        resampler = None
        chunks: list[np.ndarray] = []
        first: int | None = None
        stop = None if end is None else int(math.ceil(end * rate)) + 1
        got = 0
        try:
            for frame in c.decode(stream):
                if first is None:
                    t = frame.time if frame.time is not None else 0.0
                    first = max(0, int(round(t * rate)))
                mono = _to_mono(frame)
                if mono is None:  # an unusual sample format: let FFmpeg convert it (exact, same rate)
                    resampler = resampler or av.AudioResampler(format="fltp", layout=stream.layout, rate=rate)
                    outs = [o.to_ndarray() for o in resampler.resample(frame)]
                    mono = np.concatenate([o.mean(axis=0, dtype=np.float32) for o in outs]) if outs else None
                if mono is not None:
                    chunks.append(mono)
                    got += len(mono)
                if stop is not None and first + got >= stop:
                    break
        except av.error.FFmpegError as exc:
            if not chunks:
                raise MediaError(f"cannot decode audio of {path}: {exc}") from None
            # A truncated file: keep what decoded; the range check below says if it is enough.
    if not chunks:
        raise MediaError(f"no audio could be decoded from {path}")
    return np.concatenate(chunks).astype(np.float32, copy=False), rate, first or 0


_INT_SCALE = {"s16": 32768.0, "s32": 2147483648.0}


def _to_mono(frame) -> np.ndarray | None:
    """Float32 mono samples of a decoded frame for the common formats; None for others."""
    fmt = frame.format.name
    base = fmt.rstrip("p")
    if base not in ("s16", "s32", "flt", "dbl"):
        return None
    arr = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:
        arr = arr.reshape(-1, channels).T
    x = arr.astype(np.float32, copy=False) if base in ("flt", "dbl") else arr.astype(np.float32) / _INT_SCALE[base]
    return x[0] if channels == 1 else x.mean(axis=0, dtype=np.float32)


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Polyphase resampling (scipy): exact ratio, no phase shift."""
    if rate_in == rate_out:
        return x
    from scipy.signal import resample_poly  # 0.7 s CPU to import

    r = Fraction(rate_out, rate_in)
    return resample_poly(x, r.numerator, r.denominator).astype(np.float32, copy=False)


def _slice(samples: np.ndarray, rate: int, first: int, start: float | None, end: float | None, path: str) -> np.ndarray:
    total_end = first + len(samples)
    a = 0 if start is None else int(round(start * rate))
    b = total_end if end is None else int(round(end * rate))
    if a >= total_end:
        raise MediaError(f"segment starts at {start:.3f} s, past the end of {path} ({total_end / rate:.3f} s)")
    if end is not None and b > total_end + END_TOLERANCE_S * rate:
        raise MediaError(f"segment ends at {end:.3f} s, past the end of {path} ({total_end / rate:.3f} s)")
    return samples[max(a - first, 0) : max(min(b, total_end) - first, 0)]


#: Segments of one file closer than this share one decode; farther apart, each decodes its own span.
MERGE_GAP_S = 10.0


class AudioBatch:
    """Decodes each stretch of a source file once and serves every segment in it.

    Segments of one file whose gaps are under ``MERGE_GAP_S`` share a decode; sparse
    segments of a long recording each decode only their own span (seek, then forward).
    """

    def __init__(self, segments: Sequence[Span]):
        by_src: dict[str, list[tuple[float, float]]] = {}
        for s in segments:
            if s.audio_source is not None:
                lo = 0.0 if s.start_s is None else s.start_s
                hi = math.inf if s.end_s is None else s.end_s
                by_src.setdefault(s.audio_source, []).append((lo, hi))
        self._spans: dict[str, list[list[float]]] = {}
        for src, ivs in by_src.items():
            merged: list[list[float]] = []
            for lo, hi in sorted(ivs):
                if merged and lo - merged[-1][1] < MERGE_GAP_S:
                    merged[-1][1] = max(merged[-1][1], hi)
                else:
                    merged.append([lo, hi])
            self._spans[src] = merged
        self._decoded: dict[tuple[str, int], tuple[np.ndarray, int, int] | MediaError] = {}

    def _span(self, seg: Span) -> tuple[int, float, float]:
        lo = 0.0 if seg.start_s is None else seg.start_s
        hi = math.inf if seg.end_s is None else seg.end_s
        for k, (a, b) in enumerate(self._spans.get(seg.audio_source or "", [])):
            if a <= lo and hi <= b:
                return k, a, b
        return -1, lo, hi  # a segment the batch was not built with

    def __call__(self, seg: Span, rate: int) -> np.ndarray:
        src = seg.audio_source
        if src is None:
            raise MissingTrack(f"segment {seg.segment_id} has no audio source")
        k, lo, hi = self._span(seg)
        if (src, k) not in self._decoded:
            try:
                self._decoded[(src, k)] = decode_audio(src, lo or None, None if hi == math.inf else hi)
            except MediaError as exc:
                self._decoded[(src, k)] = exc
        got = self._decoded[(src, k)]
        if isinstance(got, MediaError):
            raise got
        samples, native, first = got
        return resample(_slice(samples, native, first, seg.start_s, seg.end_s, src), native, rate)


def load_segment_audio(seg: Span, rate: int) -> np.ndarray:
    return AudioBatch([seg])(seg, rate)


def sample_frames(
    path: str,
    start: float | None,
    end: float | None,
    *,
    fps: float | None = None,
    num: int | None = None,
) -> list[tuple[float, np.ndarray]]:
    """RGB frames (time, HxWx3 uint8) at ``fps`` per second or ``num`` evenly spaced.

    Each target time takes the last frame shown at or before it (works for
    variable frame rates). Decodes forward from the keyframe before ``start``.
    """
    import av  # 0.12 s to import (python -X importtime)

    if (fps is None) == (num is None):
        raise ValueError("sample_frames: give exactly one of fps and num")
    with _open(path) as c:
        if not c.streams.video:
            raise MissingTrack(f"no video track in {path}")
        stream = c.streams.video[0]
        t0 = start or 0.0
        dur = probe(str(path)).duration
        t1 = end if end is not None else dur
        if t1 is None:
            raise MediaError(f"cannot tell the duration of {path}")
        if dur is not None and t0 >= dur:
            raise MediaError(f"segment starts at {t0:.3f} s, past the end of {path} ({dur:.3f} s)")
        if dur is not None and end is not None and end > dur + END_TOLERANCE_S + 1.0 / max(fps or 25.0, 1.0):
            raise MediaError(f"segment ends at {end:.3f} s, past the end of {path} ({dur:.3f} s)")
        if num is not None:
            step = (t1 - t0) / num
            targets = [t0 + (i + 0.5) * step for i in range(num)]
        else:
            targets = list(np.arange(t0, t1, 1.0 / (fps or 1.0)))  # fps is set: exactly one of fps, num (checked above)
        if not targets:
            return []
        if t0 > 0 and stream.time_base:
            c.seek(int(t0 / stream.time_base), stream=stream, backward=True)
        out: list[tuple[float, np.ndarray]] = []
        k = 0
        prev = None
        try:
            for frame in c.decode(stream):
                t = frame.time if frame.time is not None else 0.0
                while k < len(targets) and t > targets[k] + 1e-9:
                    if prev is not None:
                        out.append((targets[k], prev.to_ndarray(format="rgb24")))
                    k += 1
                if k >= len(targets):
                    break
                prev = frame
        except av.error.FFmpegError as exc:
            if prev is None:
                raise MediaError(f"cannot decode video of {path}: {exc}") from None
        while k < len(targets) and prev is not None and targets[k] <= t1:
            out.append((targets[k], prev.to_ndarray(format="rgb24")))
            k += 1
        return out
