"""Phase marks of a run, for the crash tests and the start-up benchmark.

``AMBIGUITY_TRACE=1`` prints ``trace <phase>`` on stderr (the crash tests kill the
process there); ``AMBIGUITY_PHASES=<file>`` appends ``<unix time> <pid> <phase>``
lines to the file, from the parent and from every worker (bench/startup.py).
"""

from __future__ import annotations

import os
import sys
import time


def trace(phase: str) -> None:
    if os.environ.get("AMBIGUITY_TRACE"):
        print(f"trace {phase}", file=sys.stderr, flush=True)
    path = os.environ.get("AMBIGUITY_PHASES")
    if path:
        with open(path, "a") as fh:  # one short append per mark: atomic enough between processes
            fh.write(f"{time.time():.6f} {os.getpid()} {phase}\n")


def process_started() -> float | None:
    """This process's start time (unix seconds, to a clock tick) from /proc, or None off Linux."""
    try:
        with open(f"/proc/{os.getpid()}/stat") as fh:
            ticks = int(fh.read().rsplit(")", 1)[1].split()[19])  # starttime: ticks since boot
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
        return time.time() - age
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def trace_spawned(phase: str = "worker-spawned") -> None:
    """In a worker (or the fork server): mark when the process started, so its import time shows (bench/startup.py)."""
    path = os.environ.get("AMBIGUITY_PHASES")
    started = process_started() if path else None
    if path and started is not None:
        with open(path, "a") as fh:
            fh.write(f"{started:.6f} {os.getpid()} {phase}\n")
