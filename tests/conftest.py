"""Shared fixtures: a fresh store on disk and the real data shipped in examples/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import hypothesis_profiles  # noqa: F401  (loads the HYPOTHESIS_PROFILE profile)

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


CHROMIUM = os.environ.get("AMBIGUITY_CHROMIUM", "/usr/bin/chromium")  # Debian's package
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
_HOW = "install Debian's chromium (`apt-get install chromium`) and set AMBIGUITY_REQUIRE_BROWSER=1 to require this test"


@pytest.fixture
def chromium() -> dict:
    """Playwright launch options for a headless Chromium (``p.chromium.launch(**chromium)``).

    Skips without one, or fails when AMBIGUITY_REQUIRE_BROWSER=1 (as CI sets it).
    """
    problems = []
    if not (Path(CHROMIUM).exists() and os.access(CHROMIUM, os.X_OK)):
        problems.append(f"no Chromium at {CHROMIUM}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("the playwright Python package is not installed (pip install playwright; no browser download needed)")
    if problems:
        msg = "; ".join(problems) + f": {_HOW}"
        if os.environ.get("AMBIGUITY_REQUIRE_BROWSER") == "1":
            pytest.fail(f"AMBIGUITY_REQUIRE_BROWSER=1 but {msg}", pytrace=False)
        pytest.skip(msg)
    return {"executable_path": CHROMIUM, "headless": True, "args": list(CHROMIUM_ARGS)}
