"""Stores and a server for the explorer tests (a module, not conftest: `from conftest import` is ambiguous across test folders)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from ambiguity.stores.schema import SEGMENTS_SCHEMA

ROOT = Path(__file__).resolve().parents[2]
CLIP = ROOT / "examples" / "data" / "faces" / "WolfgangLanger_Pexels.mp4"
WAV = ROOT / "examples" / "data" / "speech-emotion" / "00.wav"
CLASSES = ["empathetic", "neutral"]


def make_store(store, n: int, *, seed: int = 0, predictions: bool = True, transcripts=None, media=None, unlabelled: int = 0,
               repeats: int = 0):
    """``n`` segments of 1.0-2.5 s of the clip; probabilities drawn so that every quadrant is filled.

    Returns the segment ids, their labels and the drawn p(correct) per model.
    """
    rng = np.random.default_rng(seed)
    ids = [f"seg{i:06d}" for i in range(n)]
    labels = [CLASSES[i % 2] for i in range(n)]
    starts = rng.uniform(0, 16, n).round(2)
    durs = rng.uniform(1.0, 2.5, n).round(2)
    splits = rng.choice(["train", "val", "test"], n, p=[0.6, 0.2, 0.2]).tolist()
    meta = [json.dumps({"planted": ["audio", "video", None, None][i % 4], "speaker": f"sp{i % 3}"}) for i in range(n)]
    text = transcripts or [f"Transcript of segment {i}: how hard this has been." for i in range(n)]
    store.upsert_segments(pa.table({
        "segment_id": ids, "media": media or [str(CLIP)] * n, "audio": [None] * n,
        "start_s": starts.tolist(), "end_s": (starts + durs).round(2).tolist(), "transcript": text,
        "label": [None if i >= n - unlabelled else lab for i, lab in enumerate(labels)], "split": splits, "metadata": meta,
    }, schema=SEGMENTS_SCHEMA))
    p = {}
    if predictions:
        from ambiguity.models.predictions import prediction_table, write_predictions

        lab_ids = ids[: n - unlabelled]
        for model, mods in (("text.m", ["text"]), ("audio.m", ["audio"]), ("fusion", ["text", "audio"])):
            pc = rng.uniform(0.02, 0.98, len(lab_ids))
            probs = np.empty((len(lab_ids), 2))
            for i, lab in enumerate(labels[: len(lab_ids)]):
                k = CLASSES.index(lab)
                probs[i, k], probs[i, 1 - k] = pc[i], 1 - pc[i]
            write_predictions(store, prediction_table(
                model=model, kind="fusion" if model == "fusion" else "probe", arch="logistic", modalities=mods, groups=[],
                segment_ids=lab_ids, splits=splits[: len(lab_ids)], labels=labels[: len(lab_ids)], classes=CLASSES, probs=probs,
            ))
            p[model] = dict(zip(lab_ids, probs[np.arange(len(lab_ids)), [CLASSES.index(x) for x in labels[: len(lab_ids)]]], strict=True))
            for r in range(repeats):  # cross-fitted repeats: p(correct) moved around the fixed one
                from ambiguity.models.predictions import write_crossfit_rows

                pr = np.clip(pc + rng.normal(0, 0.25, len(lab_ids)), 0.01, 0.99)
                probs_r = np.empty((len(lab_ids), 2))
                for i, lab in enumerate(labels[: len(lab_ids)]):
                    k = CLASSES.index(lab)
                    probs_r[i, k], probs_r[i, 1 - k] = pr[i], 1 - pr[i]
                write_crossfit_rows(store, prediction_table(
                    model=model, kind="fusion" if model == "fusion" else "probe", arch="logistic", modalities=mods, groups=[],
                    segment_ids=lab_ids, splits=splits[: len(lab_ids)], labels=labels[: len(lab_ids)], classes=CLASSES, probs=probs_r,
                    scheme="crossfit", fold=[i % 5 for i in range(len(lab_ids))], repeat=r, run_id="cf",
                    config={"folds": 5, "repeats": repeats},
                ))
                p[f"{model}#{r}"] = dict(zip(lab_ids, pr, strict=True))
    return ids, labels, p, (starts, durs)


def start(app):
    """Run ``app`` with uvicorn on a free 127.0.0.1 port in a thread; returns (base URL, server)."""
    import uvicorn

    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the explorer did not start")
        time.sleep(0.05)
    port = srv.servers[0].sockets[0].getsockname()[1]
    return f"http://127.0.0.1:{port}", srv, thread
