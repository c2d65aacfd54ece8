"""ambiguity: find the hard, ambiguous examples in multimodal datasets."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ambiguity.errors import AmbiguityError
from ambiguity.extractors.base import Empty, Extractor, Failure, SegmentInput
from ambiguity.stores.lance import FeatureStore, open_store

try:
    __version__ = version("ambiguity")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"

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
