from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_MAKER = Path(__file__).resolve().parents[1] / "data" / "bad" / "make_corpus.py"


@pytest.fixture(scope="session")
def bad(tmp_path_factory) -> dict[str, Path]:
    """The hostile-input corpus, generated once per session by tests/data/bad/make_corpus.py."""
    spec = importlib.util.spec_from_file_location("make_corpus", _MAKER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.make(tmp_path_factory.mktemp("bad"))
