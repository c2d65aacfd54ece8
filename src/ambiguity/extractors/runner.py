"""Run one extractor over the store's segments: skip what is done, batch, write as you go.

Finished batches are upserted as they come (in pool and model runs at most one commit
per second, batches that finish sooner written together), so an interrupted run (Ctrl-C,
a kill, a crash) keeps everything written before it and a rerun resumes. A segment that
breaks becomes a ``failed`` row with the reason; it never stops the run.

The parts: :mod:`.plan` (what is left, in which order; shared with the Ray engine),
:mod:`.isolate` (a raising batch reruns one by one), :mod:`.pool` and :mod:`.worker`
(the spawn pool of CPU extractors), :mod:`.pipelined` (model extractors).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from ambiguity.extractors import forkserver as F
from ambiguity.extractors import pool as P
from ambiguity.extractors.base import Extractor, Result
from ambiguity.extractors.isolate import forward_isolated, prepare_isolated, process_isolated
from ambiguity.extractors.pipelined import pipelined, run_model
from ambiguity.extractors.plan import RunReport, batches, plan, prepare_group
from ambiguity.extractors.rows import results_to_table, segment_inputs
from ambiguity.extractors.trace import trace
from ambiguity.stores import schema as S
from ambiguity.stores.lance import FeatureStore

__all__ = [
    "RunReport", "run", "plan", "prepare_group", "batches", "segment_inputs", "results_to_table",
    "process_isolated", "prepare_isolated", "forward_isolated", "COMPACT_AFTER_WRITES",
]

#: Compact a group once a run has written this many batches (each write is a Lance version).
COMPACT_AFTER_WRITES = int(os.environ.get("AMBIGUITY_COMPACT_AFTER", "32"))
#: Pool and model runs commit at most once per this many seconds (batches that finish
#: sooner are written together): fewer Lance versions, no compaction on short runs.
WRITE_EVERY_S = float(os.environ.get("AMBIGUITY_WRITE_EVERY", "1.0"))
#: ... and at least once per this many buffered segments.
WRITE_MAX_ROWS = 4096
#: A small pool run is cut into at least this many batches per worker (:func:`pool_batch_size`).
POOL_BATCHES_PER_WORKER = 4


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
    engine: str = "local",
    address: str | None = None,
) -> RunReport:
    """Extract one feature group; see the module docstring for the guarantees.

    ``engine="ray"`` runs it on a Ray cluster (``address``; :mod:`ambiguity.engines.ray`), with
    ``workers`` Ray tasks or actors at once (default: Ray's choice) and no progress bar.
    """
    trace("run-start")
    group, prov = prepare_group(store, extractor, group, recompute)
    if engine == "ray":
        from ambiguity.engines.ray import run_planned

        rows, skipped = plan(store, group, only_failed=only_failed, limit=limit, segment_ids=segment_ids)
        report = RunReport(group=group, pending=len(rows), skipped=skipped)
        if rows:
            run_planned(store, extractor, group, prov, rows, report, address=address, batch_size=batch_size,
                        concurrency=workers, on_batch=on_batch)
        return report
    if engine != "local":
        raise ValueError(f"engine must be 'local' or 'ray', not {engine!r}")
    size = batch_size or extractor.batch_size
    decode_workers = workers  # model extractors: None = one prefetch thread, N > 1 = N decode processes
    workers = workers if workers is not None else (os.cpu_count() or 1)
    pool, pool_workers = None, 0
    # A fork server that already runs (``extract`` prestarts it) has the extractor set up: its
    # workers fork ready after the plan. Otherwise start the workers now: they import and set up
    # while the plan is read.
    early = extractor.kind == "cpu" and workers > 1 and not F.running()
    if early:
        n = store.count("segments") if segment_ids is None else len(segment_ids)
        n = min(n, limit) if limit is not None else n
        if -(-n // size) > 1:
            pool_workers = min(workers, -(-n // size))
            pool = P.start(extractor, pool_workers)
    try:
        rows, skipped = plan(store, group, recompute=recompute, only_failed=only_failed, limit=limit, segment_ids=segment_ids)
    except BaseException:
        if pool is not None:
            P.finish(pool, cancel=True)
        raise
    trace("planned")
    report = RunReport(group=group, pending=len(rows), skipped=skipped)
    n_batches = -(-len(rows) // size)
    if pool is not None and n_batches <= 1:  # resumed with little left: no pool needed after all
        P.finish(pool, cancel=True)
        pool = None
    if not early and extractor.kind == "cpu" and workers > 1 and n_batches >= 1:
        # Even one batch: a worker forked from the set-up server starts at once, where this
        # process would import and set up the extractor itself.
        pool_workers = min(workers, n_batches)
        pool = P.start(extractor, pool_workers)
    if not rows:
        return report
    schema = extractor.schema()
    workers = max(1, min(workers, n_batches))
    t0 = time.perf_counter()
    bar = _progress(len(rows), group, progress)

    def write(batch_rows: list[dict[str, Any]], results: list[Result]) -> None:
        ids = [r["segment_id"] for r in batch_rows]
        trace("write")
        store.write_features(group, results_to_table(schema, ids, results), schema, prov)
        trace("written")
        report.writes += 1
        report.count(ids, results)
        if bar is not None:
            bar.update(len(ids))
            bar.set_postfix(ok=report.ok, failed=report.failed, empty=report.empty, refresh=False)
        if on_batch:
            on_batch(report)

    coalesced = Coalesced(write, WRITE_EVERY_S)
    try:
        try:
            if pool is not None:
                P.run_pool(extractor, rows, pool_batch_size(size, len(rows), pool_workers, batch_size is not None),
                           pool_workers, coalesced, pool)
            elif extractor.kind == "model" and pipelined(extractor):
                run_model(extractor, rows, size, decode_workers, coalesced)
            else:  # one process, one commit per batch (the crash tests kill inside each)
                extractor.setup()
                for b in batches(rows, size):
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
        trace("compact")
        store.compact([S.table_name(group)])
    trace("run-end")
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
