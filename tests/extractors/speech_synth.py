"""Speech with known word boundaries, synthesised at test time with espeak-ng (Debian's package).

Each word is synthesised on its own; its true span is where espeak-ng's samples are non-zero
(espeak-ng writes digital zeros before and after a word). Words are then laid end to end with
known gaps, so the truth comes from the construction, not from any aligner.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from dataclasses import dataclass

import numpy as np
import pytest

RATE = 16000

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt-get install espeak-ng)")


def espeak(text: str, *, voice: str = "en-us", speed: int = 160, pitch: int | None = None) -> np.ndarray:
    """espeak-ng's float samples of ``text`` at 16 kHz."""
    from scipy.signal import resample_poly

    cmd = ["espeak-ng", "--stdout", "-v", voice, "-s", str(speed)]
    if pitch is not None:
        cmd += ["-p", str(pitch)]
    raw = subprocess.run([*cmd, text], capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(raw)) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float64) / 32768
    g = np.gcd(rate, RATE)
    return resample_poly(x, RATE // g, rate // g)


def trimmed(x: np.ndarray) -> np.ndarray:
    """The samples between the first and last that are not (near) zero."""
    nz = np.flatnonzero(np.abs(x) > 1e-3)
    return x[nz[0]:nz[-1] + 1]


@dataclass
class Sentence:
    audio: np.ndarray
    words: list[str]
    starts: list[float]
    ends: list[float]


def assemble(
    words: list[str], gaps: list[float], *, lead: float = 0.3, tail: float = 0.3, seed: int = 0,
    pitches: list[int] | None = None, **voice,
) -> Sentence:
    """Words synthesised one by one, joined with ``gaps`` (s) of faint noise between them;
    ``pitches``: espeak-ng's pitch setting (0-99) of each word."""
    rng = np.random.default_rng(seed)
    assert len(gaps) == len(words) - 1
    pieces, starts, ends = [np.zeros(int(lead * RATE))], [], []
    t = len(pieces[0])
    for i, word in enumerate(words):
        w = trimmed(espeak(word, **voice, **({'pitch': pitches[i]} if pitches else {})))
        starts.append(t / RATE)
        ends.append((t + len(w)) / RATE)
        pieces.append(w)
        t += len(w)
        gap = np.zeros(int((gaps[i] if i < len(gaps) else tail) * RATE))
        pieces.append(gap)
        t += len(gap)
    x = np.concatenate(pieces)
    x = x + rng.normal(0, 1e-4, len(x))  # a faint noise floor, as any recording has
    return Sentence(x.astype(np.float32), words, starts, ends)


def write_wav(path, x: np.ndarray, rate: int = RATE) -> str:
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return str(path)
