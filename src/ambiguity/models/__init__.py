"""Models: training unimodal and fusion models, and the predictions table.

The exports resolve on first use, so ``import ambiguity.models`` and
``ambiguity.models.predictions`` (the store's predictions, importing your own)
do not import torch; ``train`` does, when it is first looked up::

    from ambiguity.models import TrainConfig, train, import_predictions
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ambiguity.models.predictions import ImportReport, import_predictions, model_summary, read_predictions
    from ambiguity.models.spec import TrainConfig
    from ambiguity.models.training import TrainReport, train

_EXPORTS = {
    "ImportReport": "ambiguity.models.predictions",
    "import_predictions": "ambiguity.models.predictions",
    "model_summary": "ambiguity.models.predictions",
    "read_predictions": "ambiguity.models.predictions",
    "TrainConfig": "ambiguity.models.spec",
    "TrainReport": "ambiguity.models.training",
    "train": "ambiguity.models.training",
}

__all__ = ["ImportReport", "TrainConfig", "TrainReport", "import_predictions", "model_summary", "read_predictions", "train"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ambiguity.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
