"""ambiguity: find the hard, ambiguous examples in multimodal datasets."""

from __future__ import annotations

from ambiguity.errors import AmbiguityError
from ambiguity.extractors.base import Empty, Extractor, Failure
from ambiguity.inputs import SegmentInput
from ambiguity.stores.lance import FeatureStore, open_store
from ambiguity.version import __version__

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
