"""The explorer's computed data kept in the store until what they were computed from changes.

``ambiguity explore`` spends nearly all its start-up on quadrants, scores and the points
document (114 s at 10^6 segments on 2 cores, before this cache). They are written once to
``<store>/_explore/<key>/`` and reused while ``key`` is the same. The key hashes the package
version, the explorer's options and the version and row count of every table the data are
read from (segments, predictions, features, dynamics, annotations): any write to them makes a
new Lance version, so a changed prediction means a new key and a recomputation. Tables the
explorer shows live, per segment, do not take part (tasks, attributions, saved models).
An entry is ``meta.json`` (the page's summary: codes, exact counts), ``points.arrow`` (one row per
segment, memory-mapped by :mod:`ambiguity.explore.points`) and the quadrant and score frames as
Parquet sorted by segment id (a segment page reads its row by predicate, not the whole frame).
Only local stores keep a cache (a remote store computes into a temporary folder every time). Only
the newest entry is kept; a half-written entry is never read (written to a temporary folder, then renamed).
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
FORMAT = 2
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


def read(store: FeatureStore, key: str) -> tuple[dict[str, Any], Path] | None:
    """(meta, folder) of entry ``key``, or None if there is none."""
    root = cache_root(store)
    if root is None:
        return None
    d = root / key
    try:
        meta = json.loads((d / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    return (meta, d) if (d / "points.arrow").exists() else None


def begin(store: FeatureStore, keep: bool = True) -> Path:
    """An empty folder for a new entry: a temporary one in the store's cache, or (not ``keep``, a remote
    store, or one we cannot write to) a scratch folder of this process, removed at exit."""
    root = cache_root(store)
    try:
        if root is None or not keep:
            raise OSError("remote store")
        root.mkdir(exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    except OSError:
        import atexit

        d = Path(tempfile.mkdtemp(prefix="ambiguity-explore-"))
        atexit.register(shutil.rmtree, d, ignore_errors=True)
        return d


def write_frame(folder: Path, name: str, df: pl.DataFrame) -> None:
    """A quadrant or score frame, sorted by segment id with row-group statistics (a segment's row is read
    by predicate, skipping the other row groups)."""
    df.sort("segment_id").write_parquet(folder / f"{name}.parquet", row_group_size=65_536, statistics=True)


def commit(store: FeatureStore, key: str | None, folder: Path, meta: dict[str, Any]) -> Path:
    """Finish the entry in ``folder`` (meta last) and, when it is in the store's cache, rename it to ``key``
    and drop older entries. Returns where the entry is."""
    (folder / "meta.json").write_text(json.dumps(meta, sort_keys=True))
    root = cache_root(store)
    if key is None or root is None or folder.parent != root:
        return folder
    dest = root / key
    try:
        if dest.exists():  # another process finished the same entry first
            shutil.rmtree(folder, ignore_errors=True)
            return dest
        os.replace(folder, dest)
    except OSError:
        return folder
    for old in root.iterdir():
        if old.name != key and not old.name.startswith(".tmp-"):
            shutil.rmtree(old, ignore_errors=True)
    return dest
