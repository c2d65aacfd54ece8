"""The explorer's computed data kept in the store until what they were computed from changes.

``ambiguity explore`` spends nearly all its start-up on quadrants, scores and the points
document (114 s at 10^6 segments on 2 cores, before this cache). They are written once to
``<store>/_explore/<key>/`` and reused while ``key`` is the same. The key hashes the package
version, the explorer's options and the version and row count of every table the data are
read from (segments, predictions, features, dynamics, annotations): any write to them makes a
new Lance version, so a changed prediction means a new key and a recomputation. Tables the
explorer shows live, per segment, do not take part (tasks, attributions, saved models).
Only local stores keep a cache (a remote store computes every time). Only the newest entry is
kept; a half-written entry is never read (written to a temporary folder, then renamed).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore

CACHE_DIR = "_explore"
#: Bumped when what is cached changes shape.
FORMAT = 1
#: Tables read live (per segment) or written by the explorer itself: their versions are not in the key.
LIVE_TABLES = frozenset({"tasks", "attributions", "models"})


def cache_key(store: FeatureStore, params: dict[str, Any]) -> str:
    """A hash of the package version, ``params`` and the version and size of every input table."""
    from ambiguity.version import __version__

    tables = {t: [store.version(t), store.count(t)] for t in store.table_names() if t not in LIVE_TABLES}
    blob = json.dumps({"format": FORMAT, "package": __version__, "params": params, "tables": tables}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def cache_root(store: FeatureStore) -> Path | None:
    """``<store>/_explore`` for a local store, None for a remote one."""
    uri = store.uri
    if "://" in uri and not uri.startswith("file://"):
        return None
    return Path(uri.removeprefix("file://")) / CACHE_DIR


def read(store: FeatureStore, key: str) -> tuple[dict[str, Any], bytes] | None:
    """(meta, gzipped points document) of entry ``key``, or None if there is none."""
    root = cache_root(store)
    if root is None:
        return None
    d = root / key
    try:
        meta = json.loads((d / "meta.json").read_text())
        gz = (d / "points.json.gz").read_bytes()
    except (OSError, ValueError):
        return None
    return meta, gz


def frame(store: FeatureStore, key: str, name: str) -> pl.DataFrame:
    """A cached frame (``scores`` or ``quadrants-<i>``) of entry ``key``."""
    root = cache_root(store)
    assert root is not None  # only a local store's entry is ever read
    return pl.read_parquet(root / key / f"{name}.parquet")


def write(store: FeatureStore, key: str, meta: dict[str, Any], gz: bytes, frames: dict[str, pl.DataFrame]) -> Path | None:
    """Write entry ``key`` atomically and drop older entries; None (nothing written) if the store
    is remote or read-only for us."""
    root = cache_root(store)
    if root is None:
        return None
    try:
        root.mkdir(exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
        (tmp / "points.json.gz").write_bytes(gz)
        for name, df in frames.items():
            df.write_parquet(tmp / f"{name}.parquet")
        (tmp / "meta.json").write_text(json.dumps(meta, sort_keys=True))
        dest = root / key
        if dest.exists():
            shutil.rmtree(tmp, ignore_errors=True)
            return dest
        os.replace(tmp, dest)
    except OSError:
        return None
    for old in root.iterdir():
        if old.name != key and not old.name.startswith(".tmp-"):
            shutil.rmtree(old, ignore_errors=True)
    return dest
