"""Prosody and timing word by word: pitch and intensity over each aligned word, rate and pauses.

Words come from forced alignment of the segment's transcript (:mod:`ambiguity.extractors.align`,
so a segment without words is failed or empty for the same reason). Praat (parselmouth) measures
the whole segment once; each word's values are Praat's over the word's span: ``Get mean`` of the
pitch in Hertz (unvoiced frames are left out, as Praat does), and the energy average of the
intensity frames inside it (digital silence, -300 dB in Praat, left out). Syllables are the
vowels of the word's phones (CMU dictionary: vowel phones carry the syllable).

The group's numeric columns are segment summaries that ``compare`` can test; the per-word
values are stored as lists (``word_pitch``, ``word_intensity``) and, from Python,
:func:`per_word` gives them for any samples and words.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from ambiguity.errors import ExtractorError
from ambiguity.extractors.align import RATE, Align, Word, provenance
from ambiguity.extractors.base import Empty, Extractor, Failure, Result
from ambiguity.extractors.prosody import SILENT_DB  # Praat's silent frames: one definition
from ambiguity.inputs import SegmentInput

#: CMU/ARPAbet vowels: one syllable nucleus each.
VOWELS = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())
SUMMARY = (
    "n_words", "words_per_s", "syllables_per_s", "n_pauses", "pause_mean_s", "pause_max_s", "pause_total_s",
    "word_pitch_mean", "word_pitch_sd", "word_intensity_mean", "word_intensity_sd",
    "pitch_peak_index", "pitch_peak_position", "intensity_peak_index", "intensity_peak_position",
)


@dataclass(frozen=True)
class WordProsodyParams:
    pitch_floor: float = 75.0
    pitch_ceiling: float = 600.0
    #: A silence between two words at least this long is a pause, in s.
    min_pause_s: float = 0.15
    #: As in ``align``: see AlignParams.
    max_unaligned_s: float = 0.75
    foreign_share: float = 0.25


def syllables(word: Word) -> int:
    """Vowel phones of the word's alignment (at least one per word)."""
    phones = [p.split()[0] for p in word.phones.split(";") if p]
    return max(1, sum(ph in VOWELS for ph in phones))


def per_word(x: np.ndarray, rate: int, words: Sequence[Word], pitch_floor: float = 75.0, pitch_ceiling: float = 600.0) -> list[dict[str, Any]]:
    """Each word's pitch (Hz, NaN if unvoiced) and intensity (dB, energy mean) over its span."""
    import parselmouth
    from parselmouth.praat import call

    snd = parselmouth.Sound(x.astype(np.float64), sampling_frequency=rate)
    pitch = call(snd, "To Pitch", 0.0, pitch_floor, pitch_ceiling)
    intensity = call(snd, "To Intensity", pitch_floor, 0.0, "yes")
    db = intensity.values[0]
    times = intensity.xs()
    out = []
    for w in words:
        f0 = call(pitch, "Get mean", w.start, w.end, "Hertz")
        inside = db[(times >= w.start) & (times <= w.end)]
        inside = inside[inside > SILENT_DB]
        out.append({
            "word": w.word, "start": w.start, "end": w.end,
            "pitch": float(f0) if f0 is not None and math.isfinite(f0) else float("nan"),
            "intensity": float(10 * np.log10(np.mean(10 ** (inside / 10)))) if inside.size else float("nan"),
            "syllables": syllables(w),
        })
    return out


def _peak(values: np.ndarray) -> tuple[float, float]:
    """Index of the largest finite value and its position in the segment's words (0 first, 1 last)."""
    if not np.isfinite(values).any():
        return float("nan"), float("nan")
    k = int(np.nanargmax(values))
    return float(k), k / (len(values) - 1) if len(values) > 1 else 0.0


def summarise(rows: list[dict[str, Any]], min_pause_s: float) -> dict[str, Any]:
    """The group's row from per-word values."""
    words = [r["word"] for r in rows]
    pitch = np.array([r["pitch"] for r in rows])
    loud = np.array([r["intensity"] for r in rows])
    span = rows[-1]["end"] - rows[0]["start"]
    gaps = np.array([rows[k + 1]["start"] - rows[k]["end"] for k in range(len(rows) - 1)])
    pauses = gaps[gaps >= min_pause_s - 1e-9]
    p_idx, p_pos = _peak(pitch)
    i_idx, i_pos = _peak(loud)

    def sd(v: np.ndarray) -> float:
        v = v[np.isfinite(v)]
        return float(v.std(ddof=1)) if v.size > 1 else float("nan")

    def mean(v: np.ndarray) -> float:
        v = v[np.isfinite(v)]
        return float(v.mean()) if v.size else float("nan")

    return {
        "n_words": float(len(rows)),
        "words_per_s": len(rows) / span,
        "syllables_per_s": sum(r["syllables"] for r in rows) / span,
        "n_pauses": float(pauses.size),
        "pause_mean_s": float(pauses.mean()) if pauses.size else float("nan"),
        "pause_max_s": float(pauses.max()) if pauses.size else float("nan"),
        "pause_total_s": float(pauses.sum()),
        "word_pitch_mean": mean(pitch),
        "word_pitch_sd": sd(pitch),
        "word_intensity_mean": mean(loud),
        "word_intensity_sd": sd(loud),
        "pitch_peak_index": p_idx,
        "pitch_peak_position": p_pos,
        "intensity_peak_index": i_idx,
        "intensity_peak_position": i_pos,
        "pitch_peak_word": None if math.isnan(p_idx) else words[int(p_idx)],
        "intensity_peak_word": None if math.isnan(i_idx) else words[int(i_idx)],
        "word_pitch": [float(v) for v in pitch],
        "word_intensity": [float(v) for v in loud],
    }


class WordProsody(Extractor):
    """Word-level prosody and timing (see module docstring); needs a transcript per segment."""

    name = "word_prosody"
    modality = "audio"
    version = "1"
    Params = WordProsodyParams
    requires = ("pocketsphinx", "webrtcvad", "parselmouth")
    #: Named to run (``extract --extractor NAME``): not part of ``extract --modality audio``.
    auto = False

    def validate(self) -> None:
        p = self.params
        if not 0 < p.pitch_floor < p.pitch_ceiling:
            raise ExtractorError(f"pitch_floor={p.pitch_floor} must be positive and below pitch_ceiling={p.pitch_ceiling}")
        if p.min_pause_s < 0:
            raise ExtractorError(f"min_pause_s={p.min_pause_s} must be >= 0")

    def columns(self) -> list[pa.Field]:
        return (
            [pa.field(c, pa.float64()) for c in SUMMARY]
            + [pa.field("pitch_peak_word", pa.string()), pa.field("intensity_peak_word", pa.string())]
            + [pa.field("word_pitch", pa.list_(pa.float64())), pa.field("word_intensity", pa.list_(pa.float64()))]
        )

    def setup(self) -> None:
        p = self.params
        self._align = Align(max_unaligned_s=p.max_unaligned_s, foreign_share=p.foreign_share)
        self._align.setup()

    def extra_provenance(self) -> dict[str, Any]:
        return provenance()

    def measure(self, seg: SegmentInput) -> Result:
        if not getattr(self, "_align", None):
            self.setup()
        words = self._align.align(seg)
        if isinstance(words, (Failure, Empty)):
            return words
        x = seg.audio(RATE)
        rows = per_word(x, RATE, words, self.params.pitch_floor, self.params.pitch_ceiling)
        return summarise(rows, self.params.min_pause_s)

    def process(self, batch: Sequence[SegmentInput]) -> list[Result]:
        return [self.measure(seg) for seg in batch]

