"""Synthetic stores for the model and quadrant tests: one informative modality, one noise modality."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from ambiguity.stores import schema as S


def write_segments(store, ids, labels, splits):
    n = len(ids)
    store.upsert_segments(
        pa.table(
            {
                "segment_id": ids, "media": [None] * n, "audio": [None] * n, "start_s": [None] * n,
                "end_s": [None] * n, "transcript": [None] * n, "label": labels, "split": splits,
                "metadata": [json.dumps({})] * n,
            },
            schema=S.SEGMENTS_SCHEMA,
        )
    )


def write_vector_group(store, group, ids, X, status=None, modality="text"):
    n, d = X.shape
    status = status or ["ok"] * n
    schema = pa.schema(
        [pa.field("segment_id", pa.string()), pa.field("status", pa.string()), pa.field("error", pa.string()),
         pa.field("vector", pa.list_(pa.float32(), d))]
    )
    rows = pa.table(
        {"segment_id": ids, "status": status, "error": [None] * n,
         "vector": pa.FixedSizeListArray.from_arrays(pa.array(X.astype(np.float32).ravel()), d)},
        schema=schema,
    )
    prov = S.provenance("synthetic", "1", {}, f"syn-{group}", modality=modality)
    store.write_features(group, rows, schema, prov)


def write_scalar_group(store, group, ids, X, status=None, modality="audio"):
    n, d = X.shape
    status = status or ["ok"] * n
    cols = [f"f{j}" for j in range(d)]
    schema = pa.schema(
        [pa.field("segment_id", pa.string()), pa.field("status", pa.string()), pa.field("error", pa.string())]
        + [pa.field(c, pa.float64()) for c in cols]
    )
    data = {"segment_id": ids, "status": status, "error": [None] * n}
    data.update({c: X[:, j].astype(np.float64) for j, c in enumerate(cols)})
    prov = S.provenance("synthetic", "1", {}, f"syn-{group}", modality=modality)
    store.write_features(group, pa.table(data, schema=schema), schema, prov)


def synthetic(n=400, d_info=24, d_noise=7, sep=1.2, seed=0, n_classes=2):
    """Labels; an informative (n, d_info) array; a pure-noise (n, d_noise) array; splits 70/15/15."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    centres = rng.normal(size=(n_classes, d_info))
    centres *= sep / np.linalg.norm(centres[0] - centres[1]) * 2
    info = centres[y] + rng.normal(size=(n, d_info))
    noise = rng.normal(size=(n, d_noise)) * 3 + 10
    u = rng.random(n)
    splits = np.where(u < 0.7, "train", np.where(u < 0.85, "val", "test"))
    ids = [f"s{i:04d}" for i in range(n)]
    labels = [f"c{k}" for k in y]
    return ids, labels, splits.tolist(), info, noise


def dataset(n=400, seed=0, **kw):
    """A two-group Dataset (informative "info", noise "noise") without a store."""
    from ambiguity.models.dataset import Dataset

    ids, labels, splits, info, noise = synthetic(n=n, seed=seed, **kw)
    classes = sorted(set(labels))
    y = np.array([classes.index(c) for c in labels])
    return Dataset(
        ("info", "noise"), ("text", "audio"), ids, [info.astype(np.float32), noise.astype(np.float32)],
        labels, classes, y, np.array(splits), {}, [[], []],
    )


def synthetic_store(store, n=400, seed=0):
    ids, labels, splits, info, noise = synthetic(n=n, seed=seed)
    write_segments(store, ids, labels, splits)
    write_vector_group(store, "text.syn", ids, info, modality="text")
    write_scalar_group(store, "noise", ids, noise, modality="audio")
    return store
