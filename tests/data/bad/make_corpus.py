#!/usr/bin/env python
"""Generate the hostile-input corpus: `python tests/data/bad/make_corpus.py [DIR]` (default: this folder).

Each file is made here, from code, so the corpus needs no download and no licence:
truncated MP4, video without audio, audio without video, variable frame rate video,
8 kHz / 96 kHz / 6-channel audio, a 2-hour file, an empty manifest, a 100k-row
manifest, paths with spaces and non-ASCII characters, predictions with NaN and Inf.
"""

from __future__ import annotations

import sys
import wave
from fractions import Fraction
from pathlib import Path

import numpy as np

RATE = 16000


def tone(seconds: float, rate: int = RATE, f0: float = 160.0, seed: int = 0) -> np.ndarray:
    """A voiced-like harmonic tone with vibrato and a little noise (prosody finds pitch in it)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f = f0 * (1 + 0.05 * np.sin(2 * np.pi * 4 * t))
    phase = 2 * np.pi * np.cumsum(f) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, 6)) * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t) ** 2)
    return (0.25 * x + 0.005 * rng.standard_normal(len(t))).astype(np.float32)


def write_wav(path: Path, x: np.ndarray, rate: int = RATE) -> Path:
    x = np.atleast_2d(x.T).T if x.ndim == 1 else x  # (n, channels)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[1] if x.ndim == 2 else 1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def write_video(path: Path, seconds: float, *, fps: int = 25, audio: bool = True, vfr: bool = False) -> Path:
    import av

    with av.open(str(path), "w") as c:
        v = c.add_stream("mpeg4", rate=fps)
        v.width, v.height, v.pix_fmt = 96, 64, "yuv420p"
        v.time_base = Fraction(1, 1000)
        v.codec_context.time_base = Fraction(1, 1000)
        a = None
        if audio:
            a = c.add_stream("aac", rate=RATE)
            a.layout = "mono"
        t = 0.0
        k = 0
        while t < seconds:
            img = np.zeros((64, 96, 3), np.uint8)
            img[:, : int(96 * t / seconds)] = 200  # a bar that grows: frame content encodes time
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = int(round(t * 1000))
            frame.time_base = Fraction(1, 1000)
            for p in v.encode(frame):
                c.mux(p)
            # Variable frame rate: alternate 20 ms and 100 ms gaps.
            t += (0.02 if k % 2 else 0.1) if vfr else 1 / fps
            k += 1
        for p in v.encode():
            c.mux(p)
        if a is not None:
            x = tone(seconds)
            n = 1024
            for i in range(0, len(x) - n, n):
                af = av.AudioFrame.from_ndarray(x[None, i : i + n], format="fltp", layout="mono")
                af.sample_rate = RATE
                af.pts = i
                for p in a.encode(af):
                    c.mux(p)
            for p in a.encode():
                c.mux(p)
    return path


def make(out: Path, *, big: bool = True) -> dict[str, Path]:
    """Write the corpus into ``out``; ``big`` adds the 2-hour file and the 100k-row manifest."""
    out.mkdir(parents=True, exist_ok=True)
    f: dict[str, Path] = {}
    f["av"] = write_video(out / "with_audio.mp4", 3.0)
    data = f["av"].read_bytes()
    (out / "truncated.mp4").write_bytes(data[: len(data) // 2])
    f["truncated"] = out / "truncated.mp4"
    f["no_audio"] = write_video(out / "no_audio.mp4", 2.0, audio=False)
    f["vfr"] = write_video(out / "vfr.mp4", 2.0, audio=False, vfr=True)
    f["audio_only"] = write_wav(out / "audio_only.wav", tone(2.0))
    f["8k"] = write_wav(out / "rate_8k.wav", tone(2.0, 8000), 8000)
    f["96k"] = write_wav(out / "rate_96k.wav", tone(2.0, 96000), 96000)
    six = np.stack([tone(2.0, seed=i) * (i + 1) / 6 for i in range(6)], axis=1)
    f["6ch"] = write_wav(out / "six_channels.wav", six)
    weird = out / "a folder with spaces" / "ünïcødé 音声 clip.wav"
    weird.parent.mkdir(exist_ok=True)
    f["weird"] = write_wav(weird, tone(1.5))
    (out / "empty_manifest.csv").write_text("segment_id,media,start_s,end_s\n")
    f["empty_manifest"] = out / "empty_manifest.csv"
    (out / "weird_paths.csv").write_text(
        "segment_id,media,transcript\n"
        f'"seg ü 1","{weird.relative_to(out)}","naïve café"\n', encoding="utf-8"
    )
    f["weird_manifest"] = out / "weird_paths.csv"
    (out / "predictions_nan.csv").write_text(
        "segment_id,model,p_0,p_1\ns1,m,0.2,0.8\ns2,m,nan,0.5\ns3,m,inf,0.1\ns4,m,0.5,0.5\n"
    )
    f["predictions_nan"] = out / "predictions_nan.csv"
    if big:
        # 2 hours at 8 kHz: quiet noise with a tone burst every minute (115 MB of PCM).
        n = 2 * 3600 * 8000
        x = (0.001 * np.random.default_rng(0).standard_normal(n)).astype(np.float32)
        burst = tone(2.0, 8000)
        for m in range(120):
            x[m * 60 * 8000 : m * 60 * 8000 + len(burst)] += burst
        f["two_hours"] = write_wav(out / "two_hours.wav", x, 8000)
        rows = ["segment_id,media,start_s,end_s"] + [f"r{i},audio_only.wav,0,1" for i in range(100_000)]
        (out / "manifest_100k.csv").write_text("\n".join(rows) + "\n")
        f["manifest_100k"] = out / "manifest_100k.csv"
    return f


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent
    for k, p in make(target).items():
        print(f"{k:<16} {p}")
