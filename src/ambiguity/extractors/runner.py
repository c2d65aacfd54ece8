"""Run one extractor over the store's segments: skip what is done, batch, write as you go.

Each finished batch is upserted at once, so an interrupted run (Ctrl-C, a kill,
a crash) keeps everything written before it and a rerun resumes. A segment that
breaks becomes a ``failed`` row with the reason; it never stops the run.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from ambiguity.extractors.base import Empty, Extractor, Failure, Result, SegmentInput
from ambiguity.stores import schema as S
from ambiguity.stores.lance import FeatureStore

#: Compact a group once a run has written this many batches (each write is a Lance version).
COMPACT_AFTER_WRITES = int(os.environ.get("AMBIGUITY_COMPACT_AFTER", "32"))


def _trace(phase: str) -> None:
    """With AMBIGUITY_TRACE=1, mark each phase on stderr: the crash tests kill the process there."""
    if os.environ.get("AMBIGUITY_TRACE"):
        import sys

        print(f"trace {phase}", file=sys.stderr, flush=True)


@dataclass
class RunReport:
    group: str
    pending: int = 0
    ok: int = 0
    failed: int = 0
    empty: int = 0
    skipped: int = 0
    writes: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def processed(self) -> int:
        return self.ok + self.failed + self.empty

    def summary(self) -> str:
        s = (
            f"{self.group}: {self.processed} processed ({self.ok} ok, {self.failed} failed, {self.empty} empty), "
            f"{self.skipped} already done, {self.seconds:.1f} s"
        )
        return s + (" — interrupted, rerun to resume" if self.interrupted else "")


# -- inputs and outputs ---------------------------------------------------------------
def segment_inputs(rows: Sequence[dict[str, Any]]) -> list[SegmentInput]:
    out = []
    for r in rows:
        meta = json.loads(r["metadata"]) if r.get("metadata") else {}
        out.append(
            SegmentInput(
                segment_id=r["segment_id"],
                media=r.get("media"),
                start_s=r.get("start_s"),
                end_s=r.get("end_s"),
                audio_path=r.get("audio"),
                transcript_value=r.get("transcript"),
                label=r.get("label"),
                metadata=meta,
            )
        )
    return out


def results_to_table(schema: pa.Schema, ids: Sequence[str], results: Sequence[Result]) -> pa.Table:
    """Rows in the group's schema; vectors become FixedSizeList columns, failures nulls."""
    status, error = [], []
    for r in results:
        if isinstance(r, Failure):
            status.append("failed"), error.append(r.reason)
        elif isinstance(r, Empty):
            status.append("empty"), error.append(r.reason)
        else:
            status.append("ok"), error.append(None)
    cols: dict[str, pa.Array] = {
        "segment_id": pa.array(list(ids), pa.string()),
        "status": pa.array(status, pa.string()),
        "error": pa.array(error, pa.string()),
    }
    for f in schema:
        if f.name in cols:
            continue
        values = [r.get(f.name) if isinstance(r, dict) else None for r in results]
        if pa.types.is_fixed_size_list(f.type):
            d = f.type.list_size
            mask = np.array([v is None for v in values])
            flat = np.zeros((len(values), d), dtype=f.type.value_type.to_pandas_dtype())
            for i, v in enumerate(values):
                if v is not None:
                    flat[i] = np.asarray(v).reshape(d)
            cols[f.name] = pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), d, mask=pa.array(mask))
        else:
            cols[f.name] = pa.array([None if v is None else _scalar(v) for v in values], f.type)
    return pa.table(cols, schema=pa.schema([schema.field(n) for n in cols]))


