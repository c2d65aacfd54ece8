"""Progress bars that suit where stderr goes: tqdm on a terminal, a line per 10% in a log.

tqdm redraws many times a second; written to a file or a CI log that is thousands of lines.
Every progress display in the package goes through :func:`progress_bar`.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any, Protocol

from tqdm import tqdm


class Bar(Protocol):
    def update(self, n: int = 1) -> Any: ...
    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> Any: ...
    def close(self) -> Any: ...


class LineProgress:
    """tqdm's ``update`` / ``set_postfix`` / ``close``, printing one line each time another 10% is done."""

    def __init__(self, total: int, desc: str = "", unit: str = "it", file: IO[str] | None = None, step: float = 0.1):
        self.total, self.desc, self.unit, self.step = total, desc, unit, step
        self.file = file if file is not None else sys.stderr
        self.n = 0
        self.postfix: dict[str, Any] = {}
        self._shown = 0  # tenths already printed
        self._start = time.monotonic()
        self._closed = False

    def _line(self) -> str:
        pct = 100.0 * self.n / self.total if self.total else 100.0
        took = time.monotonic() - self._start
        extra = "".join(f", {k} {v}" for k, v in self.postfix.items())
        head = f"{self.desc}: " if self.desc else ""
        return f"{head}{pct:3.0f}% ({self.n}/{self.total} {self.unit}, {took:.0f} s{extra})"

    def update(self, n: int = 1) -> None:
        self.n += n
        if not self.total:
            return
        tenths = int(self.n / self.total / self.step + 1e-9)
        if tenths > self._shown:
            self._shown = tenths
            print(self._line(), file=self.file, flush=True)

    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> None:
        self.postfix = {**dict(ordered_dict or {}), **kwargs}

    def close(self) -> None:
        # a run that stopped early (or had nothing to do) still says where it ended
        if not self._closed and (self.n < self.total or self.total == 0):
            print(self._line(), file=self.file, flush=True)
        self._closed = True

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_bar(total: int, desc: str = "", unit: str = "it", enabled: bool = True, file: IO[str] | None = None) -> Bar | None:
    """A tqdm bar when ``file`` (default stderr) is a terminal, else a :class:`LineProgress`; None when disabled."""
    if not enabled:
        return None
    file = file if file is not None else sys.stderr
    isatty = getattr(file, "isatty", None)
    if callable(isatty) and isatty():
        return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=True, file=file)
    return LineProgress(total, desc, unit, file=file)
