"""Steps that run in a spawned process of their own on large stores.

Measured at 10^6 segments: after computing the quadrants (or the scores, or a feature comparison) in one
process, 0.2-1.0 GB stays resident with nothing of ours referenced (what the allocators keep: glibc, mimalloc,
polars' jemalloc), and the next step starts from there. A step in its own process gives all of it back when
the process ends. Spawned, never forked: Lance is not fork-safe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore

T = TypeVar("T")

#: Above this many segments the explorer's and the report's heavy steps each run in a spawned process.
APART_ABOVE = 200_000


def run_apart(apart: bool, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` here, or (``apart``) in a spawned process of its own; its errors are raised here."""
    if not apart:
        return fn(*args)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as ex:
        return ex.submit(fn, *args).result()


def opened(store: FeatureStore | str) -> FeatureStore:
    """The store, or the store at a URI (what a spawned step is given)."""
    from ambiguity.stores.lance import open_store

    return open_store(store) if isinstance(store, str) else store
