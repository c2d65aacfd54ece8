"""A small JSON cache on disk for facts that are slow to derive and never change for their key
(a weight file's sha256 by path, size and mtime; openSMILE's feature names by version and set).

``$AMBIGUITY_CACHE_DIR``, else ``$XDG_CACHE_HOME/ambiguity``, else ``~/.cache/ambiguity``.
Best effort: a cache that cannot be read or written means deriving the value again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

_LOADED: dict[str, dict[str, Any]] = {}


def cache_dir() -> Path:
    base = os.environ.get("AMBIGUITY_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ambiguity"
    )
    return Path(base)


def load(name: str) -> dict[str, Any]:
    """The cache ``name`` (a dict, shared within this process)."""
    p = str(cache_dir() / f"{name}.json")
    if p not in _LOADED:
        try:
            got = json.loads(Path(p).read_text())
            _LOADED[p] = got if isinstance(got, dict) else {}
        except (OSError, ValueError):
            _LOADED[p] = {}
    return _LOADED[p]


def put(name: str, key: str, value: Any) -> None:
    """Set ``key`` and write the cache file atomically (by rename)."""
    cache = load(name)
    cache[key] = value
    p = cache_dir() / f"{name}.json"
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.{os.getpid()}")
        tmp.write_text(json.dumps(cache))
        os.replace(tmp, p)
    except OSError:
        pass


def forget_loaded() -> None:
    """Drop what this process has read (tests: behave like a fresh process)."""
    _LOADED.clear()
