"""The feature store: a folder (or object-store prefix) of Lance datasets, one per table.

A table ``name`` is the Lance dataset ``<uri>/<name>.lance``, the layout LanceDB uses, so
stores written through LanceDB open unchanged. The store talks to pylance directly: importing
``lancedb`` costs about 1.3 s of CPU, ``lance`` about 0.4 s (docs/benchmarks.md, start-up).

Every write is an upsert on a key (``segment_id`` for segments and features),
so a rerun or a resumed run never duplicates a row. A Lance commit is atomic:
a process killed mid-write leaves the previous version intact.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import numpy as np
import polars as pl
import pyarrow as pa

from ambiguity.config import store_location
from ambiguity.errors import GroupConflictError, MissingGroupError, StoreError
from ambiguity.stores import schema as S
from ambiguity.stores.sql import quote, quote_list
from ambiguity.stores.sql import where as typed_where

_COMMIT_RETRIES = 20  # conflicting commits Lance rebases and retries before it gives up


def open_store(uri: str | os.PathLike, *, create: bool = True) -> FeatureStore:
    """Open (or create) the store at ``uri``: a directory or an object-store URI (``s3://...``).

    A project folder (one holding ``ambiguity.toml``), or that file, opens the store the file names.
    """
    return FeatureStore(store_location(uri), create=create)


def _is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def id_filter(ids: Iterable[str]) -> str:
    return "segment_id IN " + quote_list(ids)


_SCAN_BATCH, _SCAN_READAHEAD = 65_536, 4


class FeatureStore:
    """Segments, feature groups, predictions and annotations in one folder of Lance datasets."""

    def __init__(self, uri: str | os.PathLike, *, create: bool = True):
        self.uri = str(uri)
        if _is_local(self.uri):
            path = Path(self.uri.removeprefix("file://"))
            if not path.exists():
                if not create:
                    raise StoreError(f"no store at {path}: run `ambiguity init` first")
                try:
                    path.mkdir(parents=True)
                except OSError as exc:
                    raise StoreError(f"cannot create the store at {path}: {exc.strerror}") from None
            if not os.access(path, os.W_OK):
                raise StoreError(f"the store at {path} is not writable")

    def __repr__(self) -> str:
        return f"FeatureStore({self.uri!r})"

    # -- tables -------------------------------------------------------------------
    def _uri(self, name: str) -> str:
        """Where table ``name`` lives: ``<store>/<name>.lance``."""
        return self.uri.rstrip("/") + "/" + name + ".lance"

    def table_names(self) -> list[str]:
        if _is_local(self.uri):
            root = Path(self.uri.removeprefix("file://"))
            found = [p.name for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
        else:
            import pyarrow.fs as pafs  # object stores only

            fs, prefix = pafs.FileSystem.from_uri(self.uri)
            infos = fs.get_file_info(pafs.FileSelector(prefix, allow_not_found=True))
            found = [i.base_name for i in infos if i.type == pafs.FileType.Directory]
        return sorted(n[: -len(".lance")] for n in found if n.endswith(".lance") and len(n) > len(".lance"))

    def _dataset(self, name: str):
        """The latest committed version of table ``name`` (ValueError / OSError if there is none)."""
        import lance  # 1.6 s to import: only when a table is touched, so `import ambiguity` stays quick

        return lance.dataset(self._uri(name))

    def has_table(self, name: str) -> bool:
        """True if the table exists with at least one committed version.

        A process killed while creating a table leaves a folder with data files but no
        committed version: nothing was written as far as Lance is concerned, so the
        table counts as absent (``_create`` clears such a folder under a lock).
        """
        try:
            self._dataset(name)
            return True
        except (ValueError, FileNotFoundError, RuntimeError, OSError):
            return False

    @contextlib.contextmanager
    def _create_lock(self):
        """Serialise table creation between processes on a local store (released if the holder dies)."""
        if not _is_local(self.uri):
            yield
            return
        import fcntl  # POSIX only; reached on local stores

        with open(Path(self.uri.removeprefix("file://")) / ".create.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _create(self, name: str, data: pa.Table, schema: pa.Schema) -> bool:
        """Create ``name`` with ``data``; False if another writer created it first."""
        import lance  # 1.6 s to import: only when a table is touched, so `import ambiguity` stays quick

        with self._create_lock():
            if self.has_table(name):
                return False
            if _is_local(self.uri):
                # No live creator can hold an uncommitted folder while we hold the lock:
                # it is what a killed process left, and holds nothing committed.
                shutil.rmtree(Path(self._uri(name).removeprefix("file://")), ignore_errors=True)
            lance.write_dataset(_null_bad_vectors(data.cast(schema)), self._uri(name), schema=schema, mode="create")
            return True

    def _open(self, name: str):
        """The table's Lance dataset (a ``lance.LanceDataset``); MissingGroupError if it does not exist."""
        try:
            return self._dataset(name)
        except (ValueError, FileNotFoundError, RuntimeError, OSError) as exc:
            raise MissingGroupError(f"no table {name!r} in the store at {self.uri}") from exc

    def count(self, name: str, where: str | None = None) -> int:
        """Rows in a table (0 if it does not exist): from Lance metadata without a filter; with one, only the
        filter's columns are scanned."""
        try:
            return self._dataset(name).count_rows(filter=where) if where else self._dataset(name).count_rows()
        except (ValueError, FileNotFoundError, RuntimeError, OSError):
            return 0

    def version(self, name: str) -> int:
        return self._open(name).version

    def read(
        self,
        name: str,
        columns: Sequence[str] | None = None,
        where: str | None = None,
        *,
        limit: int | None = None,
    ) -> pl.DataFrame:
        """A whole table (or the given columns and rows of it, at most ``limit``) as polars."""
        return self._scan(self._open(name), name, columns, where, limit)

    def batches(self, name: str, columns: Sequence[str] | None = None, where: str | None = None, *,
                batch_size: int = _SCAN_BATCH) -> Iterator[pl.DataFrame]:
        """The rows in batches of at most ``batch_size``: memory of one batch, not of the table."""
        ds = self._open(name)
        for batch in ds.to_batches(columns=list(columns) if columns else None, filter=where, batch_size=batch_size):
            yield cast(pl.DataFrame, pl.from_arrow(batch))

    def ranges(self, name: str, columns: Sequence[str], *, batch_size: int = _SCAN_BATCH) -> Iterator[pl.DataFrame]:
        """Every row, in order, ``batch_size`` rows at a time read by row range, all from one version.

        For wide columns read by a slow consumer (a 384-d vector column feeding a search): a Lance scan reads
        ahead whatever its read-ahead settings say, 1,059 MB anonymous at the peak for 10^6 x 384 against
        535 MB by ranges of 65,536 rows, at the same speed (measured with lance 2.x on this repo's benchmark store).
        """
        ds = self._open(name)
        n = ds.count_rows()
        for a in range(0, n, batch_size):
            data = ds.take(np.arange(a, min(n, a + batch_size)), columns=list(columns))
            yield cast(pl.DataFrame, pl.from_arrow(data, rechunk=False))

    @staticmethod
    def _scan(ds, name: str, columns: Sequence[str] | None, where: str | None, limit: int | None = None) -> pl.DataFrame:
        """One Lance scan, the filter pushed into it, into polars without a copy (no rechunk).

        Batches of 64k rows and a read-ahead of 4 batches: on 2 cores Lance's defaults (8k rows,
        16 batches ahead) read a 200k x 88 group in about 2x the time of ``read_parquet``, these
        in about 1.3x (bench/store_read.py; docs/benchmarks.md, Store reads).
        """
        try:
            data = ds.to_table(columns=list(columns) if columns else None, filter=where, limit=limit,
                               batch_size=_SCAN_BATCH, batch_readahead=_SCAN_READAHEAD)
        except (ValueError, OSError) as exc:
            raise StoreError(f"cannot read {name!r} (columns={columns}, where={where!r}): {exc}") from None
        return cast(pl.DataFrame, pl.from_arrow(data, rechunk=False))  # a Table gives a DataFrame

    def schema(self, name: str) -> pa.Schema:
        return self._open(name).schema

    def upsert(self, name: str, data: pa.Table, *, key: str = "segment_id", schema: pa.Schema | None = None) -> None:
        """Insert or update rows by ``key``: one atomic commit."""
        schema = _keyed(schema or data.schema, key)
        data = data.select(schema.names).cast(schema)
        if not self.has_table(name):
            try:
                if self._create(name, data, schema):
                    return
            except (ValueError, OSError) as exc:
                if not self.has_table(name):  # not a lost race with another writer
                    raise StoreError(f"cannot create table {name!r}: {exc}") from None
        table = self._open(name)
        # A commit that conflicts with a concurrent writer is rebased and retried by Lance itself (it knows a
        # conflict by type, not by its message); any other error is raised at once.
        (
            table.merge_insert(key)
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .conflict_retries(_COMMIT_RETRIES)
            .execute(_null_bad_vectors(_conform(data, table.schema)))
        )

    def append(self, name: str, data: pa.Table) -> None:
        import lance  # 1.6 s to import: only when a table is touched, so `import ambiguity` stays quick

        if not self.has_table(name) and self._create(name, data, data.schema):
            return
        lance.write_dataset(_conform(data, self._open(name).schema), self._uri(name), mode="append")

    def delete(self, name: str, where: str) -> None:
        self._open(name).delete(where)

    def drop(self, name: str) -> None:
        import lance  # 1.6 s to import: only when a table is touched, so `import ambiguity` stays quick

        lance.LanceDataset.drop(self._uri(name), ignore_not_found=True)

    def compact(self, names: Sequence[str] | None = None) -> dict[str, int]:
        """Merge small fragments and drop old versions; returns fragments per table after."""
        out = {}
        for name in names or self.table_names():
            ds = self._open(name)
            ds.optimize.compact_files()
            # Keep recent versions: a concurrent reader may still be on one.
            ds.cleanup_old_versions(older_than=timedelta(minutes=10))
            if ds.list_indices():
                ds.optimize.optimize_indices()
            out[name] = len(self._open(name).get_fragments())
        return out

    # -- segments -----------------------------------------------------------------
    def upsert_segments(self, data: pa.Table) -> None:
        self.upsert("segments", data, schema=S.SEGMENTS_SCHEMA)

    def segments(self, columns: Sequence[str] | None = None, where: str | None = None, *,
                 segment_id: Sequence[str] | str | None = None, split: Sequence[str] | str | None = None) -> pl.DataFrame:
        """The segments table (the given columns), filtered by ids and splits (a value or a list; None: all)."""
        if not self.has_table("segments"):
            raise MissingGroupError(f"the store at {self.uri} has no segments: run `ambiguity ingest` first")
        typed = typed_where(segment_id=segment_id, split=split)
        return self.read("segments", columns, " AND ".join(w for w in (where, typed) if w) or None)

    # -- feature groups -------------------------------------------------------------
    def groups(self) -> dict[str, dict[str, Any]]:
        """Every feature group with its provenance."""
        out = {}
        for name in self.table_names():
            if name.startswith(S.FEATURE_PREFIX):
                out[name[len(S.FEATURE_PREFIX) :]] = S.read_provenance(self.schema(name))
        return out

    def has_group(self, group: str) -> bool:
        return self.has_table(S.table_name(group))

    def check_group(self, group: str, prov: dict[str, Any]) -> None:
        """Refuse to mix a second configuration of an extractor into an existing group."""
        S.check_group_name(group)
        if not self.has_group(group):
            return
        old = S.read_provenance(self.schema(S.table_name(group)))
        if old.get("config_key") != prov.get("config_key"):
            raise GroupConflictError(
                f"feature group {group!r} holds {old.get('extractor')} v{old.get('extractor_version')} "
                f"with {old.get('params')}; this run asks for {prov.get('extractor')} "
                f"v{prov.get('extractor_version')} with {prov.get('params')}: pass group NAME to keep "
                "both, or recompute to replace the group", param=("group", "recompute")
            )

    def write_features(self, group: str, rows: pa.Table, schema: pa.Schema, prov: dict[str, Any]) -> None:
        """Upsert a batch of feature rows, creating the group with its provenance if new."""
        self.check_group(group, prov)
        self.upsert(S.table_name(group), rows, schema=S.with_provenance(schema, prov))

    def drop_group(self, group: str) -> None:
        self.drop(S.table_name(group))

    def group_status(self, group: str) -> pl.DataFrame:
        """segment_id, status, error of a group (empty frame if the group is new)."""
        if not self.has_group(group):
            return pl.DataFrame(schema={"segment_id": pl.String, "status": pl.String, "error": pl.String})
        return self.read(S.table_name(group), ["segment_id", "status", "error"])

    def features(
        self,
        groups: str | Sequence[str],
        columns: Sequence[str] | None = None,
        where: str | None = None,
        segment_ids: Sequence[str] | None = None,
        status: str | None = "ok",
    ) -> pl.DataFrame:
        """Feature rows as polars; several groups are inner-joined on ``segment_id``.

        Columns that two groups share are prefixed ``<group>.``; ``columns`` names the
        feature columns to read (from whichever group has them). ``status`` keeps
        rows of that status (None: all rows, with ``status`` and ``error``).
        """
        groups = [groups] if isinstance(groups, str) else list(groups)
        if not groups:
            raise StoreError("features(): name at least one feature group")
        filters = [f for f in (where, f"status = {quote(status)}" if status else None) if f]
        if segment_ids is not None:
            filters.append(id_filter(segment_ids) if len(segment_ids) else "false")
        # The status filter alone is cheaper in polars after the scan than pushed into it (Lance
        # evaluates it batch by batch and materialises late; bench/store_read.py).
        after = status if status and where is None and segment_ids is None else None
        flt = None if after else " AND ".join(f"({f})" for f in filters) or None
        frames = []
        for g in groups:
            name = S.table_name(g)
            try:  # one open per group: its schema and its rows come from the same handle
                ds = self._dataset(name)
            except (ValueError, FileNotFoundError, RuntimeError, OSError):
                raise MissingGroupError(f"no feature group {g!r}; the store has: {', '.join(self.groups()) or 'none'}") from None
            names = ds.schema.names
            keep = names if columns is None else ["segment_id"] + [c for c in columns if c in names and c != "segment_id"]
            if status and len(groups) > 1:
                keep = [c for c in keep if c not in ("status", "error")]
            read = keep if not after or "status" in keep else [*keep, "status"]
            frame = self._scan(ds, name, read, flt)
            if after:
                frame = frame.filter(pl.col("status") == after).select(keep)
            frames.append((g, frame))
        if columns is not None:
            found = {c for _, f in frames for c in f.columns}
            missing = [c for c in columns if c not in found]
            if missing:
                raise MissingGroupError(f"no column {', '.join(missing)} in group(s) {', '.join(groups)}")
        if len(frames) == 1:
            return frames[0][1]
        counts: dict[str, int] = {}
        for _, f in frames:
            for c in f.columns:
                counts[c] = counts.get(c, 0) + 1
        out = None
        for g, f in frames:
            f = f.rename({c: f"{g}.{c}" for c in f.columns if c != "segment_id" and counts[c] > 1})
            out = f if out is None else out.join(f, on="segment_id", how="inner")
        assert out is not None  # frames has >1 entries here
        return out

    def vectors(self, group: str, column: str = "vector", segment_ids: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
        """ids and an (n, d) float32 array of an embedding group's ``ok`` rows."""
        name = S.table_name(group)
        flt = "status = 'ok'"
        if segment_ids is not None:
            flt += f" AND {id_filter(segment_ids)}"
        data = self._open(name).to_table(columns=["segment_id", column], filter=flt)
        ids = data.column("segment_id").to_pylist()
        col = data.column(column).combine_chunks()
        if not pa.types.is_fixed_size_list(col.type):
            raise StoreError(f"column {column!r} of group {group!r} is not a vector column")
        arr = col.values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(len(ids), col.type.list_size)
        nulls = col.is_null().to_numpy(zero_copy_only=False)
        if nulls.any():  # a vector with a NaN element is stored null (_null_bad_vectors): read NaN, not the slot's leftovers
            arr = arr.copy()
            arr[nulls] = np.nan
        return ids, arr

    def status(self) -> pl.DataFrame:
        """ok / failed / empty / missing counts per feature group."""
        total = self.segments(["segment_id"]).height if self.has_table("segments") else 0
        rows = []
        for g in self.groups():
            st = self.group_status(g)
            counts = {s: int((st["status"] == s).sum()) for s in S.STATUSES}
            rows.append({"group": g, **counts, "missing": max(total - st.height, 0), "segments": total})
        return pl.DataFrame(
            rows, schema={"group": pl.String, "ok": pl.Int64, "failed": pl.Int64, "empty": pl.Int64, "missing": pl.Int64, "segments": pl.Int64}
        )


# Lance's merge_insert detects two writers inserting the same new key only when the key column
# is declared an (unenforced) primary key; without it both inserts commit and the key is
# duplicated (lance-format/lance#4585). Tables created before this declaration lack it.
_PRIMARY_KEY = {b"lance-schema:unenforced-primary-key": b"true"}


def _keyed(schema: pa.Schema, key: str) -> pa.Schema:
    """``schema`` with ``key`` declared as the table's primary key."""
    i = schema.get_field_index(key)
    if i < 0:
        raise StoreError(f"upsert key {key!r} is not a column of {schema.names}")
    field = schema.field(i)
    return schema.set(i, field.with_nullable(False).with_metadata({**(field.metadata or {}), **_PRIMARY_KEY}))


def _conform(data: pa.Table, target: pa.Schema) -> pa.Table:
    """``data`` cast to an existing table's field types and metadata (the columns ``data`` has)."""
    if data.schema.equals(target, check_metadata=True):
        return data
    fields = [target.field(n) if n in target.names else data.schema.field(n) for n in data.schema.names]
    return data.cast(pa.schema(fields, metadata=target.metadata))


def _is_vector(field: pa.Field) -> bool:
    """A vector column, as LanceDB decides it: fixed-size floats named vector/embedding, or of size >= 10."""
    t = field.type
    return (
        pa.types.is_fixed_size_list(t)
        and pa.types.is_floating(t.value_type)
        and (field.name in ("vector", "embedding") or t.list_size >= 10)
    )


def _null_bad_vectors(data: pa.Table) -> pa.Table:
    """A vector holding a NaN is stored null (LanceDB's ``on_bad_vectors="null"``, which failed rows need)."""
    import pyarrow.compute as pc  # 0.15 s: on the first write, not at import

    for i, field in enumerate(data.schema):
        if not _is_vector(field) or data.num_rows == 0:
            continue
        col = data.column(i).combine_chunks()
        flat = col.flatten()  # the values of the non-null slots, in row order
        nan = pc.is_nan(flat.cast(pa.float32()) if pa.types.is_float16(flat.type) else flat)
        if not pc.any(nan).as_py():
            continue
        bad_rows = pc.unique(pc.filter(pc.list_parent_indices(col), nan)).cast(pa.int64())
        bad = pc.is_in(pa.array(np.arange(len(col), dtype=np.int64)), value_set=bad_rows)
        data = data.set_column(i, field, pc.if_else(bad, pa.scalar(None, field.type), col))
    return data
