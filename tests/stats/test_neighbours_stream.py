"""The streamed exact search (issue 29): k nearest and nearest per class of a few query rows among rows fed batch
by batch, against the definition written here (scipy cdist over every pair, numpy argsort)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.spatial.distance import cdist

from ambiguity.stats.neighbours import scale_exponent
from ambiguity.stats.neighbours_stream import StreamedSearch


def _truth(x, codes, rows, k, metric):
    """k nearest (self excluded, rows with code -1 never neighbours) and each class's nearest, by definition."""
    d = cdist(x[rows].astype(np.float64), x.astype(np.float64), metric)
    d[np.arange(len(rows)), rows] = np.inf
    d[:, codes < 0] = np.inf
    knn = np.argsort(d, axis=1, kind="stable")[:, :k]
    near = np.stack([d[:, codes == c].min(axis=1) for c in range(codes.max() + 1)], axis=1)
    return knn, np.take_along_axis(d, knn, axis=1), near


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("batch", [7, 64, 1000])
def test_streamed_search_equals_the_definition(metric, batch):
    rng = np.random.default_rng(batch)
    n, d, k = 900, 12, 10
    x = (rng.normal(size=(n, d)) * rng.choice([1e-3, 1.0, 1e3], (n, 1))).astype(np.float32)
    codes = rng.integers(0, 3, n)
    codes[rng.random(n) < 0.05] = -1  # rows left out of the search (no label, a bad vector)
    rows = np.sort(rng.choice(np.flatnonzero(codes >= 0), 60, replace=False))
    top = float(np.abs(x[codes >= 0]).max())
    s = StreamedSearch(x[rows], rows, k, 3, metric, scale_exponent(top) if metric == "euclidean" else 0)
    for a in range(0, n, batch):
        s.add(x[a : a + batch], codes[a : a + batch])
    got = s.result()
    knn, dk, near = _truth(x, codes, rows, k, metric)
    assert_allclose(got.distance, dk, rtol=2e-4, atol=1e-5)
    assert_allclose(got.nearest, near, rtol=2e-4, atol=1e-5)
    # the same rows, except where the k-th distance ties (float32 products): then the same distances suffice
    same = (np.sort(got.index, axis=1) == np.sort(knn, axis=1)).all(axis=1)
    assert same.mean() > 0.95
    assert (got.index >= 0).all() and not np.isin(got.index, np.flatnonzero(codes < 0)).any()
    assert not (got.index == rows[:, None]).any()


def test_queries_outside_the_rows_and_fewer_rows_than_k():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 4)).astype(np.float32)
    q = rng.normal(size=(2, 4)).astype(np.float32)
    s = StreamedSearch(q, np.array([-1, -1]), 8, 2, "cosine")
    s.add(x, np.array([0, 1, 0, 1, 1]))
    got = s.result()
    d = cdist(q.astype(np.float64), x.astype(np.float64), "cosine")
    assert_allclose(got.distance[:, :5], np.sort(d, axis=1), rtol=1e-4, atol=1e-6)
    assert np.isinf(got.distance[:, 5:]).all() and (got.index[:, 5:] == -1).all()
    assert_allclose(got.nearest, np.stack([d[:, [0, 2]].min(1), d[:, [1, 3, 4]].min(1)], axis=1), rtol=1e-4, atol=1e-6)


def test_a_class_without_rows_is_infinitely_far():
    x = np.eye(4, dtype=np.float32) + 0.1
    s = StreamedSearch(x[:1], np.array([0]), 2, 3, "euclidean", scale_exponent(1.1))
    s.add(x, np.array([0, 0, 1, 1]))
    near = s.result().nearest
    assert np.isinf(near[0, 2]) and np.isfinite(near[0, :2]).all()


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_float64_rows_are_searched_in_float64(metric):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 6))
    codes = rng.integers(0, 2, 300)
    rows = np.arange(0, 300, 7)
    s = StreamedSearch(x[rows], rows, 5, 2, metric, scale_exponent(float(np.abs(x).max())) if metric == "euclidean" else 0)
    for a in range(0, 300, 50):
        s.add(x[a : a + 50], codes[a : a + 50])
    got = s.result()
    knn, dk, near = _truth(x, codes, rows, 5, metric)
    assert s.dtype == np.float64
    assert_allclose(got.distance, dk, rtol=1e-9, atol=1e-12)
    assert_allclose(got.nearest, near, rtol=1e-9, atol=1e-12)
    assert (got.index == knn).all()
