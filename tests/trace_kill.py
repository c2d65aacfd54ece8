"""Killing `ambiguity extract` at a chosen point (the crash tests in tests/fault and tests/stores).

The runner marks its phases as audit events (``sys.audit("ambiguity.extract", phase)``);
:data:`TRACED` runs the CLI with a hook that prints each as a ``trace <phase>`` line on stderr:
``[sys.executable, *TRACED, "--store", ..., "extract", ...]``. Before the CLI's own arguments,
``--compact-after N`` compacts after N writes instead of the runner's 32, and ``--phases FILE``
appends ``<unix time> <pid> <phase>`` lines to FILE instead of printing."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

TRACED = [str(Path(__file__).resolve())]


def kill_after_mark(proc: subprocess.Popen, phase: str, occurrence: int, delay_s: float, timeout_s: float) -> bool:
    """SIGKILL ``proc`` ``delay_s`` after its ``occurrence``-th ``trace <phase>`` line; stop watching after ``timeout_s``.

    Waits for the process to end; True when the kill ended it (False: it ended before the mark).
    """
    seen, deadline = 0, time.time() + timeout_s
    for line in proc.stderr:
        if line.strip() == f"trace {phase}":
            seen += 1
            if seen == occurrence:
                time.sleep(delay_s)
                proc.send_signal(signal.SIGKILL)
                break
        if time.time() > deadline:
            break
    proc.wait()
    return proc.returncode == -signal.SIGKILL


def _traced_cli() -> None:
    args = sys.argv[1:]
    phases = None
    while args[:1] in (["--compact-after"], ["--phases"]):
        if args[0] == "--phases":
            phases = args[1]
        else:
            import ambiguity.extractors.runner as R

            R.COMPACT_AFTER_WRITES = int(args[1])
        args = args[2:]

    def hook(event: str, payload: tuple) -> None:
        if event != "ambiguity.extract":
            return
        if phases is None:
            print(f"trace {payload[0]}", file=sys.stderr, flush=True)
        else:
            import os

            with open(phases, "a") as fh:  # one short append per mark: atomic enough between processes
                fh.write(f"{time.time():.6f} {os.getpid()} {payload[0]}\n")

    sys.addaudithook(hook)
    from ambiguity.cli import main

    main(args=args, prog_name="ambiguity")


if __name__ == "__main__":
    _traced_cli()
