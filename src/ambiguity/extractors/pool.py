"""The local executor: a spawn ``ProcessPoolExecutor`` whose initializer builds the extractor and
calls ``setup()`` once per worker (as audinterface's ``num_workers`` pool does), for CPU extractors
and for model extractors' decoding.

Spawn, not fork: Lance and some codecs are not fork-safe. The runner starts the pool before it
reads the plan, so workers import and set up while the parent plans; every worker is joined
before the run returns. The worker side (:func:`init`, :func:`work`) lives here too: a spawned
worker imports this module and the extractor's own, nothing of the store, the CLI or polars.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ambiguity.errors import ExtractorError
from ambiguity.extractors.base import Extractor, Failure

Write = Callable[[list[dict[str, Any]], list[Any]], None]


class SetupError(ExtractorError):
    """An extractor's ``setup()`` raised in a worker: the run stops with its words."""


# -- the worker side ------------------------------------------------------------------------
_WORKER: Any = None
_HALF = "process"
_SETUP_ERROR: str | None = None


def init(cls: type, params: dict[str, Any], half: str, threads: int) -> None:
    """Build the extractor once per worker: ``half`` is ``process`` (a CPU extractor, fully set
    up) or ``prepare`` (a model extractor's decode side only). A raise is kept and reported by
    :func:`work`, so the parent stops with the extractor's words, not "a process died"."""
    global _WORKER, _HALF, _SETUP_ERROR
    sys.audit("ambiguity.extract", "worker-init")  # phase marks, as the runner's (bench/startup.py)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the pool
    _HALF = half
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)  # BLAS/OpenMP: one share of the cores per worker, not all of them each
        if half == "prepare":
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        _WORKER = cls(**params)
        if half == "prepare":
            getattr(_WORKER, "ensure_prepare", lambda: None)()
        else:
            _WORKER.setup()
    except Exception as exc:
        _SETUP_ERROR = f"{getattr(cls, 'name', cls.__name__)} setup failed: {type(exc).__name__}: {exc}"
    sys.audit("ambiguity.extract", "worker-ready")


def work(rows: list[dict[str, Any]]) -> list[Any]:
    """One batch of segment rows through this worker's half of the extractor."""
    from ambiguity.extractors.isolate import prepare_isolated, process_isolated
    from ambiguity.extractors.rows import segment_inputs

    if _SETUP_ERROR is not None:
        raise SetupError(_SETUP_ERROR)
    fn = prepare_isolated if _HALF == "prepare" else process_isolated
    return fn(_WORKER, segment_inputs(rows))


def _started() -> int:
    return os.getpid()


# -- the parent side ------------------------------------------------------------------------
class Pool:
    """``workers`` spawn processes, each with one set-up extractor; started at once.

    The worker processes are known from :func:`multiprocessing.active_children` (the children
    started since the pool was made), so a cancelled run can terminate them without reading the
    executor's private state.
    """

    def __init__(self, extractor: Extractor, workers: int, half: str = "process"):
        threads = 1 if half == "prepare" else max(1, (os.cpu_count() or 1) // workers)
        before = set(mp.active_children())
        self.executor = ProcessPoolExecutor(
            workers, mp_context=mp.get_context("spawn"), initializer=init,
            initargs=(type(extractor), extractor.param_dict(), half, threads),
        )
        for _ in range(workers):
            self.executor.submit(_started)
        self._before = before
        self.workers = workers

    @property
    def processes(self) -> list:
        """This pool's worker processes: children started since it was made (one pool at a time)."""
        return [p for p in mp.active_children() if p not in self._before]

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        return self.executor.submit(fn, *args)

    def close(self, *, cancel: bool = False) -> None:
        """Shut the pool down and join every worker (no worker outlives the run); ``cancel``
        drops queued batches and terminates the workers instead of letting them finish."""
        procs = self.processes
        self.executor.shutdown(wait=not cancel, cancel_futures=cancel)
        if cancel:
            for p in procs:
                if p.is_alive():
                    p.terminate()
        for p in procs:
            p.join(timeout=30)
        if cancel:
            self.executor.shutdown(wait=True)


def run_pool(extractor: Extractor, batches: Iterator[list[dict[str, Any]]], write: Write, pool: Pool) -> None:
    """Batches through the pool, at most 2 per worker in flight (bounded memory); closes it.

    A worker that dies (a codec segfault, an OOM kill) breaks the pool and every batch
    in flight with it. Those batches are retried on a new pool one at a time, so the
    batch that breaks it again is known exactly and written as failed; one poisonous
    file cannot stop the run, and no other segment fails for it.
    """
    pending: dict[Future, tuple[list[dict[str, Any]], bool]] = {}  # batch, is a retry
    retry: deque[list[dict[str, Any]]] = deque()
    clean = False

    def refill() -> None:
        while True:
            isolating = bool(retry) or any(r for _, r in pending.values())
            if len(pending) >= (1 if isolating else 2 * pool.workers):
                return
            b, is_retry = (retry.popleft(), True) if retry else (next(batches, None), False)
            if b is None:
                return
            try:
                pending[pool.submit(work, b)] = (b, is_retry)
            except BrokenProcessPool:  # broke since the last wait: the failures in flight will say so
                retry.appendleft(b) if is_retry else retry.append(b)
                return

    def restart() -> None:
        nonlocal pool
        pool.close(cancel=True)
        pool = Pool(extractor, pool.workers)

    try:
        refill()
        while pending or retry:
            if not pending:
                restart()
                refill()
                continue
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            broke = False
            for fut in done:
                b, is_retry = pending.pop(fut)
                try:
                    results = fut.result()
                except BrokenProcessPool:
                    broke = True
                    if is_retry:  # it ran alone: this batch kills its worker
                        write(b, [Failure("worker process died while processing this batch")] * len(b))
                    else:
                        retry.append(b)
                    continue
                write(b, results)
            if broke:
                retry.extend(b for b, _ in pending.values())
                pending.clear()
                restart()
            refill()
        clean = True
    finally:
        pool.close(cancel=not clean)
