"""Voice activity: how much of a segment is speech, in how many runs, and the silence around it.

WebRTC's voice activity detector (the ``webrtcvad-wheels`` build of Google's GMM detector: no
weights to download) labels 30 ms frames; runs of speech shorter than ``min_speech_s`` are
dropped and gaps shorter than ``min_gap_s`` are bridged, so one pause between words does not
split a sentence. The feature group is ``speech_activity`` (``vad`` is valence/arousal/dominance).
A segment with no speech frame is ``empty``: speech extractors have nothing to measure there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ambiguity.errors import ExtractorError
from ambiguity.extractors.base import Empty, Result
from ambiguity.extractors.segment_audio import SegmentAudio

COLUMNS = (
    "speech_ratio", "speech_s", "n_speech_runs", "speech_run_mean_s", "speech_run_max_s",
    "pause_mean_s", "leading_silence_s", "trailing_silence_s",
)
#: The rates and frame lengths the WebRTC detector accepts.
RATES = (8000, 16000, 32000, 48000)
FRAME_MS = (10, 20, 30)


@dataclass(frozen=True)
class SpeechActivityParams:
    #: 0 (least aggressive: more frames are speech) .. 3 (most aggressive).
    aggressiveness: int = 2
    frame_ms: int = 30
    sample_rate: int = 16000
    #: Speech runs shorter than this are noise; gaps shorter than this are within a run.
    min_speech_s: float = 0.09
    min_gap_s: float = 0.2


def speech_frames(x: np.ndarray, rate: int, aggressiveness: int = 2, frame_ms: int = 30) -> np.ndarray:
    """One bool per whole ``frame_ms`` frame of float samples in [-1, 1]: WebRTC's speech decision."""
    import webrtcvad

    vad = webrtcvad.Vad(aggressiveness)
    n = rate * frame_ms // 1000
    pcm = (np.clip(x, -1.0, 1.0) * 32767).astype("<i2")
    return np.array([vad.is_speech(pcm[i:i + n].tobytes(), rate) for i in range(0, len(pcm) - n + 1, n)], dtype=bool)


def speech_runs(flags: np.ndarray, frame_s: float, min_speech_s: float, min_gap_s: float) -> list[tuple[float, float]]:
    """(start, end) seconds of speech runs: gaps under ``min_gap_s`` bridged, runs under ``min_speech_s`` dropped."""
    runs: list[list[float]] = []
    for i in np.flatnonzero(flags):
        start, end = i * frame_s, (i + 1) * frame_s
        if runs and start - runs[-1][1] < min_gap_s - 1e-9:
            runs[-1][1] = end
        else:
            runs.append([start, end])
    return [(a, b) for a, b in runs if b - a >= min_speech_s - 1e-9]


def activity(runs: list[tuple[float, float]], duration: float) -> dict[str, float]:
    """The group's features from speech runs in a clip of ``duration`` seconds."""
    lengths = np.array([b - a for a, b in runs])
    pauses = np.array([runs[k + 1][0] - runs[k][1] for k in range(len(runs) - 1)])
    return {
        "speech_ratio": float(lengths.sum() / duration),
        "speech_s": float(lengths.sum()),
        "n_speech_runs": float(len(runs)),
        "speech_run_mean_s": float(lengths.mean()),
        "speech_run_max_s": float(lengths.max()),
        "pause_mean_s": float(pauses.mean()) if pauses.size else float("nan"),
        "leading_silence_s": float(runs[0][0]),
        "trailing_silence_s": float(max(duration - runs[-1][1], 0.0)),
    }


class SpeechActivity(SegmentAudio):
    """Speech ratio, speech runs and leading/trailing silence from WebRTC voice activity."""

    name = "speech_activity"
    version = "1"
    Params = SpeechActivityParams
    requires = ("webrtcvad",)
    #: Named to run (``extract --extractor NAME``): not part of ``extract --modality audio``.
    auto = False
    what = "voice activity"
    min_seconds = 0.03

    def validate(self) -> None:
        p = self.params
        if p.sample_rate not in RATES:
            raise ExtractorError(f"sample_rate={p.sample_rate}: the WebRTC detector takes {', '.join(map(str, RATES))}")
        if p.frame_ms not in FRAME_MS:
            raise ExtractorError(f"frame_ms={p.frame_ms}: the WebRTC detector takes 10, 20 or 30")
        if p.aggressiveness not in (0, 1, 2, 3):
            raise ExtractorError(f"aggressiveness={p.aggressiveness}: choose 0, 1, 2 or 3")

    def columns(self) -> list[pa.Field]:
        return [pa.field(c, pa.float64()) for c in COLUMNS]

    def measure_samples(self, x: np.ndarray) -> Result:
        p = self.params
        flags = speech_frames(x, p.sample_rate, p.aggressiveness, p.frame_ms)
        runs = speech_runs(flags, p.frame_ms / 1000, p.min_speech_s, p.min_gap_s)
        if not runs:
            return Empty(f"no speech detected (WebRTC voice activity, aggressiveness {p.aggressiveness})")
        return activity(runs, len(x) / p.sample_rate)
