"""Shared helpers for the benchmarks: timing, a result row format, long test audio."""

from __future__ import annotations

import json
import os
import platform
import time
import wave
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
SPEECH = ROOT / "examples" / "data" / "speech-emotion"


@dataclass
class Row:
    bench: str
    metric: str
    ours: float
    baseline: float
    ratio: float
    goal: str
    unit: str = "s"
    #: What the baseline is, when it is what a user would call instead (a peer library).
    peer: str = ""
    #: The best ratio this machine allows for the metric, measured in the same run.
    ceiling: float | None = None

    def met(self) -> bool:
        op, val = self.goal.split()
        return self.ratio >= float(val) if op == ">=" else self.ratio <= float(val) if op == "<=" else self.ratio < float(val)


def timed(fn, *args, **kw) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t, out


def machine() -> str:
    import multiprocessing

    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {multiprocessing.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}"


def emit(name: str, rows: list[Row]) -> None:
    """Print rows and save them for bench/run_all.py."""
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps([asdict(r) for r in rows], indent=1))
    for r in rows:
        flag = "met" if r.met() else "MISSED"
        print(f"{r.bench:<14} {r.metric:<58} ours {r.ours:9.3f}{r.unit:<3} base {r.baseline:9.3f}{r.unit:<3} "
              f"ratio {r.ratio:7.2f}  goal {r.goal:<7} {flag}")


def long_wav(path: Path, minutes: float, seed: int = 0) -> Path:
    """A long 16 kHz recording made of the real speech clips in a seeded random order."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    clips = [sf.read(p, dtype="float32")[0] for p in sorted(SPEECH.glob("[0-9][0-9].wav"))]
    out, total = [], 0
    while total < minutes * 60 * 16000:
        x = clips[rng.integers(len(clips))]
        out.append(x)
        out.append(np.zeros(int(0.2 * 16000), np.float32) + 1e-4 * rng.standard_normal(int(0.2 * 16000)).astype(np.float32))
        total += len(x) + int(0.2 * 16000)
    y = np.concatenate(out)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.clip(y, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def cut(duration: float, seg: float = 4.0, seed: int = 0) -> list[tuple[float, float]]:
    """Consecutive segments of 2-6 s (mean ``seg``) covering a file, like diarized turns."""
    rng = np.random.default_rng(seed)
    t, out = 0.0, []
    while t < duration - 1.0:
        d = float(rng.uniform(seg - 2, seg + 2))
        out.append((round(t, 3), round(min(t + d, duration), 3)))
        t += d
    return out
