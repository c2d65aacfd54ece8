"""Word timings for a known transcript: forced alignment with PocketSphinx, offline.

The ``pocketsphinx`` wheel ships CMU's US-English acoustic model and pronouncing dictionary,
so nothing is downloaded. Alignment runs in two passes over the segment's 16 kHz audio: a
word alignment (times and each word's posterior probability, the ``confidence``), then a
phone alignment inside it. Times are seconds from the segment's start, 10 ms frames.

Timings are never invented. The segment is ``failed`` when the decoder cannot fit the words
to the audio, when a word is not in the dictionary (named in the reason), or when speech that
WebRTC voice activity hears is left under the aligner's silence (the transcript misses words:
``max_unaligned_s``). It is ``empty`` when there is no transcript, no speech, or a transcript
the English-only aligner cannot handle (the segment's ``language`` metadata is not English, or
most words are not English dictionary words).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from ambiguity.errors import ExtractorError
from ambiguity.extractors.base import Empty, Extractor, Failure, Result, check_samples
from ambiguity.extractors.speech_activity import speech_frames, speech_runs
from ambiguity.inputs import SegmentInput

RATE = 16000
FRAME_S = 0.01
#: The scalar columns; the list columns hold one value per word (see :func:`columns`).
SUMMARY = ("n_words", "confidence_mean", "confidence_min", "words_s")
WORD_LISTS = ("word_start", "word_end", "word_confidence")
#: Language codes the bundled model handles.
ENGLISH = ("en", "eng", "english", "en-us", "en_us", "en-gb", "en_gb")
#: Wider beams than PocketSphinx's defaults: with them, correct transcripts of synthetic and
#: read speech that the default beams lose ("does not match the grammar") align. A silence
#: probability of 0.5 (default 0.005) lets pauses between words be silence rather than the
#: neighbouring word's tail: 96% of word boundaries within 100 ms against 90% on the test's
#: sentences of separately synthesised words (test_align.py::test_boundaries_within_100ms).
SETTINGS = {"beam": 1e-80, "wbeam": 1e-60, "pbeam": 1e-80, "silprob": 0.5, "dither": True}
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


@dataclass(frozen=True)
class Word:
    """One aligned word: times in seconds from the segment's start."""

    word: str
    start: float
    end: float
    confidence: float
    #: "PH start end" per phone, space-separated triples joined by ";", times in seconds.
    phones: str


@dataclass(frozen=True)
class AlignParams:
    #: Speech heard by voice activity but aligned to silence, in s, beyond which the transcript
    #: is taken not to match the audio.
    max_unaligned_s: float = 0.75
    #: Share of words outside the English dictionary above which the transcript is taken as
    #: not English (empty); below it, the unknown words fail the segment.
    foreign_share: float = 0.25
    #: WebRTC aggressiveness of the unaligned-speech check.
    aggressiveness: int = 2


