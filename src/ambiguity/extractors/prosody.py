"""Praat prosody through parselmouth: pitch, jitter, shimmer, HNR, intensity, speaking rate.

Every measure is a Praat command with Praat's defaults unless a parameter says
otherwise, so values equal a Praat script run on the same samples (tested).
Intensity statistics use only non-silent frames: Praat reports -300 dB on
digital silence, which would otherwise drag min and mean down.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ambiguity.errors import ExtractorError
from ambiguity.extractors.base import Empty, Failure, Result, check_samples
from ambiguity.extractors.segment_audio import SegmentAudio

COLUMNS = (
    "pitch_mean", "pitch_min", "pitch_max", "jitter_local", "shimmer_local", "hnr_mean",
    "intensity_mean", "intensity_min", "intensity_max", "speaking_rate",
)
#: Frames at or below this are silence (Praat writes -300 dB there, -200 dB for unvoiced HNR).
SILENT_DB = -200.0


@dataclass(frozen=True)
class ProsodyParams:
    pitch_floor: float = 75.0
    pitch_ceiling: float = 600.0
    sample_rate: int = 16000
    #: de Jong & Wempe (2009): intensity threshold below the 99th percentile, in dB.
    silence_db: float = -25.0
    #: de Jong & Wempe (2009): minimum intensity dip between syllable nuclei, in dB.
    min_dip_db: float = 2.0
    #: de Jong & Wempe (2009): minimum pause length, in s.
    min_pause_s: float = 0.3
    #: Shorter segments fail: Praat needs a few pitch periods at the floor.
    min_duration_s: float = 0.1


class Prosody(SegmentAudio):
    """Praat prosody: 10 scalar features per segment (see module docstring)."""

    name = "prosody"
    version = "1"
    Params = ProsodyParams
    requires = ("parselmouth",)
    what = "prosody"

    def validate(self) -> None:
        p = self.params
        if not 0 < p.pitch_floor < p.pitch_ceiling:
            raise ExtractorError(f"pitch_floor={p.pitch_floor} must be positive and below pitch_ceiling={p.pitch_ceiling}")
        if p.sample_rate < 8000:
            raise ExtractorError(f"sample_rate={p.sample_rate} is too low for pitch analysis (use >= 8000)")

    def columns(self) -> list[pa.Field]:
        return [pa.field(c, pa.float64()) for c in COLUMNS]

    def min_duration(self) -> float:
        return self.params.min_duration_s

    def measure_samples(self, x: np.ndarray) -> Result:
        return measure_prosody(x, self.params.sample_rate, self.params)

    def measure(self, x: np.ndarray, rate: int) -> Result:
        """Prosody of samples already in memory, with the same checks as a segment's."""
        checked = check_samples(x, rate, self.params.min_duration_s, "prosody")
        return checked if isinstance(checked, (Failure, Empty)) else measure_prosody(checked, rate, self.params)


def _undef(v: float) -> float:
    return float("nan") if v is None or not math.isfinite(v) else float(v)


def measure_prosody(x: np.ndarray, rate: int, p: ProsodyParams) -> dict[str, float]:
    import parselmouth
    from parselmouth.praat import call

    snd = parselmouth.Sound(x.astype(np.float64), sampling_frequency=rate)
    pitch = call(snd, "To Pitch", 0.0, p.pitch_floor, p.pitch_ceiling)
    pp = call(snd, "To PointProcess (periodic, cc)", p.pitch_floor, p.pitch_ceiling)
    harm = call(snd, "To Harmonicity (cc)", 0.01, p.pitch_floor, 0.1, 1.0)
    hnr = harm.values[0]
    hnr = hnr[hnr > SILENT_DB]  # unvoiced frames are -200 dB
    intensity = call(snd, "To Intensity", p.pitch_floor, 0.0, "yes")
    db = intensity.values[0]
    db = db[db > SILENT_DB]
    n_points = call(pp, "Get number of points")
    return {
        "pitch_mean": _undef(call(pitch, "Get mean", 0, 0, "Hertz")),
        "pitch_min": _undef(call(pitch, "Get minimum", 0, 0, "Hertz", "Parabolic")),
        "pitch_max": _undef(call(pitch, "Get maximum", 0, 0, "Hertz", "Parabolic")),
        "jitter_local": _undef(call(pp, "Get jitter (local)", 0, 0, 0.0001, 0.02, 1.3)) if n_points > 1 else float("nan"),
        "shimmer_local": _undef(call([snd, pp], "Get shimmer (local)", 0, 0, 0.0001, 0.02, 1.3, 1.6)) if n_points > 1 else float("nan"),
        "hnr_mean": float(hnr.mean()) if hnr.size else float("nan"),
        # Energy average, as Praat's "Get mean ... energy", over non-silent frames.
        "intensity_mean": float(10 * np.log10(np.mean(10 ** (db / 10)))) if db.size else float("nan"),
        "intensity_min": float(db.min()) if db.size else float("nan"),
        "intensity_max": float(db.max()) if db.size else float("nan"),
        "speaking_rate": speaking_rate(snd, p),
    }


def speaking_rate(snd, p: ProsodyParams) -> float:
    """Syllable nuclei per second (de Jong & Wempe 2009, Praat script v1 logic)."""
    from parselmouth.praat import call

    duration = call(snd, "Get total duration")
    intensity = call(snd, "To Intensity", 50, 0, "yes")
    min_int = call(intensity, "Get minimum", 0, 0, "Parabolic")
    max_int = call(intensity, "Get maximum", 0, 0, "Parabolic")
    max99 = call(intensity, "Get quantile", 0, 0, 0.99)
    if not all(map(math.isfinite, (min_int, max_int, max99))):
        return float("nan")
    threshold = max(max99 + p.silence_db, min_int)
    threshold3 = p.silence_db - (max_int - max99)
    with warnings.catch_warnings():  # Praat warns on flat-intensity sounds; the count is still right
        warnings.simplefilter("ignore")
        textgrid = call(intensity, "To TextGrid (silences)", threshold3, p.min_pause_s, 0.1, "silent", "sounding")
    curve = call(call(intensity, "Down to Matrix"), "To Sound (slice)", 1)
    points = call(curve, "To PointProcess (extrema)", "Left", "yes", "no", "Sinc70")
    peaks: list[tuple[float, float]] = []
    for i in range(call(points, "Get number of points")):
        t = call(points, "Get time from index", i + 1)
        v = call(curve, "Get value at time", t, "Cubic")
        if v > threshold:
            peaks.append((t, v))
    valid = []
    if peaks:
        cur_t, cur_v = peaks[0]
        for k in range(len(peaks) - 1):
            nxt_t = peaks[k + 1][0]
            dip = call(intensity, "Get minimum", cur_t, nxt_t, "None")
            if abs(cur_v - dip) > p.min_dip_db:
                valid.append(peaks[k][0])
            cur_t = nxt_t
            cur_v = call(intensity, "Get value at time", nxt_t, "Cubic")
    pitch = call(snd, "To Pitch (ac)", 0.02, 30, 4, "no", 0.03, 0.25, 0.01, 0.35, 0.25, 450)
    voiced = 0
    for t in valid:
        interval = call(textgrid, "Get interval at time", 1, t)
        label = call(textgrid, "Get label of interval", 1, interval)
        if math.isfinite(call(pitch, "Get value at time", t, "Hertz", "Linear")) and label == "sounding":
            voiced += 1
    return voiced / duration
