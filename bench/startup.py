"""Where the time of a small ``extract`` goes: a phase breakdown from the run's own marks.

    .venv/bin/python bench/startup.py [--rounds 3] [--clips 32] [--extractor opensmile]

Runs ``ambiguity extract --extractor opensmile --workers 2`` on 32 real speech clips
(a fresh copy of the ingested store each time) with ``AMBIGUITY_PHASES`` set: the
parent and every worker append ``<time> <pid> <phase>`` lines (see
ambiguity.extractors.trace). Phases, from the command's launch:

  parent imports   launch -> the extract command starts (interpreter, ambiguity.cli, click, runner)
  store open       -> the store is open
  extractor+group  -> the runner starts, then the group's provenance is checked (run-start -> planned includes the plan)
  plan             run-start -> planned (segments and group status read, sorted)
  fork server      launch -> the fork server process starts (``extract`` prestarts it before it
                   imports the store), and its set-up: imports, the extractor built once (Smile())
  worker imports   a worker process starts -> its initialiser runs (interpreter, modules to unpickle)
  worker setup     initialiser -> the extractor is set up (0 when forked from a fork server that set it up)
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


def one(seed: Path, work: Path, extractor: str, workers: int) -> dict[str, float]:
    store = work / "store"
    shutil.rmtree(store, ignore_errors=True)
    shutil.copytree(seed, store)
    marks = work / "phases.txt"
    marks.unlink(missing_ok=True)
    t0 = time.time()
    subprocess.run([CLI, "--store", str(store), "extract", "--extractor", extractor, "--workers", str(workers), "--quiet"],
                   check=True, capture_output=True, env={**os.environ, "AMBIGUITY_PHASES": str(marks)})
    t_exit = time.time()
    ev: dict[str, list[tuple[float, int]]] = defaultdict(list)
    parent = None
    for line in marks.read_text().splitlines():
        t, pid, phase = line.split(maxsplit=2)
        ev[phase].append((float(t), int(pid)))
        if phase == "cli-start":
            parent = int(pid)
    first = lambda p, mine=None: min(t for t, pid in ev[p] if mine is None or (pid == parent) == mine)  # noqa: E731
    last = lambda p: max(t for t, _ in ev[p])  # noqa: E731
    writes = sorted(t for t, _ in ev["write"])
    written = sorted(t for t, _ in ev["written"])
    wpids = sorted({pid for _, pid in ev["worker-init"]})
    w_imports = [min(t for t, p in ev["worker-init"] if p == w) - min(t for t, p in ev["worker-spawned"] if p == w) for w in wpids]
    w_setup = [min(t for t, p in ev["worker-ready"] if p == w) - min(t for t, p in ev["worker-init"] if p == w) for w in wpids]
    return {
        "parent imports": first("cli-start") - t0,
        "store open": first("store-open") - first("cli-start"),
        "extractor+group": first("run-start") - first("store-open"),
        "plan": first("planned") - first("run-start"),
        "pool start (first worker spawned, from run-start)": (min(t for t, _ in ev["worker-spawned"]) - first("run-start")) if wpids else 0.0,
        "fork server spawned (from launch)": (first("forkserver-spawned") - t0) if ev["forkserver-spawned"] else 0.0,
        "fork server set-up (imports, extractor built)": (first("forkserver-ready") - first("forkserver-spawned")) if ev["forkserver-ready"] else 0.0,
        "worker imports": statistics.mean(w_imports) if wpids else 0.0,
        "worker setup": statistics.mean(w_setup) if wpids else 0.0,
        "workers ready (from launch)": (max(t for t, _ in ev["worker-ready"]) - t0) if wpids else 0.0,
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
