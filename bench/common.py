"""Shared helpers for the benchmarks: timing, a result row format, long test audio."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
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


@dataclass
class TreePeak:
    """Peak memory of a child's whole process tree, sampled (see tree_peak)."""

    mb: float  # peak of the summed RSS of the child and all its descendants
    largest_mb: float  # peak RSS of its largest single process
    processes: int  # most processes seen at once
    stdout: str


def tree_peak(cmd: list[str], every: float = 0.02) -> TreePeak:
    """Run ``cmd`` and sample the RSS of its process tree with psutil every ``every`` s.

    Start it from a small parent: ``ru_maxrss`` would carry the peak of whichever process forked
    the child (on Linux across fork and exec), so it is never used here.
    """
    import psutil

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err)
        root = psutil.Process(p.pid)
        peak_sum = peak_one = 0.0
        most = 0
        while p.poll() is None:
            rss = []
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            for q in procs:
                try:
                    rss.append(q.memory_info().rss)
                except psutil.NoSuchProcess:
                    pass
            if rss:
                peak_sum = max(peak_sum, sum(rss) / 2**20)
                peak_one = max(peak_one, max(rss) / 2**20)
                most = max(most, len(rss))
            time.sleep(every)
        out.seek(0)
        err.seek(0)
        if p.wait():
            raise SystemExit(f"{' '.join(cmd[:5])} ... failed: {err.read().decode()[-2000:]}")
        return TreePeak(peak_sum, peak_one, most, out.read().decode())


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
