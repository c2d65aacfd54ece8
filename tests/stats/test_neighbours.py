"""The recall the index path reports with its neighbours (stats/neighbours.py): measured against
exact search on a sample, it equals the recall computed from the definition on the same rows."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

import ambiguity.stats.neighbours as N
from ambiguity.stats.neighbours import neighbours


def _data(n: int = 1500, d: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(12, d))
    x = (centres[rng.integers(0, 12, n)] + 0.9 * rng.normal(size=(n, d))).astype(np.float32)
    return x, np.where(rng.random(n) < 0.5, "a", "b")


def _recall_by_definition(x, got, rows, k, metric):
    """Share of each row's true k nearest (scipy cdist, self excluded) among the returned ones."""
    dist = cdist(x[rows].astype(np.float64), x.astype(np.float64), metric)
    dist[np.arange(len(rows)), rows] = np.inf
    truth = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.mean([len(set(t) & set(g)) / k for t, g in zip(truth, got[rows], strict=True)])


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_reported_recall_equals_the_definition_on_every_row(metric, monkeypatch):
    x, lab = _data()
    monkeypatch.setattr(N, "RECALL_SAMPLE", len(x))  # the sample is every row: compare with the whole
    nb = neighbours(x, lab, 10, metric, exact_limit=100, nprobes=2)  # few probes: recall below 1
    assert nb.method == "index" and nb.recall_rows == len(x)
    want = _recall_by_definition(x, nb.index, np.arange(len(x)), 10, metric)
    assert want < 1.0  # the case is one where the index misses some
    assert nb.recall == pytest.approx(want, abs=2e-3)  # ties at the k-th distance may count either way
    assert "recall@10" in nb.describe()


def test_sampled_recall_is_measured_on_a_sample_and_near_the_whole():
    x, lab = _data(seed=1)
    nb = neighbours(x, lab, 10, "cosine", exact_limit=100, nprobes=2)
    assert nb.recall_rows == N.RECALL_SAMPLE
    whole = _recall_by_definition(x, nb.index, np.arange(len(x)), 10, "cosine")
    assert abs(nb.recall - whole) < 0.05  # 500 of 1500 rows: a sampling error of about 0.01


def test_exhaustive_probe_has_recall_one_and_exact_path_says_exact():
    x, lab = _data(n=400, seed=2)
    nb = neighbours(x, lab, 5, "euclidean", exact_limit=10, nprobes=20)  # 20 partitions: all probed
    assert nb.recall == 1.0 and nb.nearest_recall == 1.0
    ex = neighbours(x, lab, 5, "euclidean")
    assert ex.method == "exact" and ex.recall_rows == 0 and ex.describe() == "exact kNN search"


def test_boundary_result_says_the_recall_of_its_index_search():
    from ambiguity.stats.boundary_tests import boundary_arrays

    x, lab = _data(n=600, seed=3)
    res = boundary_arrays(x, lab, k=10, metric="cosine", n_permutations=0, exact_limit=100)
    assert res.method == "index" and res.recall_note and "recall@10" in res.recall_note
    assert "recall@10" in res.describe()
    assert boundary_arrays(x, lab, k=10, metric="cosine", n_permutations=0).recall_note is None
