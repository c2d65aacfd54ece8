"""Run an extractor on a Ray cluster with Ray Data: the same classes, the same store semantics.

Segments are read from the store with ``lance_ray.read_lance``; CPU extractors run
as Ray tasks, model extractors as actors (one model load per actor, a GPU each
where the cluster has GPUs). Each chunk of results is written with
``lance_ray.write_lance`` to a staging dataset next to the store, then upserted
into the group table, so a rerun or a resumed run never duplicates rows.
(``ray.data.read_lance(filter=)`` ignores its filter and ``Dataset.write_lance``
crashes on current pylance, hence ``lance_ray``.)
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa

from ambiguity.errors import UnavailableError
from ambiguity.extractors.base import Extractor
from ambiguity.extractors.isolate import process_isolated
from ambiguity.extractors.plan import RunReport, plan, prepare_group
from ambiguity.extractors.rows import results_to_table, segment_inputs
from ambiguity.stores import schema as S
from ambiguity.stores.lance import FeatureStore, id_filter

#: Segments per staging write + merge: the unit of resumption on a cluster.
CHUNK = 5000

_CACHED: dict[tuple, Extractor] = {}


def drop_dataset(uri: str) -> None:
    """Delete a Lance dataset wherever it lives: lance's own delete, which also works on
    ``s3://`` (where ``shutil.rmtree`` silently does nothing); the store's AWS_* settings apply."""
    import lance  # 0.8 s to import (python -X importtime)

    lance.LanceDataset.drop(uri, ignore_not_found=True)


def _extractor(cls: type[Extractor], params: dict[str, Any]) -> Extractor:
    """One instance (one setup) per worker process and configuration."""
    key = (cls.__module__, cls.__qualname__, tuple(sorted((k, repr(v)) for k, v in params.items())))
    if key not in _CACHED:
        ex = cls(**params)
        ex.setup()
        _CACHED[key] = ex
    return _CACHED[key]


def _to_table(ex: Extractor, batch: pa.Table) -> pa.Table:
    rows = batch.to_pylist()
    results = process_isolated(ex, segment_inputs(rows))
    return results_to_table(ex.schema(), [r["segment_id"] for r in rows], results)


def _ranked(batch: pa.Table, rank: dict[str, int]) -> pa.Table:
    """The batch with each segment's position in the plan (the local runner's order)."""
    return batch.append_column("_rank", pa.array([rank[s] for s in batch.column("segment_id").to_pylist()], pa.int64()))


def _task(batch: pa.Table, cls: type[Extractor], params: dict[str, Any]) -> pa.Table:
    return _to_table(_extractor(cls, params), batch)


class _Actor:
    """A model extractor loaded once per actor."""

    def __init__(self, cls: type[Extractor], params: dict[str, Any]):
        self.ex = _extractor(cls, params)

    def __call__(self, batch: pa.Table) -> pa.Table:
        return _to_table(self.ex, batch)


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
    on_batch: Callable[[RunReport], None] | None = None,
    address: str | None = None,
) -> RunReport:
    """Extract one feature group on a Ray cluster (``address``; None: a local one), with ``workers``
    Ray tasks or actors at once (default: Ray's choice). The group, the plan (resume, order) and
    the upserts are the local runner's (:func:`ambiguity.extractors.runner.run`); no progress bar."""
    group, prov = prepare_group(store, extractor, group, recompute)
    rows, skipped = plan(store, group, recompute=recompute, only_failed=only_failed, limit=limit, segment_ids=segment_ids)
    report = RunReport(group=group, pending=len(rows), skipped=skipped)
    if rows:
        run_planned(store, extractor, group, prov, rows, report, address=address, batch_size=batch_size,
                    concurrency=workers, on_batch=on_batch)
    return report


def run_planned(
    store: FeatureStore,
    extractor: Extractor,
    group: str,
    prov: dict[str, Any],
    rows: list[dict[str, Any]],
    report: RunReport,
    *,
    address: str | None = None,
    batch_size: int | None = None,
    concurrency: int | None = None,
    on_batch: Callable[[RunReport], None] | None = None,
) -> None:
    """Extract the planned ``rows`` of ``group`` on Ray, counting into ``report``.

    Called by :func:`run`, which prepares the group and the plan as the local runner does: the
    same resume and upsert semantics.
    """
    try:
        import lance_ray  # optional: ambiguity[ray]
        import ray  # optional: ambiguity[ray]
    except ImportError:
        raise UnavailableError("the Ray engine needs the ray extra: pip install 'ambiguity[ray]'") from None

    if not ray.is_initialized():
        with warnings.catch_warnings():
            # Ray starts its local processes with subprocess (fork, then exec at once): safe with
            # Lance loaded (the store's plan), though Lance's at-fork hook warns about every fork.
            warnings.filterwarnings("ignore", message="lance is not fork-safe")
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    t0 = time.perf_counter()
    schema = extractor.schema()
    size = batch_size or extractor.batch_size
    cls, params = type(extractor), extractor.param_dict()
    gpus = ray.cluster_resources().get("GPU", 0)
    seg_uri = os.path.join(store.uri, "segments.lance")
    staging_root = os.path.join(store.uri, "_staging")
    cols = [c for c in S.SEGMENTS_SCHEMA.names]
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        ids = [r["segment_id"] for r in chunk]
        # The store's own segments table, read by the cluster; the filter is applied by lance_ray.
        ds = lance_ray.read_lance(seg_uri, columns=cols, filter=id_filter(ids))
        # The plan's order (segments of one source file side by side: they share a decode), then
        # one block per batch: Ray Data runs one task per block, so fewer blocks than workers idle them.
        rank = {sid: k for k, sid in enumerate(ids)}
        ds = ds.map_batches(_ranked, fn_args=(rank,), batch_format="pyarrow")  # type: ignore[arg-type]  # ray stubs omit fn_args.sort("_rank")
        ds = ds.map_batches(lambda t: t.drop_columns(["_rank"]), batch_format="pyarrow")
        ds = ds.repartition(max(1, -(-len(chunk) // size)))
        if extractor.kind == "model":
            n = concurrency or max(1, int(gpus) if gpus else 1)
            out = ds.map_batches(
                _Actor, fn_constructor_args=(cls, params), batch_size=size, batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(size=n), num_gpus=1 if gpus else 0,
            )
        else:
            compute = ray.data.TaskPoolStrategy(size=concurrency) if concurrency else None
            out = ds.map_batches(
                _task,  # type: ignore[arg-type]  # ray stubs omit fn_args
                fn_args=(cls, params), batch_size=size, batch_format="pyarrow", compute=compute)
        staging = os.path.join(staging_root, f"{group}-{uuid.uuid4().hex[:8]}.lance")
        try:
            lance_ray.write_lance(out, staging, schema=schema, mode="create")
            import lance  # 0.8 s to import (python -X importtime)

            written = lance.dataset(staging).to_table()
            store.write_features(group, written, schema, prov)
        finally:
            drop_dataset(staging)
        report.writes += 1
        st = written.column("status").to_pylist()
        report.ok += st.count("ok")
        report.empty += st.count("empty")
        report.failed += st.count("failed")
        err = written.column("error").to_pylist()
        report.failures += [(i, e) for i, s, e in zip(written.column("segment_id").to_pylist(), st, err, strict=True) if s == "failed"]
        if on_batch:
            on_batch(report)
    if "://" not in staging_root or staging_root.startswith("file://"):  # an object store has no empty folders
        shutil.rmtree(staging_root.removeprefix("file://"), ignore_errors=True)
    report.seconds = time.perf_counter() - t0
