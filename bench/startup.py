"""Where the time of a small ``extract`` goes: a phase breakdown from the run's own marks.

    .venv/bin/python bench/startup.py [--rounds 3] [--clips 32] [--extractor opensmile]

Runs ``ambiguity extract --extractor opensmile --workers 2`` on 32 real speech clips (a fresh
copy of the ingested store each time). The runner and the pool's workers mark their phases as
audit events (``sys.audit("ambiguity.extract", phase)``); this benchmark listens with a
``sitecustomize`` module of its own on ``PYTHONPATH`` (so spawned workers listen too), which
appends ``<time> <pid> <phase>`` lines to a file. Phases, from the command's launch:

  to run-start     launch -> the runner starts (interpreter, CLI, registry, extractor, store open)
  plan             run-start -> planned (group checked, segments and group status read, sorted)
  pool start       run-start -> the first worker process exists
  worker imports   a worker process starts -> its initializer runs (interpreter, modules to unpickle)
  worker setup     initializer -> the extractor is set up (openSMILE: Smile())
  workers ready    launch -> the last worker is ready
  first result     planned -> the first batch is written (includes waiting for workers)
  writes           total time inside store writes (each an upsert commit)
  shutdown         last write -> the runner returns (pool joined, compaction)
  exit             the runner returns -> the process has exited (interpreter teardown)

Medians over the rounds. The same rows go to docs/benchmarks.md (start-up).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import OUT, SPEECH, Row, emit  # noqa: E402

CLI = str(Path(sys.executable).with_name("ambiguity"))

#: Installed as sitecustomize in the benchmark's processes only (the package reads no variable).
SITE = r'''
import os, sys, time
_marks = os.environ.get("STARTUP_BENCH_MARKS")
if _marks:
    def _write(phase, t=None):
        with open(_marks, "a") as fh:
            fh.write(f"{time.time() if t is None else t:.6f} {os.getpid()} {phase}\n")
    try:  # this process's start (to a clock tick) from /proc: its interpreter start-up shows
        with open(f"/proc/{os.getpid()}/stat") as fh:
            ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        _write("spawned", time.time() - (time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")))
    except (OSError, ValueError, IndexError):
        pass
    sys.addaudithook(lambda ev, args: ev == "ambiguity.extract" and _write(args[0]))
'''


def one(seed: Path, work: Path, extractor: str, workers: int) -> dict[str, float]:
    store = work / "store"
    shutil.rmtree(store, ignore_errors=True)
    shutil.copytree(seed, store)
    marks = work / "phases.txt"
    marks.unlink(missing_ok=True)
    site = work / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITE)
    env = {**os.environ, "STARTUP_BENCH_MARKS": str(marks),
           "PYTHONPATH": os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)}
    t0 = time.time()
    subprocess.run([CLI, "--store", str(store), "extract", "--extractor", extractor, "--workers", str(workers), "--quiet"],
                   check=True, capture_output=True, env=env)
    t_exit = time.time()
    ev: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for line in marks.read_text().splitlines():
        t, pid, phase = line.split(maxsplit=2)
        ev[phase].append((float(t), int(pid)))
    first = lambda p: min(t for t, _ in ev[p])  # noqa: E731
    last = lambda p: max(t for t, _ in ev[p])  # noqa: E731
    writes = sorted(t for t, _ in ev["write"])
    written = sorted(t for t, _ in ev["written"])
    wpids = sorted({pid for _, pid in ev["worker-init"]})
    at = lambda phase, w: min(t for t, p in ev[phase] if p == w)  # noqa: E731
    return {
        "to run-start (imports, store open, extractor)": first("run-start") - t0,
        "plan": first("planned") - first("run-start"),
        "pool start (first worker spawned, from run-start)": (min(at("spawned", w) for w in wpids) - first("run-start")) if wpids else 0.0,
        "worker imports": statistics.mean(at("worker-init", w) - at("spawned", w) for w in wpids) if wpids else 0.0,
        "worker setup": statistics.mean(at("worker-ready", w) - at("worker-init", w) for w in wpids) if wpids else 0.0,
        "workers ready (from launch)": (last("worker-ready") - t0) if wpids else 0.0,
        "first result written (from planned)": written[0] - first("planned"),
        "writes (sum)": sum(b - a for a, b in zip(writes, written, strict=True)),
        "shutdown (last write -> runner returns)": last("run-end") - written[-1],
        "exit (runner returns -> process gone)": t_exit - last("run-end"),
        "total": t_exit - t0,
        "n writes": float(len(writes)),
    }


def main(argv: list[str] | None = None) -> list[Row]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clips", type=int, default=32)
    ap.add_argument("--extractor", default="opensmile")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args([] if argv is None else argv)
    clips = sorted(SPEECH.glob("[0-9][0-9].wav"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        man = work / "m.csv"
        man.write_text("segment_id,media\n" + "".join(f"c{i:03d},{clips[i % len(clips)]}\n" for i in range(a.clips)))
        seed = work / "seed"
        subprocess.run([CLI, "--store", str(seed), "ingest", str(man)], check=True, capture_output=True)
        runs = [one(seed, work, a.extractor, a.workers) for _ in range(a.rounds)]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    lines = [f"| phase | seconds (median of {a.rounds}) |", "|---|---|"]
    lines += [f"| {k} | {v:.3f} |" if k != "n writes" else f"| {k} | {v:.0f} |" for k, v in med.items()]
    table = "\n".join(lines)
    print(f"`ambiguity extract --extractor {a.extractor} --workers {a.workers}`, {a.clips} clips, load average {os.getloadavg()[0]:.1f}\n")
    print(table)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "startup.md").write_text(table + "\n")
    return []  # a breakdown, not a ratio: bench/out/startup.md, copied into docs/benchmarks.md


if __name__ == "__main__":
    emit("startup", main(sys.argv[1:]))
