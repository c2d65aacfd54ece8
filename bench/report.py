"""`ambiguity report` on a 50-segment store, as a whole process: wall and CPU time (issue 24).

The store is bench/million.py's ``build`` at n = 50: three unimodal probes and a fusion model, each with
fixed-split and cross-fitted predictions (5 folds x 3 repeats), a 384-d text embedding, 88 openSMILE-like
functionals and 17 AU rates. The report is run as a user runs it (``ambiguity --store S report ...``, the
audio group with 88 features, so Figure 5 has more features than it shows) ``--repeats`` times; CPU time is
the child's user+system time (os.wait4). The machine is shared: the load average is printed with each run,
and CPU time is the number to compare when it is loaded (wall time then waits for other work).

    .venv/bin/python bench/report.py                # 3 runs
    .venv/bin/python bench/report.py --repeats 5 --profile out.prof   # and one cProfile of the report
    .venv/bin/python bench/report.py --sections STORE [--skip figure3]  # per section of a report of STORE

``--sections`` runs the report of an existing store (e.g. one bench/million.py built) in this process and
prints, per section, its wall and CPU time, the resident memory after it and the peak during it (psutil,
sampled every 20 ms): which sections cost what at 10^5 or 10^6 segments. Copy the store first if others
use it (the report only reads it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import Row, emit, machine  # noqa: E402
from million import build  # noqa: E402

CLI = str(Path(sys.executable).with_name("ambiguity"))
N_SEGMENTS = 50
GOAL_S = 10.0  # issue 24: under 10 s on 2 cores


def report_args(store: Path, out: Path) -> list[str]:
    return ["--store", str(store), "report", "--out", str(out), "--audio-group", "opensmile",
            "--au-group", "openface", "--text-group", "minilm"]


def run_once(args: list[str]) -> tuple[float, float]:
    """(wall, CPU) of one whole ``ambiguity`` process."""
    t0 = time.perf_counter()
    p = subprocess.Popen([CLI, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"report failed: {p.stderr.read().decode(errors='replace') if p.stderr else ''}")
    return wall, ru.ru_utime + ru.ru_stime


def sections(store: Path, out: Path, skip: set[str], permutations: int = 1000) -> None:
    """Per section of one in-process report: wall, CPU, resident MB after it and its sampled peak."""
    import threading

    import psutil

    from ambiguity import open_store
    from ambiguity.report import context
    from ambiguity.report.build import ReportSettings, build_report
    proc, peak, stop = psutil.Process(), [0.0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss / 2**20)
            time.sleep(0.02)

    run = context.Report.run

    def marked(rep, spec):
        peak[0] = proc.memory_info().rss / 2**20
        t, c = time.perf_counter(), time.process_time()
        sec = run(rep, spec)
        print(f"  {spec.key:<12} wall {time.perf_counter() - t:7.1f} s  CPU {time.process_time() - c:7.1f} s  "
              f"RSS after {proc.memory_info().rss / 2**20:6.0f} MB  peak {peak[0]:6.0f} MB"
              f"{'  ' + sec.note[:100] if sec.note else ''}", flush=True)
        return sec

    context.Report.run = marked  # type: ignore[method-assign]
    settings = ReportSettings(audio_groups=["opensmile"], au_groups=["openface"], text_group="minilm",
                              permutations=permutations, skip=tuple(skip))
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t, c = time.perf_counter(), time.process_time()
    build_report(open_store(store), out, settings)
    stop.set()
    print(f"  {'total':<12} wall {time.perf_counter() - t:7.1f} s  CPU {time.process_time() - c:7.1f} s  "
          f"peak {max(peak[0], proc.memory_info().rss / 2**20):6.0f} MB  load average {os.getloadavg()[0]:.2f}"
          f"{'  (skipped: ' + ', '.join(sorted(skip)) + ')' if skip else ''}", flush=True)


def main(argv: list[str] | None = None) -> list[Row]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--profile", help="also write a cProfile of one report run here")
    ap.add_argument("--sections", type=Path, metavar="STORE", help="per-section marks of a report of STORE (in process)")
    ap.add_argument("--skip", default="", help="with --sections: comma-separated section keys left out (e.g. figure3)")
    a = ap.parse_args(argv)
    if a.sections:
        with tempfile.TemporaryDirectory() as tmp:
            sections(a.sections, Path(tmp) / "report", set(filter(None, a.skip.split(","))))
        return []
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        build(store, N_SEGMENTS)
        walls, cpus = [], []
        for i in range(a.repeats):
            wall, cpu = run_once(report_args(store, Path(tmp) / f"report{i}"))
            walls.append(wall)
            cpus.append(cpu)
            print(f"  run {i + 1}: wall {wall:.2f} s, CPU {cpu:.2f} s, load average {os.getloadavg()[0]:.2f}", flush=True)
        if a.profile:
            subprocess.run([sys.executable, "-m", "cProfile", "-o", a.profile, CLI,
                            *report_args(store, Path(tmp) / "profiled")], check=True, stdout=subprocess.DEVNULL)
    rows = [Row("report", f"report, {N_SEGMENTS} segments: CPU s (median of {a.repeats})", statistics.median(cpus), GOAL_S,
                statistics.median(cpus) / GOAL_S, "<= 1"),
            Row("report", f"report, {N_SEGMENTS} segments: wall s (median of {a.repeats}, shared machine)",
                statistics.median(walls), GOAL_S, statistics.median(walls) / GOAL_S, "<= 1")]
    emit("report", rows)
    return rows


if __name__ == "__main__":
    main()
