"""Session-scoped tiny models (built once, saved to a temp folder) and helpers for the model extractor tests."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import tiny_models  # noqa: E402


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tiny-models")


@pytest.fixture(scope="session")
def roberta_dir(tiny_dir) -> Path:
    return tiny_models.text_model("roberta", tiny_dir / "roberta")


@pytest.fixture(scope="session")
def deberta_dir(tiny_dir) -> Path:
    return tiny_models.text_model("deberta-v2", tiny_dir / "deberta-v2")


@pytest.fixture(scope="session")
def hubert_dir(tiny_dir) -> Path:
    return tiny_models.audio_model("hubert", tiny_dir / "hubert")


@pytest.fixture(scope="session")
def wav2vec2_dir(tiny_dir) -> Path:
    return tiny_models.audio_model("wav2vec2", tiny_dir / "wav2vec2")


@pytest.fixture(scope="session")
def videomae_dir(tiny_dir) -> Path:
    return tiny_models.video_model("videomae", tiny_dir / "videomae")


@pytest.fixture(scope="session")
def timesformer_dir(tiny_dir) -> Path:
    return tiny_models.video_model("timesformer", tiny_dir / "timesformer")


def write_manifest(path: Path, rows: list[dict]) -> Path:
    keys = sorted({k for r in rows for k in r})
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, keys)
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture
def ingest_rows(store, tmp_path):
    """Write rows as a manifest CSV and ingest it into the test's store."""
    from ambiguity.segments import load_manifest

    def _ingest(rows: list[dict]):
        store.upsert_segments(load_manifest(write_manifest(tmp_path / "manifest.csv", rows)))
        return store

    return _ingest
