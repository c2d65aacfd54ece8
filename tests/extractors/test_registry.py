"""The registry asks an extractor's availability anew each time (found by the paper test in the full suite)."""

from pathlib import Path

import pytest

from ambiguity.errors import UnavailableError
from ambiguity.extractors import registry

FAKE_OPENFACE = Path(__file__).resolve().parents[1] / "fake_openface" / "FeatureExtraction"


def test_availability_follows_the_environment_after_the_first_look(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no ambiguity.toml naming a binary
    monkeypatch.delenv("OPENFACE_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UnavailableError):
        registry.get("openface")
    assert not registry.entries()["openface"].available
    monkeypatch.setenv("OPENFACE_BIN", str(FAKE_OPENFACE))
    assert registry.get("openface").name == "openface"
    assert registry.entries()["openface"].available
