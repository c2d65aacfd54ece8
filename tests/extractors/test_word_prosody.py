"""Word-level prosody on sounds whose pitch and level per word are known by construction.

Tones: harmonic complexes at chosen fundamentals and amplitudes, so each "word" has a known
pitch (its f0) and a known level (10 log10 of its mean square over (2e-5 Pa)^2, the definition
Praat's intensity follows). Speech: espeak-ng words at chosen pitch settings and gaps.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ambiguity.extractors.base import Empty, Failure
from ambiguity.inputs import SegmentInput

pytest.importorskip("parselmouth")
pytest.importorskip("pocketsphinx")

from speech_synth import RATE, assemble, needs_espeak  # noqa: E402

from ambiguity.extractors.align import Word  # noqa: E402
from ambiguity.extractors.word_prosody import SUMMARY, WordProsody, per_word, summarise, syllables  # noqa: E402

HARMONICS = np.arange(1, 6)


def tone(f0: float, amp: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return amp * sum(np.sin(2 * np.pi * f0 * h * t) / h for h in HARMONICS)


def level_db(amp: float) -> float:
    """Mean square of amp * sum_h sin(h w t)/h is amp^2 * sum(1/h^2) / 2; dB re (2e-5)^2."""
    return 10 * math.log10(amp**2 * np.sum(1.0 / HARMONICS**2) / 2 / 4e-10)


def tones(spec: list[tuple[float, float]], dur=0.4, gap=0.3):
    x, words, t = [np.zeros(int(gap * RATE))], [], gap
    for k, (f0, amp) in enumerate(spec):
        x += [tone(f0, amp, dur), np.zeros(int(gap * RATE))]
        words.append(Word(f"w{k}", t, t + dur, 1.0, "AH 0 0"))
        t += dur + gap
    y = np.concatenate(x) + np.random.default_rng(0).normal(0, 1e-5, sum(map(len, x)))
    return y, words


def test_pitch_and_intensity_per_word_match_the_construction():
    spec = [(120.0, 0.05), (180.0, 0.2), (260.0, 0.1), (95.0, 0.02)]
    x, words = tones(spec)
    rows = per_word(x, RATE, words)
    for r, (f0, amp) in zip(rows, spec, strict=True):
        assert r["pitch"] == pytest.approx(f0, rel=0.01)
        # edge frames see part of the silence around the word: slightly below the steady level
        assert r["intensity"] == pytest.approx(level_db(amp), abs=0.6)
    # differences between words cancel the edge effect
    assert rows[1]["intensity"] - rows[0]["intensity"] == pytest.approx(20 * math.log10(0.2 / 0.05), abs=0.2)
    s = summarise(rows, 0.15)
    assert (s["pitch_peak_word"], s["pitch_peak_index"], s["pitch_peak_position"]) == ("w2", 2.0, pytest.approx(2 / 3))
    assert (s["intensity_peak_word"], s["intensity_peak_index"]) == ("w1", 1.0)
    assert s["word_pitch_mean"] == pytest.approx(np.mean([f for f, _ in spec]), rel=0.01)
    assert s["word_pitch_sd"] == pytest.approx(np.std([f for f, _ in spec], ddof=1), rel=0.03)


def test_unvoiced_word_has_no_pitch_and_is_not_the_peak():
    x, words = tones([(150.0, 0.1), (200.0, 0.1)])
    noise = np.random.default_rng(2).normal(0, 0.05, int(0.4 * RATE))
    a = int(words[1].start * RATE)
    x[a:a + len(noise)] = noise  # the second word is now a hiss
    rows = per_word(x, RATE, words)
    assert math.isnan(rows[1]["pitch"]) and rows[0]["pitch"] == pytest.approx(150, rel=0.01)
    assert summarise(rows, 0.15)["pitch_peak_word"] == "w0"


def test_rate_and_pauses_from_the_definition():
    words = [
        Word("a", 0.0, 0.5, 1, "AH 0 0.5"),
        Word("quick", 0.55, 1.0, 1, "K 0 0;W 0 0;IH 0 0;K 0 0"),  # gap 0.05: no pause
        Word("banana", 1.5, 2.0, 1, "B 0 0;AH 0 0;N 0 0;AE 0 0;N 0 0;AH 0 0"),  # gap 0.5
        Word("ok", 2.3, 2.5, 1, "OW 0 0;K 0 0;EY 0 0"),  # gap 0.3
    ]
    assert [syllables(w) for w in words] == [1, 1, 3, 2]
    rows = [{"word": w.word, "start": w.start, "end": w.end, "pitch": 100.0, "intensity": 60.0, "syllables": syllables(w)} for w in words]
    s = summarise(rows, 0.15)
    assert s["words_per_s"] == pytest.approx(4 / 2.5) and s["syllables_per_s"] == pytest.approx(7 / 2.5)
    assert (s["n_pauses"], s["pause_total_s"], s["pause_max_s"]) == (2, pytest.approx(0.8), pytest.approx(0.5))
    assert s["pause_mean_s"] == pytest.approx(0.4)


@needs_espeak
def test_speech_through_the_extractor():
    """Separately synthesised words: the one spoken at espeak's highest pitch setting is the
    pitch peak; the one long gap (0.5 s) is the one pause."""
    words = ["please", "call", "stella", "today"]
    gaps = [0.02, 0.5, 0.02]
    s = assemble(words, gaps, pitches=[50, 50, 95, 50])  # about 90 Hz, and 150 Hz for "stella"
    ex = WordProsody()
    [r] = ex.process([SegmentInput("s", None, transcript_value=" ".join(words), _audio_loader=lambda seg, rate: s.audio)])
    assert isinstance(r, dict), r
    assert set(SUMMARY) <= set(r)
    assert r["pitch_peak_word"] == "stella"
    assert r["n_pauses"] == 1 and r["pause_mean_s"] == pytest.approx(0.5, abs=0.1)
    assert r["words_per_s"] == pytest.approx(4 / (s.ends[-1] - s.starts[0]), rel=0.1)
    assert len(r["word_pitch"]) == 4 and all(np.isfinite(r["word_pitch"]))


def test_segments_without_words_pass_the_reason_on():
    ex = WordProsody()
    quiet = np.random.default_rng(0).normal(0, 1e-4, RATE).astype(np.float32)
    got = ex.process([
        SegmentInput("none", None, transcript_value=None),
        SegmentInput("quiet", None, transcript_value="hello there", _audio_loader=lambda seg, rate: quiet),
        SegmentInput("oov", None, transcript_value="hello there my zorblax friend", _audio_loader=lambda seg, rate: quiet + 0.1),
    ])
    assert isinstance(got[0], Empty) and isinstance(got[1], Empty) and isinstance(got[2], Failure)
