"""Model extractors: prefetch, length buckets, background writes.

A model extractor (:class:`ambiguity.extractors.inference.ModelExtractor`) splits into
``prepare()`` (CPU: decode, tokenize; picklable output) and ``forward()`` (one padded
batch on the model). prepare runs ahead in a thread, or in spawn processes with
``--workers N > 1``, while the model computes; prepared segments of ``bucket_batches``
batches are sorted by length (longest first) so that a batch pads little; finished
batches are written by a background thread so the model never waits on the store.
Failures stay per segment, every finished batch is written, Ctrl-C keeps them.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ambiguity.extractors.base import Empty, Extractor, Failure, Result
from ambiguity.extractors.isolate import checker, forward_isolated, prepare_isolated
from ambiguity.extractors.plan import batches
from ambiguity.extractors.pool import Pool, work
from ambiguity.extractors.rows import segment_inputs


def _setup_prepare(ex: Extractor) -> None:
    """Load a model extractor's CPU-side state (tokenizer, feature extractor) once."""
    getattr(ex, "ensure_prepare", getattr(ex, "setup_prepare", lambda: None))()


def pipelined(ex: Extractor) -> bool:
    return callable(getattr(ex, "prepare", None)) and callable(getattr(ex, "forward", None))


class Writer:
    """Writes finished batches in order on one background thread; at most `depth` wait."""

    def __init__(self, write: Callable[[list[dict[str, Any]], list[Result]], None], depth: int = 2):
        self._write = write
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._exc: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="ambiguity-writer", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while (item := self._q.get()) is not None:
            if self._exc is None:
                try:
                    self._write(*item)
                except BaseException as exc:  # re-raised in the run's thread
                    self._exc = exc

    def put(self, rows: list[dict[str, Any]], results: list[Result]) -> None:
        if self._exc is not None:
            raise self._exc
        self._q.put((rows, results))

    def close(self) -> None:
        """Write everything queued (also after Ctrl-C: those batches are finished), then stop."""
        self._q.put(None)
        self._thread.join()
        if self._exc is not None:
            raise self._exc


class _Inline:
    """An executor that runs each call at once, in this thread (no prefetch)."""

    def submit(self, fn, *args) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # surfaced by fut.result(), as a pool would
            fut.set_exception(exc)
        return fut

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


def run_model(extractor: Extractor, rows: list[dict[str, Any]], size: int, decode_workers: int | None, write) -> None:
    check = checker(extractor)
    n_batches = -(-len(rows) // size)
    procs = min(decode_workers or 1, n_batches)

    def in_thread(b):
        return prepare_isolated(extractor, segment_inputs(b))

    # The pool and its function change if a decode process dies: then the rest decodes in a thread.
    state: dict[str, Any] = {}
    if procs > 1:
        state["pool"], state["prep"], state["procs"] = Pool(extractor, procs, "prepare"), work, True
    else:
        procs = 1
        _setup_prepare(extractor)
        # A prefetch thread overlaps decoding with the model; where preparing is cheap and the
        # model runs on the same cores (text on a CPU), the thread only oversubscribes them.
        prefetch = getattr(extractor, "prefetch", lambda: True)()
        executor = ThreadPoolExecutor(1, thread_name_prefix="ambiguity-prepare") if prefetch else _Inline()
        state["pool"], state["prep"], state["procs"] = executor, in_thread, False

    def shut(cancel: bool) -> None:
        if state["procs"]:
            state["pool"].close(cancel=cancel)
        else:
            state["pool"].shutdown(wait=True, cancel_futures=cancel)

    bucket = max(1, int(getattr(extractor, "bucket_batches", 1)))
    ahead = bucket + 2 * procs  # batches prepared or in preparation: bounded memory
    chunks = batches(rows, size)
    inflight: deque[tuple[list[dict[str, Any]], Future]] = deque()

    def fill() -> None:
        while len(inflight) < ahead:
            b = next(chunks, None)
            if b is None:
                return
            inflight.append((b, state["pool"].submit(state["prep"], b)))

    def to_thread() -> None:
        """A decode process died (codec segfault, OOM kill): decode the rest in this process."""
        shut(cancel=True)
        _setup_prepare(extractor)
        state["pool"], state["prep"], state["procs"] = ThreadPoolExecutor(1, thread_name_prefix="ambiguity-prepare"), in_thread, False
        for k, (b, _) in enumerate(list(inflight)):
            inflight[k] = (b, state["pool"].submit(in_thread, b))

    writer = None
    clean = False
    try:
        fill()
        extractor.setup()  # the model loads while the first batches decode
        writer = Writer(write)
        while inflight:
            window: list[tuple[dict[str, Any], Any]] = []
            done_rows: list[dict[str, Any]] = []
            done: list[Result] = []
            while inflight and len(window) < bucket * size:
                b, fut = inflight.popleft()
                try:
                    prepared = fut.result()
                except BrokenProcessPool:
                    prepared = [Failure("a decode worker process died while preparing this batch")] * len(b)
                    to_thread()
                except Exception as exc:  # e.g. a prepared item that cannot be pickled
                    prepared = [Failure(f"decode worker failed: {type(exc).__name__}: {exc}")] * len(b)
                fill()
                for row, p in zip(b, prepared, strict=True):
                    if isinstance(p, (Failure, Empty)):
                        done_rows.append(row)
                        done.append(p)
                    else:
                        window.append((row, p))
            if done:
                writer.put(done_rows, done)
            window.sort(key=lambda rp: -rp[1].length)  # longest first: least padding, memory peaks early
            for i in range(0, len(window), size):
                part = window[i : i + size]
                writer.put([r for r, _ in part], forward_isolated(extractor, check, [p for _, p in part]))
        clean = True
    finally:
        shut(cancel=not clean)
        if writer is not None:
            writer.close()
