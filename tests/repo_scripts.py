"""The repository's scripts (bin/, tests/data/), which are not a package, loaded as modules by their path."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_script(path: str | Path) -> ModuleType:
    """The script at ``path`` (relative to the repository root) as a fresh module named after its file."""
    path = ROOT / path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
