"""Run one extractor over the store's segments on this machine: skip what is done, batch, write as you go.

Finished batches are upserted as they come (in pool and model runs at most one commit
per second, batches that finish sooner written together), so an interrupted run (Ctrl-C,
a kill, a crash) keeps everything written before it and a rerun resumes. A segment that
breaks becomes a ``failed`` row with the reason; it never stops the run.

The parts: :mod:`.plan` (what is left, in which order; shared with the Ray engine, which
runs above this layer in :mod:`ambiguity.engines.ray`), :mod:`.isolate` (a raising batch reruns
one by one), :mod:`.pool` (the spawn pool: CPU extractors, and model extractors' decoding),
:mod:`.pipelined` (model extractors).

The run marks its phases as audit events (``sys.audit("ambiguity.extract", phase)``: free when
nobody listens): the crash tests kill the process at a chosen mark and bench/startup.py times them.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from ambiguity.extractors.base import Extractor, Result
from ambiguity.extractors.isolate import forward_isolated, prepare_isolated, process_isolated
from ambiguity.extractors.pipelined import pipelined, run_model
from ambiguity.extractors.plan import RunReport, batches, plan, prepare_group
from ambiguity.extractors.pool import Pool, run_pool
from ambiguity.extractors.rows import results_to_table, segment_inputs
from ambiguity.stores import schema as S
from ambiguity.stores.lance import FeatureStore
from ambiguity.stores.tables import SEGMENTS

__all__ = [
    "RunReport", "run", "plan", "prepare_group", "batches", "segment_inputs", "results_to_table",
    "process_isolated", "prepare_isolated", "forward_isolated", "COMPACT_AFTER_WRITES", "mark",
]

#: Compact a group once a run has written this many batches (each write is a Lance version).
COMPACT_AFTER_WRITES = 32
#: Pool and model runs commit at most once per this many seconds (batches that finish
#: sooner are written together): fewer Lance versions, no compaction on short runs.
WRITE_EVERY_S = 1.0
#: ... and at least once per this many buffered segments.
WRITE_MAX_ROWS = 4096
#: A small pool run is cut into at least this many batches per worker (:func:`pool_batch_size`).
POOL_BATCHES_PER_WORKER = 4


def mark(phase: str) -> None:
    """A phase of the run, as the audit event ``ambiguity.extract`` (see the module docstring)."""
    sys.audit("ambiguity.extract", phase)


class Coalesced:
    """A write function that buffers batches and commits them together, the first one at once."""

    def __init__(self, write: Callable[[list[dict[str, Any]], list[Result]], None], every_s: float):
        self._write, self._every = write, every_s
        self._rows: list[dict[str, Any]] = []
        self._results: list[Result] = []
        self._last: float | None = None

    def __call__(self, rows: list[dict[str, Any]], results: list[Result]) -> None:
        self._rows += rows
        self._results += results
        now = time.monotonic()
        if self._last is None or now - self._last >= self._every or len(self._rows) >= WRITE_MAX_ROWS:
            self.flush()

    def flush(self) -> None:
        if self._rows:
            rows, results = self._rows, self._results
            self._rows, self._results = [], []
            self._write(rows, results)
        self._last = time.monotonic()


def run(
    store: FeatureStore,
    extractor: Extractor,
    *,
    group: str | None = None,
    recompute: bool = False,
    only_failed: bool = False,
    limit: int | None = None,
    workers: int | None = None,
    batch_size: int | None = None,
    segment_ids: Sequence[str] | None = None,
    progress: bool = True,
    on_batch: Callable[[RunReport], None] | None = None,
) -> RunReport:
    """Extract one feature group on this machine; see the module docstring for the guarantees.

    ``workers``: the pool of a CPU extractor (default: one per core; 1 runs in this process);
    for a model extractor, decode processes (default: one prefetch thread).
    """
    mark("run-start")
    size = batch_size or extractor.batch_size
    n_workers = workers if workers is not None else (os.cpu_count() or 1)
    pool = None
    if extractor.kind == "cpu" and n_workers > 1:
        # Started first: the workers import and set up while the group is checked and the plan read.
        n = store.count(SEGMENTS) if segment_ids is None else len(segment_ids)
        n_batches = -(-min(n, limit if limit is not None else n) // size)
        if n_batches > 1:
            pool = Pool(extractor, min(n_workers, n_batches))
    try:
        group, prov = prepare_group(store, extractor, group, recompute)
        schema = extractor.schema()
        rows, skipped = plan(store, group, recompute=recompute, only_failed=only_failed, limit=limit,
                             segment_ids=segment_ids)
    except BaseException:
        if pool is not None:
            pool.close(cancel=True)
        raise
    mark("planned")
    report = RunReport(group=group, pending=len(rows), skipped=skipped)
    if not rows:
        if pool is not None:
            pool.close(cancel=True)
        return report
    t0 = time.perf_counter()
    bar = _progress(len(rows), group, progress)

    def write(batch_rows: list[dict[str, Any]], results: list[Result]) -> None:
        ids = [r["segment_id"] for r in batch_rows]
        mark("write")
        store.write_features(group, results_to_table(schema, ids, results), schema, prov)
        mark("written")
        report.writes += 1
        report.count(ids, results)
        if bar is not None:
            bar.set_postfix(ok=report.ok, failed=report.failed, empty=report.empty, refresh=False)
            bar.update(len(ids))  # after the counts: the last line shows the final ones
        if on_batch:
            on_batch(report)

    coalesced = Coalesced(write, WRITE_EVERY_S)
    try:
        try:
            if pool is not None:
                run_pool(extractor, batches(rows, pool_batch_size(size, len(rows), pool.workers, batch_size is not None)),
                         coalesced, pool)
            elif extractor.kind == "model" and pipelined(extractor):
                run_model(extractor, rows, size, workers, coalesced)
            else:  # one process, one commit per batch (the crash tests kill inside each)
                extractor.setup()
                for b in batches(rows, size):
                    mark("process")
                    write(b, process_isolated(extractor, segment_inputs(b)))
        finally:
            coalesced.flush()  # finished results are kept, also after Ctrl-C
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        if bar is not None:
            bar.close()
        report.seconds = time.perf_counter() - t0
    if report.writes >= COMPACT_AFTER_WRITES and not report.interrupted:
        mark("compact")
        store.compact([S.table_name(group)])
    mark("run-end")
    return report


def pool_batch_size(size: int, n: int, workers: int, explicit: bool) -> int:
    """The pool's batch size: ``size``, or less in a small run so that each worker gets at least
    :data:`POOL_BATCHES_PER_WORKER` batches (the workers then finish within a small batch of each
    other; 32 clips in batches of 8 on 2 workers could leave one worker with the two longest).
    A batch size the user gave is kept."""
    if explicit:
        return size
    return max(1, min(size, -(-n // (workers * POOL_BATCHES_PER_WORKER))))


def _progress(total: int, group: str, enabled: bool):
    from ambiguity.progress import progress_bar  # tqdm on a terminal, a line per 10% in logs

    return progress_bar(total, group, unit="seg", enabled=enabled)
