"""Voice activity on speech placed at known times (espeak-ng, see speech_synth.py).

The truth is the construction: where the synthesised samples were put. WebRTC's decision
lags the end of speech (a hangover of about 0.1-0.2 s), so ends get a wider tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ambiguity.errors import ExtractorError
from ambiguity.extractors.base import Empty
from ambiguity.inputs import SegmentInput

pytest.importorskip("webrtcvad")

from speech_synth import RATE, espeak, needs_espeak, trimmed, write_wav  # noqa: E402

from ambiguity.extractors.speech_activity import COLUMNS, SpeechActivity, speech_runs  # noqa: E402


def placed(parts: list[tuple[float, np.ndarray]], total: float) -> np.ndarray:
    """Speech pieces at given start times in ``total`` seconds of faint noise."""
    x = np.random.default_rng(0).normal(0, 1e-4, int(total * RATE))
    for t, piece in parts:
        x[int(t * RATE):int(t * RATE) + len(piece)] += piece
    return x.astype(np.float32)


@needs_espeak
def test_runs_and_silences_match_where_speech_was_put():
    a = trimmed(espeak("the quick brown fox jumps over the lazy dog"))
    b = trimmed(espeak("she sells sea shells"))
    a_end = 0.7 + len(a) / RATE
    b_start = a_end + 1.0
    b_end = b_start + len(b) / RATE
    total = b_end + 1.2
    x = placed([(0.7, a), (b_start, b)], total)
    [r] = SpeechActivity().process([SegmentInput("s", None, _audio_loader=lambda seg, rate: x)])
    assert isinstance(r, dict) and set(r) == set(COLUMNS)
    assert r["n_speech_runs"] == 2
    assert r["leading_silence_s"] == pytest.approx(0.7, abs=0.06)
    assert r["trailing_silence_s"] == pytest.approx(1.2, abs=0.25)
    assert r["pause_mean_s"] == pytest.approx(1.0, abs=0.25)
    truth = (a_end - 0.7) + (b_end - b_start)
    assert r["speech_s"] == pytest.approx(truth, abs=0.5)
    assert r["speech_ratio"] == pytest.approx(r["speech_s"] / total)
    assert r["speech_run_max_s"] >= r["speech_run_mean_s"]


def test_silence_is_empty():
    quiet = np.random.default_rng(1).normal(0, 1e-4, 2 * RATE).astype(np.float32)
    r = SpeechActivity().process([
        SegmentInput("q", None, _audio_loader=lambda seg, rate: quiet),
        SegmentInput("z", None, _audio_loader=lambda seg, rate: np.zeros(RATE, np.float32)),
    ])
    assert isinstance(r[0], Empty) and "no speech" in r[0].reason
    assert isinstance(r[1], Empty) and "digital silence" in r[1].reason


def test_speech_runs_from_the_definition():
    # frames of 30 ms: speech at 0-2, 4-5 (gap 0.06 s < 0.2: bridged), 20 (one frame: dropped),
    # 30-39 (gap 0.45 s: a new run)
    flags = np.zeros(50, bool)
    flags[[0, 1, 2, 4, 5, 20, *range(30, 40)]] = True
    runs = speech_runs(flags, 0.03, 0.09, 0.2)
    assert [(round(a, 2), round(b, 2)) for a, b in runs] == [(0.0, 0.18), (0.9, 1.2)]


@needs_espeak
def test_telephone_rate_file(tmp_path):
    """An 8 kHz file is measured at the group's 16 kHz (decoded and resampled by the runner's decoder)."""
    from scipy.signal import resample_poly

    a = trimmed(espeak("please call stella"))
    x = placed([(0.5, a)], 0.5 + len(a) / RATE + 0.8)
    path = write_wav(tmp_path / "tel.wav", resample_poly(x, 1, 2), 8000)
    [r] = SpeechActivity().process([SegmentInput("t", path)])
    assert isinstance(r, dict)
    assert r["leading_silence_s"] == pytest.approx(0.5, abs=0.06) and r["n_speech_runs"] == 1
    assert math.isnan(r["pause_mean_s"])


@pytest.mark.parametrize("params", [{"sample_rate": 22050}, {"frame_ms": 25}, {"aggressiveness": 4}])
def test_bad_parameters_are_refused(params):
    with pytest.raises(ExtractorError):
        SpeechActivity(**params)
