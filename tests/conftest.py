"""Shared fixtures: a fresh store on disk and the real data shipped in examples/data."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "data"


@pytest.fixture
def store(tmp_path):
    from ambiguity import open_store

    return open_store(tmp_path / "store")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def speech_dir() -> Path:
    return DATA / "speech-emotion"


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    return DATA / "faces"
