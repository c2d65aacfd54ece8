"""ambiguity: find the hard, ambiguous examples in multimodal datasets."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ambiguity.version import __version__

if TYPE_CHECKING:
    from ambiguity.errors import AmbiguityError
    from ambiguity.extractors.base import Empty, Extractor, Failure
    from ambiguity.inputs import SegmentInput
    from ambiguity.stores.lance import FeatureStore, open_store

# Imported on first use (PEP 562): `import ambiguity.x` stays light, e.g. in a spawn
# worker that needs neither the store nor polars (docs/benchmarks.md, start-up).
_LAZY = {
    "AmbiguityError": "ambiguity.errors",
    "Empty": "ambiguity.extractors.base",
    "Extractor": "ambiguity.extractors.base",
    "Failure": "ambiguity.extractors.base",
    "SegmentInput": "ambiguity.inputs",
    "FeatureStore": "ambiguity.stores.lance",
    "open_store": "ambiguity.stores.lance",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ambiguity' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AmbiguityError",
    "Empty",
    "Extractor",
    "FeatureStore",
    "Failure",
    "SegmentInput",
    "__version__",
    "open_store",
]