def words_of(text: str) -> list[str]:
    """The transcript as the dictionary spells words: lower case, punctuation dropped."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def decoder():
    """A PocketSphinx decoder with the bundled US-English model (about 0.5 s to load)."""
    from pocketsphinx import Decoder

    return Decoder(samprate=RATE, bestpath=False, loglevel="FATAL", **SETTINGS)


def to_pcm(x: np.ndarray, rate: int) -> np.ndarray:
    """16 kHz 16-bit samples (the model's rate); telephone audio at 8 kHz is resampled up."""
    if rate != RATE:
        from scipy.signal import resample_poly

        g = np.gcd(rate, RATE)
        x = resample_poly(x, RATE // g, rate // g)
    return (np.clip(x, -1.0, 1.0) * 32767).astype(np.int16)


def align_words(dec, x: np.ndarray, rate: int, text: str, p: AlignParams | None = None) -> list[Word] | Failure | Empty:
    """Align ``text`` to float samples ``x``; the words with times, or why not (see module docstring)."""
    p = p or AlignParams()
    tokens = words_of(text)
    if not tokens:
        return Empty("the transcript has no words")
    unknown = [w for w in tokens if dec.lookup_word(w) is None]
    if unknown and len(unknown) / len(tokens) > p.foreign_share:
        return Empty(
            f"transcript is not English (the aligner's only language): {len(unknown)} of {len(tokens)} words "
            "are not in its dictionary"
        )
    if unknown:
        return Failure(f"word(s) not in the aligner's English dictionary: {', '.join(sorted(set(unknown))[:8])}")
    pcm = to_pcm(x, rate)
    vad_rate = RATE
    flags = speech_frames(pcm.astype(np.float32) / 32767, vad_rate, p.aggressiveness, 30)
    if not speech_runs(flags, 0.03, 0.09, 0.2):
        return Empty("no speech detected (WebRTC voice activity), nothing to align")
    try:
        dec.set_align_text(" ".join(tokens))
        dec.start_utt()
        dec.process_raw(pcm.tobytes(), full_utt=True)
        dec.end_utt()
        if dec.hyp() is None:
            return Failure("the transcript could not be aligned to the audio (no path through its words)")
        segs = [(s.word, s.start_frame, s.end_frame, s.prob) for s in dec.seg()]
        dec.set_alignment()
        dec.start_utt()
        dec.process_raw(pcm.tobytes(), full_utt=True)
        dec.end_utt()
        phones = _phones(dec.get_alignment())
    except RuntimeError as exc:
        return Failure(f"alignment failed: {str(exc).splitlines()[0]}")
    duration = len(pcm) / RATE
    words = [
        Word(w.split("(")[0], a * FRAME_S, min((b + 1) * FRAME_S, duration), float(prob), phones.get(a, ""))
        for w, a, b, prob in segs if w not in ("<sil>", "<s>", "</s>", "[NOISE]", "++NOISE++")
    ]
    if [w.word for w in words] != tokens:
        return Failure("the aligner did not place every transcript word")
    unaligned = _unaligned_speech(flags, words)
    if unaligned > p.max_unaligned_s:
        return Failure(
            f"transcript does not match the audio: {unaligned:.2f} s of speech in a row fall outside the aligned words"
        )
    return words


def _phones(alignment) -> dict[int, str]:
    """"PH start end;..." per word, keyed by the word's first frame."""
    out: dict[int, str] = {}
    for w in alignment or ():
        if w.name.startswith("<"):
            continue
        out[w.start] = ";".join(f"{ph.name} {ph.start * FRAME_S:.2f} {(ph.start + ph.duration) * FRAME_S:.2f}" for ph in w)
    return out


def _unaligned_speech(flags: np.ndarray, words: list[Word]) -> float:
    """The longest stretch (s) of voice-active 30 ms frames outside every aligned word. A word's
    span is widened by 50 ms before and 150 ms after: WebRTC's decision lags the sound's end."""
    centres = (np.arange(len(flags)) + 0.5) * 0.03
    inside = np.zeros(len(flags), dtype=bool)
    for w in words:
        inside |= (centres >= w.start - 0.05) & (centres <= w.end + 0.15)
    longest = run = 0
    for f in flags & ~inside:
        run = run + 1 if f else 0
        longest = max(longest, run)
    return longest * 0.03


def summary(words: list[Word]) -> dict[str, Any]:
    """The group's row: scalar summaries and one list entry per word."""
    conf = np.array([w.confidence for w in words])
    return {
        "n_words": float(len(words)),
        "confidence_mean": float(conf.mean()),
        "confidence_min": float(conf.min()),
        "words_s": float(sum(w.end - w.start for w in words)),
        "words": [w.word for w in words],
        "word_start": [w.start for w in words],
        "word_end": [w.end for w in words],
        "word_confidence": [w.confidence for w in words],
        "word_phones": [w.phones for w in words],
    }


def provenance() -> dict[str, Any]:
    """The aligner and its model, for a group's provenance."""
    from importlib.metadata import version

    return {"aligner": "pocketsphinx", "aligner_version": version("pocketsphinx"), "aligner_model": "en-us (bundled)"}


def segment_language(seg: SegmentInput) -> str | None:
    lang = seg.metadata.get("language") if seg.metadata else None
    return str(lang).strip().lower() if lang else None


class Align(Extractor):
    """Forced alignment of each segment's transcript: one row per segment, words as lists.

    ``ambiguity.stores.words.words(store)`` reads the group as one row per word.
    """

    name = "align"
    modality = "audio"
    version = "1"
    Params = AlignParams
    requires = ("pocketsphinx", "webrtcvad")
    #: Named to run (``extract --extractor NAME``): not part of ``extract --modality audio``.
    auto = False

    def validate(self) -> None:
        if self.params.max_unaligned_s < 0:
            raise ExtractorError(f"max_unaligned_s={self.params.max_unaligned_s} must be >= 0")
        if not 0 <= self.params.foreign_share <= 1:
            raise ExtractorError(f"foreign_share={self.params.foreign_share} must lie in [0, 1]")

    def columns(self) -> list[pa.Field]:
        return (
            [pa.field(c, pa.float64()) for c in SUMMARY]
            + [pa.field("words", pa.list_(pa.string()))]
            + [pa.field(c, pa.list_(pa.float64())) for c in WORD_LISTS]
            + [pa.field("word_phones", pa.list_(pa.string()))]
        )

    def setup(self) -> None:
        self._dec = decoder()

    def extra_provenance(self) -> dict[str, Any]:
        return provenance()

    def align(self, seg: SegmentInput) -> list[Word] | Failure | Empty:
        """The segment's words with timings, or why not."""
        if not getattr(self, "_dec", None):
            self.setup()
        lang = segment_language(seg)
        if lang and lang not in ENGLISH:
            return Empty(f"segment language is {lang!r}; the aligner handles English only")
        if not seg.transcript or not seg.transcript.strip():
            return Empty("segment has no transcript to align")
        try:
            x = seg.audio(RATE)
        except Exception as exc:  # decoding problems are per segment
            return Failure(str(exc).splitlines()[0])
        checked = check_samples(x, RATE, 0.1, "alignment")
        if isinstance(checked, (Failure, Empty)):
            return checked
        return align_words(self._dec, checked, RATE, seg.transcript, self.params)

    def process(self, batch: Sequence[SegmentInput]) -> list[Result]:
        out: list[Result] = []
        for seg in batch:
            words = self.align(seg)
            out.append(words if isinstance(words, (Failure, Empty)) else summary(words))
        return out
