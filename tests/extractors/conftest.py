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


def _tiny(build, kind: str):
    """A session fixture: the tiny ``kind`` model that ``build`` (a tiny_models builder) saves in its own folder."""

    @pytest.fixture(scope="session")
    def model_dir(tiny_dir) -> Path:
        return build(kind, tiny_dir / kind)

    return model_dir


roberta_dir = _tiny(tiny_models.text_model, "roberta")
deberta_dir = _tiny(tiny_models.text_model, "deberta-v2")
hubert_dir = _tiny(tiny_models.audio_model, "hubert")
wav2vec2_dir = _tiny(tiny_models.audio_model, "wav2vec2")
videomae_dir = _tiny(tiny_models.video_model, "videomae")
timesformer_dir = _tiny(tiny_models.video_model, "timesformer")


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
