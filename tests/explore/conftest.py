"""Stores for the explorer tests: segments on real media (a Pexels clip with sound), predictions
of two unimodal models and a fusion model with known probabilities, optional extras."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("explore-clips")
