"""Arrow schemas of the store's tables and the provenance kept in their metadata."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from ambiguity.errors import ConfigError, StoreError
from ambiguity.version import __version__

PROVENANCE_KEY = b"ambiguity.provenance"
FEATURE_PREFIX = "features."
#: The names no feature group may take: every table of ``stores.tables.TABLES`` (tests/stores/test_tables.py checks).
SYSTEM_TABLES = ("segments", "predictions", "dynamics", "models", "folds", "fits", "runs", "attributions", "annotations", "tasks",
                 "judgments", "ratings")
STATUSES = ("ok", "failed", "empty")
SPLITS = ("train", "val", "test")


def parse_splits(value: str | Sequence[str]) -> tuple[str, ...]:
    """Split names from ``"val,test"`` or ``["val", "test"]`` (commas allowed in items), checked against SPLITS."""
    items = [value] if isinstance(value, str) else list(value)
    out = tuple(dict.fromkeys(s.strip() for item in items for s in str(item).split(",") if s.strip()))
    bad = [s for s in out if s not in SPLITS]
    if not out or bad:
        raise ConfigError(f"splits {', '.join(out) or '(none)'}: choose from {', '.join(SPLITS)}")
    return out


_GROUP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-.]*$")

#: The type of each column that several tables share; a column that neither this nor its table types is a string.
SHARED_TYPES: dict[str, pa.DataType] = {
    "seed": pa.int64(),
    "fold": pa.int32(),  # crossfit: the held-out fold
    "repeat": pa.int32(),  # crossfit: 0 .. R-1
    "groups": pa.list_(pa.string()),  # feature groups a model reads, in input order
    "modalities": pa.list_(pa.string()),
    "classes": pa.list_(pa.string()),
}


def table_schema(
    columns: Sequence[str], types: Mapping[str, pa.DataType] | None = None, *, required: Sequence[str] = ()
) -> pa.Schema:
    """A store table's schema: ``columns`` in order, each typed by ``types`` (the table's own columns), else by
    SHARED_TYPES, else a string. ``key`` (the column rows are upserted on) and the ``required`` ones are never null."""
    own = dict(types or {})
    unknown = set(own) - set(columns)
    if unknown:
        raise ValueError(f"types of columns the table does not have: {sorted(unknown)}")
    never_null = {"key", *required}
    return pa.schema(
        [pa.field(c, own.get(c, SHARED_TYPES.get(c, pa.string())), nullable=c not in never_null) for c in columns]
    )


def now() -> str:
    """The time a row is written, as every table keeps it: UTC, ISO 8601, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


SEGMENTS_SCHEMA = table_schema(
    # ``metadata``: every other manifest column, as a JSON object: manifests differ in what they carry.
    ["segment_id", "media", "audio", "start_s", "end_s", "transcript", "label", "split", "metadata"],
    {"start_s": pa.float64(), "end_s": pa.float64()},
    required=["segment_id"],
)


def table_name(group: str) -> str:
    """The Lance table that holds a feature group."""
    return FEATURE_PREFIX + group


def check_group_name(group: str) -> str:
    if not _GROUP_RE.match(group) or group in SYSTEM_TABLES:
        raise StoreError(
            f"invalid feature group name {group!r}: use letters, digits, '_', '-' and '.', "
            f"and none of {', '.join(SYSTEM_TABLES)}"
        )
    return group


def provenance(
    extractor: str, version: str, params: dict[str, Any], config_key: str, **extra: Any
) -> dict[str, Any]:
    return {
        "extractor": extractor,
        "extractor_version": version,
        "params": params,
        "config_key": config_key,
        "package_version": __version__,
        "created_at": now(),
        **extra,
    }


def with_provenance(schema: pa.Schema, prov: dict[str, Any]) -> pa.Schema:
    meta = dict(schema.metadata or {})
    meta[PROVENANCE_KEY] = json.dumps(prov, sort_keys=True, default=str).encode()
    return schema.with_metadata(meta)


def read_provenance(schema: pa.Schema) -> dict[str, Any]:
    raw = (schema.metadata or {}).get(PROVENANCE_KEY)
    return json.loads(raw) if raw else {}