def _scalar(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _check_result(ex: Extractor, names: set[str], r: Any) -> Result:
    if isinstance(r, (Failure, Empty)):
        return r
    if not isinstance(r, dict):
        return Failure(f"extractor {ex.name} returned {type(r).__name__}, not a dict, Failure or Empty")
    extra = set(r) - names
    if extra:
        return Failure(f"extractor {ex.name} returned undeclared column(s) {', '.join(sorted(extra))}")
    return r


def process_isolated(ex: Extractor, batch: Sequence[SegmentInput]) -> list[Result]:
    """Run a batch; if it raises, rerun one by one so only the bad segment fails."""
    from ambiguity.media import AudioBatch

    _trace("process")
    loader = AudioBatch(batch)
    for s in batch:
        s._audio_loader = loader
    if ex.modality == "text":
        # Transcripts flagged at ingest (invalid UTF-8) fail here with the reason, not silently.
        bad = {i: Failure(s.metadata["_transcript_error"]) for i, s in enumerate(batch) if s.metadata.get("_transcript_error")}
        if bad:
            good = [s for i, s in enumerate(batch) if i not in bad]
            done = iter(process_isolated(ex, good) if good else [])
            return [bad[i] if i in bad else next(done) for i in range(len(batch))]
    names = {f.name for f in ex.columns()}
    try:
        results = ex.process(batch)
        if len(results) != len(batch):
            raise RuntimeError(f"extractor {ex.name} returned {len(results)} results for {len(batch)} segments")
        return [_check_result(ex, names, r) for r in results]
    except Exception:
        if len(batch) == 1:
            return [Failure(_reason())]
    out: list[Result] = []
    for s in batch:
        try:
            got = ex.process([s])
            out.append(_check_result(ex, names, got[0]) if len(got) == 1 else Failure("wrong number of results"))
        except Exception:
            out.append(Failure(_reason()))
    return out


def _reason() -> str:
    """The exception being handled, in one line a user can act on."""
    import sys

    exc = sys.exc_info()[1]
    from ambiguity.errors import AmbiguityError

    if isinstance(exc, AmbiguityError):
        return str(exc).splitlines()[0]
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" (at {os.path.basename(tb[-1].filename)}:{tb[-1].lineno})" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"


# -- worker processes (spawn: Lance and some codecs are not fork-safe) -------------------
_WORKER: Extractor | None = None


def _worker_init(cls: type[Extractor], params: dict[str, Any], threads: int) -> None:
    global _WORKER
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    _WORKER = cls(**params)
    _WORKER.setup()


def _worker_process(rows: list[dict[str, Any]]) -> list[Result]:
    assert _WORKER is not None
    return process_isolated(_WORKER, segment_inputs(rows))


# -- the run ------------------------------------------------------------------------------
def plan(
    store: FeatureStore,
    group: str,
    *,
    recompute: bool = False,
    only_failed: bool = False,
    limit: int | None = None,
    segment_ids: Sequence[str] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """The segments to process, sorted so that segments of one source file sit together."""
    segs = store.segments()
    if segment_ids is not None:
        segs = segs.filter(segs["segment_id"].is_in(list(segment_ids)))
    st = store.group_status(group) if not recompute else None
    if st is not None and st.height:
        if only_failed:
            todo = set(st.filter(st["status"] == "failed")["segment_id"].to_list())
            keep = segs["segment_id"].is_in(list(todo))
        else:
            done = st.filter(st["status"].is_in(["ok", "empty"]))["segment_id"]
            keep = ~segs["segment_id"].is_in(done.to_list())
        skipped = segs.height - int(keep.sum())
        segs = segs.filter(keep)
    else:
        skipped = 0
        if only_failed:
            segs = segs.head(0)
    segs = segs.with_columns(_src=segs["audio"].fill_null(segs["media"])).sort(
        ["_src", "start_s", "segment_id"], nulls_last=True
    )
    if limit is not None:
        segs = segs.head(limit)
    return segs.drop("_src").to_dicts(), skipped


def prepare_group(
    store: FeatureStore, extractor: Extractor, group: str | None, recompute: bool
) -> tuple[str, dict[str, Any]]:
    """The group name and provenance of a run; refuses a second configuration in one group."""
    group = S.check_group_name(group or extractor.default_group())
    prov = S.provenance(
        extractor.name, extractor.version, extractor.param_dict(), extractor.config_key(), **extractor.extra_provenance()
    )
    if recompute:
        store.drop_group(group)
    store.check_group(group, prov)
    return group, prov


def batches(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


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
    """Extract one feature group; see the module docstring for the guarantees."""
    group, prov = prepare_group(store, extractor, group, recompute)
    rows, skipped = plan(store, group, recompute=recompute, only_failed=only_failed, limit=limit, segment_ids=segment_ids)
    report = RunReport(group=group, pending=len(rows), skipped=skipped)
    if not rows:
        return report
    schema = extractor.schema()
    size = batch_size or extractor.batch_size
    decode_workers = workers  # model extractors: None = one prefetch thread, N > 1 = N decode processes
    workers = workers if workers is not None else (os.cpu_count() or 1)
    workers = max(1, min(workers, -(-len(rows) // size)))
    t0 = time.perf_counter()
    bar = _progress(len(rows), group, progress)

    def write(batch_rows: list[dict[str, Any]], results: list[Result]) -> None:
        ids = [r["segment_id"] for r in batch_rows]
        _trace("write")
        store.write_features(group, results_to_table(schema, ids, results), schema, prov)
        report.writes += 1
        for sid, r in zip(ids, results, strict=True):
            if isinstance(r, Failure):
                report.failed += 1
                report.failures.append((sid, r.reason))
            elif isinstance(r, Empty):
                report.empty += 1
            else:
                report.ok += 1
        if bar is not None:
            bar.update(len(ids))
            bar.set_postfix(ok=report.ok, failed=report.failed, empty=report.empty, refresh=False)
        if on_batch:
            on_batch(report)

    try:
        if extractor.kind == "cpu" and workers > 1:
            _run_pool(extractor, rows, size, workers, write)
        elif extractor.kind == "model" and _pipelined(extractor):
            _run_model(extractor, rows, size, decode_workers, write)
        else:
            extractor.setup()
            for b in batches(rows, size):
                write(b, process_isolated(extractor, segment_inputs(b)))
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        if bar is not None:
            bar.close()
        report.seconds = time.perf_counter() - t0
    if report.writes >= COMPACT_AFTER_WRITES and not report.interrupted:
        _trace("compact")
        store.compact([S.table_name(group)])
    return report


def _run_pool(extractor: Extractor, rows, size: int, workers: int, write) -> None:
    """Batches through a spawn pool, at most 2 per worker in flight (bounded memory).

    A worker that dies (a codec segfault, an OOM kill) breaks the pool and every batch
    in flight with it. Those batches are retried on a new pool one at a time, so the
    batch that breaks it again is known exactly and written as failed; one poisonous
    file cannot stop the run, and no other segment fails for it.
    """
    ctx = mp.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // workers)

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_worker_init, initargs=(type(extractor), extractor.param_dict(), threads)
        )

    pool = new_pool()
    pending: dict[Future, tuple[list[dict[str, Any]], bool]] = {}  # batch, is a retry
    retry: deque[list[dict[str, Any]]] = deque()
    it = batches(rows, size)

    def refill() -> None:
        while True:
            isolating = bool(retry) or any(r for _, r in pending.values())
            if len(pending) >= (1 if isolating else 2 * workers):
                return
            b, is_retry = (retry.popleft(), True) if retry else (next(it, None), False)
            if b is None:
                return
            try:
                pending[pool.submit(_worker_process, b)] = (b, is_retry)
            except BrokenProcessPool:  # broke since the last wait: the failures in flight will say so
                retry.appendleft(b) if is_retry else retry.append(b)
                return

    try:
        refill()
        while pending or retry:
            if not pending:
                pool.shutdown(wait=False, cancel_futures=True)
                pool = new_pool()
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
                pool.shutdown(wait=False, cancel_futures=True)
                pool = new_pool()
            refill()
    finally:
        pool.shutdown(wait=not pending, cancel_futures=True)


def _progress(total: int, group: str, enabled: bool):
    from ambiguity.progress import progress_bar  # tqdm on a terminal, a line per 10% in logs

    return progress_bar(total, group, unit="seg", enabled=enabled)


# -- model extractors: prefetch, length buckets, background writes ----------------------------
# A model extractor (ambiguity.extractors.inference.ModelExtractor) splits into prepare()
# (CPU: decode, tokenize; picklable output) and forward() (one padded batch on the model).
# prepare runs ahead in a thread, or in spawn processes with --workers N > 1, while the model
# computes; prepared segments of `bucket_batches` batches are sorted by length (longest first)
# so that a batch pads little; finished batches are written by a background thread so the model never waits on
# the store. Failures stay per segment, every finished batch is written, Ctrl-C keeps them.
def _pipelined(ex: Extractor) -> bool:
    return callable(getattr(ex, "prepare", None)) and callable(getattr(ex, "forward", None))


def _attach_audio(batch: Sequence[SegmentInput]) -> None:
    from ambiguity.media import AudioBatch

    loader = AudioBatch(batch)
    for s in batch:
        s._audio_loader = loader


def prepare_isolated(ex: Extractor, batch: Sequence[SegmentInput]) -> list[Any]:
    """ex.prepare over a batch; if it raises, one by one so only the bad segment fails."""
    _trace("prepare")
    _attach_audio(batch)
    try:
        out = ex.prepare(batch)  # type: ignore[attr-defined]
        if len(out) != len(batch):
            raise RuntimeError(f"extractor {ex.name} prepared {len(out)} items for {len(batch)} segments")
        return list(out)
    except Exception:
        if len(batch) == 1:
            return [Failure(_reason())]
    out = []
    for s in batch:
        try:
            got = ex.prepare([s])  # type: ignore[attr-defined]
            out.append(got[0] if len(got) == 1 else Failure("wrong number of prepared items"))
        except Exception:
            out.append(Failure(_reason()))
    return out


def forward_isolated(ex: Extractor, names: set[str], items: Sequence[Any]) -> list[Result]:
    """ex.forward over a batch; if it raises (a bad input, out of memory), one by one."""
    _trace("forward")
    try:
        results = ex.forward(items)  # type: ignore[attr-defined]
        if len(results) != len(items):
            raise RuntimeError(f"extractor {ex.name} returned {len(results)} results for {len(items)} segments")
        return [_check_result(ex, names, r) for r in results]
    except Exception:
        if len(items) == 1:
            return [Failure(_reason())]
    out: list[Result] = []
    for it in items:
        try:
            got = ex.forward([it])  # type: ignore[attr-defined]
            out.append(_check_result(ex, names, got[0]) if len(got) == 1 else Failure("wrong number of results"))
        except Exception:
            out.append(Failure(_reason()))
    return out


def _prepare_init(cls: type[Extractor], params: dict[str, Any]) -> None:
    global _WORKER
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # decode workers leave the cores to the model
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _WORKER = cls(**params)
    _setup_prepare(_WORKER)


def _setup_prepare(ex: Extractor) -> None:
    """Load the CPU-side state (tokenizer, feature extractor) once."""
    getattr(ex, "ensure_prepare", getattr(ex, "setup_prepare", lambda: None))()


def _prepare_process(rows: list[dict[str, Any]]) -> list[Any]:
    assert _WORKER is not None
    return prepare_isolated(_WORKER, segment_inputs(rows))


class _Writer:
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


def _run_model(extractor: Extractor, rows, size: int, decode_workers: int | None, write) -> None:
    names = {f.name for f in extractor.columns()}
    n_batches = -(-len(rows) // size)
    procs = min(decode_workers or 1, n_batches)

    def in_thread(b):
        return prepare_isolated(extractor, segment_inputs(b))

    # The pool and its function change if a decode process dies: then the rest decodes in a thread.
    state: dict[str, Any] = {}
    if procs > 1:
        state["pool"] = ProcessPoolExecutor(
            procs, mp_context=mp.get_context("spawn"), initializer=_prepare_init,
            initargs=(type(extractor), extractor.param_dict()),
        )
        state["prep"] = _prepare_process
    else:
        procs = 1
        _setup_prepare(extractor)
        state["pool"] = ThreadPoolExecutor(1, thread_name_prefix="ambiguity-prepare")
        state["prep"] = in_thread

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
        state["pool"].shutdown(wait=False, cancel_futures=True)
        _setup_prepare(extractor)
        state["pool"], state["prep"] = ThreadPoolExecutor(1, thread_name_prefix="ambiguity-prepare"), in_thread
        for k, (b, _) in enumerate(list(inflight)):
            inflight[k] = (b, state["pool"].submit(in_thread, b))

    writer = None
    try:
        fill()
        extractor.setup()  # the model loads while the first batches decode
        writer = _Writer(write)
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
                writer.put([r for r, _ in part], forward_isolated(extractor, names, [p for _, p in part]))
    finally:
        state["pool"].shutdown(wait=False, cancel_futures=True)
        if writer is not None:
            writer.close()
