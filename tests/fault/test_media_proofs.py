"""Proofs for the media rows of docs/reliability.md: six distinct channels are averaged to mono;
a segment of a long file decodes only its own span (decoded samples counted); variable-frame-rate
video gives the frame shown at each target time (against a reference decode with PyAV)."""

from __future__ import annotations

import wave
from fractions import Fraction

import av
import numpy as np
import pytest

from ambiguity import media
from ambiguity.inputs import SegmentInput
from ambiguity.media import AudioBatch, sample_frames

RATE = 16000
FREQS = np.array([220.0, 330.0, 550.0, 770.0, 1210.0, 1430.0])  # one per channel, none a harmonic of another
AMPS = np.array([0.9, 0.1, 0.5, 0.3, 0.7, 0.2])


# In 5.1 the 4th channel is LFE, which AAC encoders low-pass at ~120 Hz: it gets a low tone there.
FREQS_51 = np.where(np.arange(6) == 3, 70.0, FREQS)


def _channels(seconds=1.0, rate=RATE, freqs=FREQS):
    t = np.arange(int(seconds * rate)) / rate
    return (AMPS[:, None] * np.sin(2 * np.pi * freqs[:, None] * t)).astype(np.float32)  # (6, n)


def _amplitudes(x, rate=RATE, freqs=FREQS):
    """Amplitude of each frequency component (a window of whole periods: exact bins)."""
    spec = np.abs(np.fft.rfft(x)) * 2 / len(x)
    return np.array([spec[int(round(f * len(x) / rate))] for f in freqs])


def test_six_distinct_channels_are_averaged_to_mono_wav(tmp_path):
    x = _channels()
    q = np.round(np.clip(x, -1, 1) * 32767).astype("<i2")
    path = tmp_path / "six.wav"
    with wave.open(str(path), "wb") as w:  # interleaved s16: the packed path of the decoder
        w.setnchannels(6)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(q.T.tobytes())
    mono = SegmentInput("six", str(path)).audio(RATE)
    # the reference: the mean of the six channels as stored (s16 / 32768)
    np.testing.assert_allclose(mono, (q.astype(np.float32) / 32768.0).mean(axis=0), atol=1e-7, rtol=0)
    # every channel is in the mix at 1/6 of its amplitude; channel 0 alone would show only 220 Hz
    np.testing.assert_allclose(_amplitudes(mono), AMPS / 6, atol=2e-4)


def test_six_distinct_channels_are_averaged_to_mono_aac(tmp_path):
    # 5.1 AAC: decoded as planar float, the other path of the downmix
    rate = 48000
    x = _channels(2.0, rate, FREQS_51)
    path = tmp_path / "six.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=rate)
        s.layout = "5.1"
        n = 1024
        for i in range(0, x.shape[1] - n + 1, n):
            f = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, i : i + n]), format="fltp", layout="5.1")
            f.sample_rate, f.pts, f.time_base = rate, i, Fraction(1, rate)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    mono = SegmentInput("six", str(path), start_s=0.5, end_s=1.5).audio(rate)
    assert len(mono) == rate
    # lossy codec: amplitudes within 5% (the codec's error at these levels is ~1%)
    np.testing.assert_allclose(_amplitudes(mono, rate, FREQS_51), AMPS / 6, rtol=0.05)


class _Counting:
    """Wraps media._open: counts the audio samples each open decodes."""

    def __init__(self):
        self.opens: list[int] = []
        self._real = media._open

    def __call__(self, path):
        container = self._real(path)
        self.opens.append(0)
        k = len(self.opens) - 1
        counter = self
        decode = container.decode

        class Proxy:
            def __getattr__(self, name):
                return getattr(container, name)

            def __enter__(self):
                container.__enter__()
                return self

            def __exit__(self, *exc):
                return container.__exit__(*exc)

            def decode(self, *a, **kw):
                for frame in decode(*a, **kw):
                    counter.opens[k] += frame.samples
                    yield frame

        return Proxy()


def test_a_segment_of_a_two_hour_file_decodes_only_its_span(bad, monkeypatch):
    path = str(bad["two_hours"])  # 8 kHz PCM, 2 h = 57.6 M samples
    counting = _Counting()
    monkeypatch.setattr(media, "_open", counting)
    segs = [SegmentInput(f"m{m}", path, start_s=m * 60.0, end_s=m * 60.0 + 2.0) for m in (1, 50, 119)]
    batch = AudioBatch(segs)
    got = [batch(s, 8000) for s in segs]
    assert len(counting.opens) == 3, counting.opens  # one decode per span: the segments are minutes apart
    for n in counting.opens:
        # 2 s = 16000 samples, plus at most one packet either side (PCM packets here are <= 4096 samples)
        assert 16000 <= n <= 16000 + 2 * 4096, counting.opens
    with wave.open(path) as w:  # reference: the same samples read by the standard library
        for s, x in zip(segs, got, strict=True):
            w.setpos(int(s.start_s * 8000))
            ref = np.frombuffer(w.readframes(16000), "<i2").astype(np.float32) / 32768.0
            np.testing.assert_array_equal(x, ref)


def _reference_frames(path):
    """Every frame with its presentation time, decoded from the start by PyAV."""
    with av.open(path) as c:
        return [(float(f.time), f.to_ndarray(format="rgb24")) for f in c.decode(c.streams.video[0])]


@pytest.mark.parametrize("start,end,fps", [(0.0, 1.0, 10), (0.55, 1.9, 7), (1.0, 2.0, 25)])
def test_variable_frame_rate_gives_the_frame_shown_at_each_time(bad, start, end, fps):
    path = str(bad["vfr"])  # frames at 0, 0.1, 0.12, 0.22, 0.24, ... (gaps of 100 and 20 ms)
    ref = _reference_frames(path)
    times = np.array([t for t, _ in ref])
    assert len(set(np.round(np.diff(times), 3))) == 2  # really variable
    got = sample_frames(path, start, end, fps=fps)
    targets = np.arange(start, end, 1.0 / fps)
    assert [t for t, _ in got] == pytest.approx(list(targets))
    for t, img in got:
        shown = int(np.searchsorted(times, t + 1e-9, side="right")) - 1  # the last frame with pts <= t
        np.testing.assert_array_equal(img, ref[shown][1], err_msg=f"t={t}: not the frame shown since {times[shown]}")
