"""Models on stored features: training, saved models, predictions, modality attribution.

Names are imported on first use, so that ``ambiguity.models.predictions`` does not load torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "AttributionResult": "attributions",
    "attribute": "attributions",
    "interaction_frame": "attributions",
    "read_attributions": "attributions",
    "wide": "attributions",
    "MAX_EXACT": "attribution",
    "ShapleyResult": "attribution",
    "shapley_values": "attribution",
    "SavedModel": "saved",
    "load_model": "saved",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"ambiguity.models.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'ambiguity.models' has no attribute {name!r}")
