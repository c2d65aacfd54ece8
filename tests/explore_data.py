"""Stores for the explorer tests (a module, not conftest: `from conftest import` is ambiguous across test folders)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from ambiguity.stores.schema import SEGMENTS_SCHEMA

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "examples" / "data" / "faces" / "WolfgangLanger_Pexels.mp4"
WAV = ROOT / "examples" / "data" / "speech-emotion" / "00.wav"
CLASSES = ["empathetic", "neutral"]


def _probs(labels: list[str], p_correct: np.ndarray) -> np.ndarray:
    """Two-class probabilities with ``p_correct`` in each segment's label column."""
    probs = np.empty((len(labels), 2))
    for i, lab in enumerate(labels):
        k = CLASSES.index(lab)
        probs[i, k], probs[i, 1 - k] = p_correct[i], 1 - p_correct[i]
    return probs


def make_store(store, n: int, *, seed: int = 0, predictions: bool = True, transcripts=None, media=None, unlabelled: int = 0,
               repeats: int = 0, split: str | None = None):
    """``n`` segments of 1.0-2.5 s of the clip; probabilities drawn so that every quadrant is filled.

    ``split``: every segment in this split (``test``: every point has an out-of-sample quadrant on the fixed
    scheme); default a random train/val/test split (the fixed scheme shows the test split only).

    Returns the segment ids, their labels and the drawn p(correct) per model.
    """
    rng = np.random.default_rng(seed)
    ids = [f"seg{i:06d}" for i in range(n)]
    labels = [CLASSES[i % 2] for i in range(n)]
    starts = rng.uniform(0, 16, n).round(2)
    durs = rng.uniform(1.0, 2.5, n).round(2)
    splits = rng.choice(["train", "val", "test"], n, p=[0.6, 0.2, 0.2]).tolist()
    splits = [split] * n if split else splits  # drawn either way: the same random stream after it
    meta = [json.dumps({"planted": ["audio", "video", None, None][i % 4], "speaker": f"sp{i % 3}"}) for i in range(n)]
    text = transcripts or [f"Transcript of segment {i}: how hard this has been." for i in range(n)]
    store.upsert_segments(pa.table({
        "segment_id": ids, "media": media or [str(CLIP)] * n, "audio": [None] * n,
        "start_s": starts.tolist(), "end_s": (starts + durs).round(2).tolist(), "transcript": text,
        "label": [None if i >= n - unlabelled else lab for i, lab in enumerate(labels)], "split": splits, "metadata": meta,
    }, schema=SEGMENTS_SCHEMA))
    p = {}
    if predictions:
        from ambiguity.models.predictions import prediction_table, write_crossfit_rows, write_predictions

        lab_ids, lab_labels = ids[: n - unlabelled], labels[: n - unlabelled]
        for model, mods in (("text.m", ["text"]), ("audio.m", ["audio"]), ("fusion", ["text", "audio"])):
            table = dict(model=model, kind="fusion" if model == "fusion" else "probe", arch="logistic", modalities=mods,
                         groups=[], segment_ids=lab_ids, splits=splits[: len(lab_ids)], labels=lab_labels, classes=CLASSES)
            pc = rng.uniform(0.02, 0.98, len(lab_ids))
            write_predictions(store, prediction_table(**table, probs=_probs(lab_labels, pc)))
            p[model] = dict(zip(lab_ids, pc, strict=True))
            for r in range(repeats):  # cross-fitted repeats: p(correct) moved around the fixed one
                pr = np.clip(pc + rng.normal(0, 0.25, len(lab_ids)), 0.01, 0.99)
                write_crossfit_rows(store, prediction_table(
                    **table, probs=_probs(lab_labels, pr), scheme="crossfit", fold=[i % 5 for i in range(len(lab_ids))],
                    repeat=r, run_id="cf", config={"folds": 5, "repeats": repeats},
                ))
                p[f"{model}#{r}"] = dict(zip(lab_ids, pr, strict=True))
    return ids, labels, p, (starts, durs)

