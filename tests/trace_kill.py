"""Killing `ambiguity extract` at a chosen point: the runner marks its phases on stderr as
``trace <phase>`` lines when AMBIGUITY_TRACE=1 (used by the crash tests in tests/fault and tests/stores)."""

from __future__ import annotations

import signal
import subprocess
import time


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
