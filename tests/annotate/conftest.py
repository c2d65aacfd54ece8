"""A small study on real media: segments of a Pexels clip (video + sound) and a speech WAV."""

from __future__ import annotations

import warnings
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from ambiguity.stores.schema import SEGMENTS_SCHEMA

ROOT = Path(__file__).resolve().parents[2]
CLIP = ROOT / "examples" / "data" / "faces" / "WolfgangLanger_Pexels.mp4"
WAV = ROOT / "examples" / "data" / "speech-emotion" / "00.wav"

# Transcripts are made up for the test (the clip has no speech); one carries markup
# that must be shown as text, never rendered.
SEGMENTS = [
    ("s1", CLIP, 0.5, 2.5, "I know how hard this has been <b>for you</b>.", "empathetic"),
    ("s2", CLIP, 3.0, 5.0, "The meeting is moved to Thursday.", "neutral"),
    ("s3", CLIP, 6.0, 8.0, "That sounds really painful, I'm here.", "empathetic"),
    ("w1", WAV, 0.2, 1.8, "An utterance with no video.", "neutral"),
    ("out1", CLIP, 10.0, 12.0, "Not part of the task.", "neutral"),
]


def add_segments(store, rows=SEGMENTS):
    n = len(rows)
    store.upsert_segments(
        pa.table(
            {
                "segment_id": [r[0] for r in rows],
                "media": [str(r[1]) for r in rows],
                "audio": [None] * n,
                "start_s": [r[2] for r in rows],
                "end_s": [r[3] for r in rows],
                "transcript": [r[4] for r in rows],
                "label": [r[5] for r in rows],
                "split": ["test"] * n,
                "metadata": ["{}"] * n,
            },
            schema=SEGMENTS_SCHEMA,
        )
    )


def make_task(store, name="pilot", flags=None, distinct=True):
    """Save a task with one item per (modality, segment) in ``flags``."""
    from ambiguity.annotate.tasks import save_task, stratified_sample

    flags = flags or {"text": ["s1"], "audio": ["s2", "w1"], "video": ["s3"]}
    labels = {r[0]: r[5] for r in SEGMENTS}
    quads = ["red", "green", "blue", "yellow"]
    frames = {}
    for m, ids in flags.items():
        frames[m] = pl.DataFrame(
            {"segment_id": ids, "quadrant": [quads[i % 4] for i in range(len(ids))], "label": [labels[i] for i in ids],
             "p_unimodal": [0.7] * len(ids), "p_fusion": [0.3] * len(ids)}
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        task = stratified_sample(frames, 1, seed=0, name=name, choices=["empathetic", "neutral"], distinct=distinct)
    save_task(store, task)
    return task


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    # shared: clips are keyed by source, times and kind, so tests reuse each other's cuts
    return tmp_path_factory.mktemp("clips")


@pytest.fixture
def helpers():
    from types import SimpleNamespace

    return SimpleNamespace(add_segments=add_segments, make_task=make_task, segments=SEGMENTS, clip=CLIP, wav=WAV)


@pytest.fixture
def study(store):
    add_segments(store)
    make_task(store)
    return store
