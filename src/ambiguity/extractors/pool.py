"""The spawn process pool of CPU extractors (and of model extractors' decoding).

Spawn, not fork: Lance and some codecs are not fork-safe. Workers are started by
:func:`start` (the runner calls it before reading the plan, so they import and set
up while the parent plans) and always joined by :func:`close` before the run returns.
Where there is a fork server, ``extract`` starts it earlier still, with the extractor set
up once in it (:mod:`.forkserver`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ambiguity.extractors import forkserver as F
from ambiguity.extractors import worker
from ambiguity.extractors.base import Extractor, Failure
from ambiguity.extractors.plan import batches

Write = Callable[[list[dict[str, Any]], list[Any]], None]


def start(extractor: Extractor, workers: int, half: str = "process") -> ProcessPoolExecutor:
    """A pool of ``workers`` spawn processes, each with one set-up extractor; started now."""
    env = F.worker_env(workers, half)
    pool = ProcessPoolExecutor(
        workers, mp_context=F.context(type(extractor).__module__), initializer=worker.init,
        initargs=(type(extractor), extractor.param_dict(), half, env),
    )
    for _ in range(workers):  # each submit spawns one process (spawn pools grow on demand)
        pool.submit(worker.noop)
    return pool


def close(pool: ProcessPoolExecutor, *, cancel: bool = False) -> None:
    """Shut the pool down and join every worker process (no worker outlives the run)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    if cancel:
        pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            if p.is_alive():
                p.terminate()
    else:
        pool.shutdown(wait=True)
    for p in procs:
        p.join(timeout=30)


def finish(pool: ProcessPoolExecutor, *, cancel: bool = False) -> None:
    """:func:`close`, then stop the fork server too: no process of the run outlives it."""
    close(pool, cancel=cancel)
    F.stop()


def run_pool(extractor: Extractor, rows: list[dict[str, Any]], size: int, workers: int, write: Write,
             pool: ProcessPoolExecutor | None = None) -> None:
    """Batches through a spawn pool, at most 2 per worker in flight (bounded memory).

    A worker that dies (a codec segfault, an OOM kill) breaks the pool and every batch
    in flight with it. Those batches are retried on a new pool one at a time, so the
    batch that breaks it again is known exactly and written as failed; one poisonous
    file cannot stop the run, and no other segment fails for it.
    """
    pool = pool or start(extractor, workers)
    pending: dict[Future, tuple[list[dict[str, Any]], bool]] = {}  # batch, is a retry
    retry: deque[list[dict[str, Any]]] = deque()
    it = batches(rows, size)
    clean = False

    def refill() -> None:
        assert pool is not None  # set above, before the first refill
        while True:
            isolating = bool(retry) or any(r for _, r in pending.values())
            if len(pending) >= (1 if isolating else 2 * workers):
                return
            b, is_retry = (retry.popleft(), True) if retry else (next(it, None), False)
            if b is None:
                return
            try:
                pending[pool.submit(worker.work, b)] = (b, is_retry)
            except BrokenProcessPool:  # broke since the last wait: the failures in flight will say so
                retry.appendleft(b) if is_retry else retry.append(b)
                return

    try:
        refill()
        while pending or retry:
            if not pending:
                close(pool, cancel=True)
                pool = start(extractor, workers)
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
                close(pool, cancel=True)
                pool = start(extractor, workers)
            refill()
        clean = True
    finally:
        finish(pool, cancel=not clean)
