"""Boundary analysis at scale (issue 29): the index path's recall and its tuning to a target, checked against
exact kNN written from the definition here (scipy cdist + numpy argsort); the sampled path (neighbours of a
seeded sample per quadrant, searched among all segments): its values, caption and exact permutation tests;
the store read into a memory-mapped matrix."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from numpy.testing import assert_allclose
from scipy.spatial.distance import cdist

import ambiguity.stats.boundary_store as B
import ambiguity.stats.neighbours as N
from ambiguity.stats.boundary_store import boundary
from ambiguity.stats.boundary_tests import boundary_arrays
from ambiguity.stats.neighbours import neighbours


def _data(n=1500, d=16, seed=0, spread=0.9):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(12, d))
    x = (centres[rng.integers(0, 12, n)] + spread * rng.normal(size=(n, d))).astype(np.float32)
    return x, np.where(rng.random(n) < 0.5, "a", "b")


def _truth(x, lab, k, metric):
    """Exact k nearest (self excluded) and the distance to the nearest other row of each label, by definition."""
    d = cdist(x.astype(np.float64), x.astype(np.float64), metric)
    np.fill_diagonal(d, np.inf)
    knn = np.argsort(d, axis=1, kind="stable")[:, :k]
    near = np.stack([d[:, lab == c].min(axis=1) for c in sorted(set(lab))], axis=1)
    return knn, near


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_tuned_index_reaches_the_target_recall_by_the_definition(metric, monkeypatch):
    x, lab = _data(seed=4)
    monkeypatch.setattr(N, "RECALL_SAMPLE", len(x))  # the reported recall is then over every row
    nb = neighbours(x, lab, 10, metric, exact_limit=100, target_recall=0.95)
    knn, near = _truth(x, lab, 10, metric)
    found = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(knn, nb.index, strict=True)])
    assert nb.method == "index" and nb.target == 0.95
    steps = [s for s in nb.tuning if s[0] == "recall@10"]
    # stopped at the first probe count whose 95% lower bound on the tuning sample reached the target
    assert steps[-1][3] >= 0.95 and steps[-1][2] >= steps[-1][3] and steps[-1][1] == nb.nprobes
    assert all(lb < 0.95 for *_, lb in steps[:-1]) and [s[1] for s in steps] == [N.FIRST_PROBES * 2**i for i in range(len(steps))]
    assert found >= 0.95  # the tuning sample is every row here: the same rows, ties aside
    assert nb.recall == pytest.approx(found, abs=2e-3)
    # nearest-per-label recall: share of rows whose nearest row of every label has the exact distance
    ok = np.isclose(nb.nearest, near, rtol=1e-4, atol=1e-5).all(axis=1).mean()
    assert nb.nearest_recall == pytest.approx(ok, abs=0.01) and ok >= 0.9


def test_a_higher_target_probes_more_and_finds_more():
    x, lab = _data(seed=5, spread=1.3)
    knn, _ = _truth(x, lab, 10, "cosine")
    got = {}
    for t in (0.6, 0.99):
        nb = neighbours(x, lab, 10, "cosine", exact_limit=100, target_recall=t)
        got[t] = (nb.nprobes, np.mean([len(set(a) & set(b)) / 10 for a, b in zip(knn, nb.index, strict=True)]))
    assert got[0.99][0] > got[0.6][0]
    assert got[0.99][1] > got[0.6][1] and got[0.99][1] >= 0.97
    assert "raised until the 95% lower bound of recall@10" in neighbours(x, lab, 10, "cosine", exact_limit=100).describe()


def test_index_path_for_some_rows_equals_the_definition_when_every_partition_is_probed():
    x, lab = _data(n=600, seed=6)
    rows = np.array([3, 50, 599, 200])
    nb = neighbours(x, lab, 5, "euclidean", exact_limit=10, nprobes=10_000, rows=rows)  # all partitions: exhaustive
    knn, near = _truth(x, lab, 5, "euclidean")
    assert (nb.index == knn[rows]).all()
    assert_allclose(nb.nearest, near[rows], rtol=1e-4)


def _quadrants(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.choice(["red", "green", "blue", "yellow"], n, p=[0.1, 0.2, 0.5, 0.2])


def test_sampled_path_values_equal_the_full_analysis_for_the_sampled_segments():
    x, lab = _data(n=800, seed=7)
    ids = [f"s{i:03d}" for i in range(800)]
    quad = _quadrants(800)
    full = boundary_arrays(x, lab, ids=ids, quadrants=quad, k=10, n_permutations=0)
    part = boundary_arrays(x, lab, ids=ids, quadrants=quad, k=10, n_permutations=0, query_sample=40, seed=3)
    seg = part.segments
    asked = seg.filter(pl.col("other_share").is_not_null())
    # at most 40 per quadrant, every quadrant represented
    per = dict(asked.group_by("quadrant").len().iter_rows())
    assert per == {q: min(40, int((quad == q).sum())) for q in ("red", "green", "blue", "yellow")}
    rest = seg.filter(pl.col("other_share").is_null())
    assert rest.height == 800 - asked.height and set(rest["reason"].to_list()) == {"not in the query sample"}
    ref = full.segments.join(asked.select("segment_id"), on="segment_id").sort("segment_id")
    assert_allclose(asked.sort("segment_id")["other_share"].to_numpy(), ref["other_share"].to_numpy())
    assert_allclose(asked.sort("segment_id")["margin"].to_numpy(), ref["margin"].to_numpy(), rtol=1e-5)
    # seeded: the same seed draws the same segments, another seed others
    again = boundary_arrays(x, lab, ids=ids, quadrants=quad, k=10, n_permutations=0, query_sample=40, seed=3)
    other = boundary_arrays(x, lab, ids=ids, quadrants=quad, k=10, n_permutations=0, query_sample=40, seed=4)
    pick = lambda r: set(r.segments.filter(pl.col("other_share").is_not_null())["segment_id"].to_list())  # noqa: E731
    assert pick(again) == pick(part) != pick(other)
    text = part.describe()
    assert "seeded sample of at most 40 segments per quadrant (160 in all), searched among all 800 segments" in text
    assert "summary and tests are of the sample" in text


def test_sampled_path_tests_are_exact_permutation_tests_on_the_sample():
    x, lab = _data(n=400, seed=8)
    quad = _quadrants(400, seed=1)
    res = boundary_arrays(x, lab, quadrants=quad, k=10, n_permutations=10_000, query_sample=6, seed=2,
                          pairs=[("red", "blue")], correction="none")
    seg = res.segments
    a = seg.filter((pl.col("quadrant") == "red") & pl.col("other_share").is_not_null())["other_share"].to_numpy()
    b = seg.filter((pl.col("quadrant") == "blue") & pl.col("other_share").is_not_null())["other_share"].to_numpy()
    assert len(a) == len(b) == 6
    # reference: every one of the C(12, 6) = 924 splits of the pooled sample, two-sided, from the definition
    pooled = np.concatenate([a, b])
    obs = abs(a.mean() - b.mean())
    diffs = [abs(pooled[list(c)].mean() - np.delete(pooled, list(c)).mean()) for c in itertools.combinations(range(12), 6)]
    p_exact = np.mean(np.asarray(diffs) >= obs - 1e-12)
    row = res.tests.filter(pl.col("metric") == "other_share").row(0, named=True)
    assert row["n_a"] == 6 and row["n_b"] == 6
    assert row["p"] == pytest.approx(p_exact, abs=1e-9)


def test_query_sample_needs_quadrants():
    x, lab = _data(n=100, seed=9)
    with pytest.raises(Exception, match="give quadrants"):
        boundary_arrays(x, lab, query_sample=10)


def _store_group(store, x, lab, ids, group="emb"):
    n = len(ids)
    seg = pa.table({"segment_id": ids, "media": [None] * n, "audio": [None] * n, "start_s": [0.0] * n,
                    "end_s": [1.0] * n, "transcript": [None] * n, "label": list(lab), "split": ["train", "test"] * (n // 2),
                    "metadata": [None] * n})
    store.upsert_segments(seg)
    vec = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), x.shape[1])
    tbl = pa.table({"segment_id": ids, "status": ["ok"] * n, "error": [None] * n, "vector": vec})
    store.write_features(group, tbl, tbl.schema, {"extractor": "fake", "extractor_version": "1", "params": {}, "config_key": "k"})


def test_store_read_into_a_memory_mapped_matrix_gives_the_same_answer(store, monkeypatch):
    x, lab = _data(n=300, seed=10)
    ids = [f"seg{i:03d}" for i in range(300)]
    _store_group(store, x, lab.tolist(), ids)
    in_memory = boundary(store, "emb", k=5, n_permutations=0)
    assert in_memory.memory_note is None
    monkeypatch.setattr(N, "MAP_BYTES", 0)  # every matrix is memory-mapped now
    mapped = boundary(store, "emb", k=5, n_permutations=0)
    assert mapped.memory_note and "memory-mapped temporary file" in mapped.memory_note
    assert_allclose(mapped.segments["margin"].to_numpy(), in_memory.segments["margin"].to_numpy(), rtol=1e-6)
    # and both equal the analysis of the arrays themselves
    ref = boundary_arrays(x, lab, ids=ids, k=5, n_permutations=0)
    assert_allclose(mapped.segments["other_share"].to_numpy(), ref.segments["other_share"].to_numpy())


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_store_sampled_path_is_streamed_and_equals_the_arrays(store, monkeypatch, metric):
    x, lab = _data(n=400, seed=11)
    x[7] = np.nan  # stored null: a reason, never a neighbour
    ids = [f"seg{i:03d}" for i in range(400)]
    labels = lab.tolist()
    labels[9] = None
    _store_group(store, x, labels, ids)
    quad = pl.DataFrame({"segment_id": ids, "quadrant": _quadrants(400, seed=2)})
    monkeypatch.setattr(B, "BATCH_ROWS", 64)  # the store is read in 7 batches
    got = boundary(store, "emb", k=5, metric=metric, quadrants=quad, query_sample=15, seed=1, n_permutations=0)
    assert got.memory_note and "searched exactly in one pass" in got.memory_note
    # the reference: the whole matrix in memory, every row's neighbours searched by neighbours() (exact below
    # its limit), then the sampled rows picked out; the sample is the same seeded draw
    ref = boundary_arrays(x, labels, ids=ids, quadrants=quad, k=5, metric=metric, n_permutations=0)
    asked = got.segments.filter(pl.col("other_share").is_not_null())
    assert asked.height == 60 and got.queried == 60 and got.searched == 398
    want = ref.segments.join(asked.select("segment_id"), on="segment_id", maintain_order="right")
    assert_allclose(asked["other_share"].to_numpy(), want["other_share"].to_numpy())
    assert_allclose(asked["margin"].to_numpy(), want["margin"].to_numpy(), rtol=1e-4, atol=1e-6)
    reasons = dict(zip(got.segments["segment_id"], got.segments["reason"], strict=True))
    assert reasons["seg007"] == "vector has NaN or Inf" and reasons["seg009"] == "no label"
    same = boundary_arrays(x, labels, ids=ids, quadrants=quad, k=5, metric=metric, query_sample=15, seed=1, n_permutations=0)
    assert same.segments.equals(got.segments)
    # more sampled segments than exact_limit: the whole matrix is read and searched by the index; no streaming claimed
    held = boundary(store, "emb", k=5, metric=metric, quadrants=quad, query_sample=15, seed=1, n_permutations=0, exact_limit=50)
    assert held.memory_note is None and held.method == "index" and held.queried == 60


def test_a_group_that_changes_between_passes_is_refused(store):
    x, lab = _data(n=100, seed=12)
    ids = [f"seg{i:03d}" for i in range(100)]
    _store_group(store, x, lab.tolist(), ids)
    src = B.StoreSource(store, "emb", "vector", pl.Series(ids + ["seg999"]), "/nonexistent")
    _store_group(store, x[:2], ["a", "b"], ["seg999", "seg998"])  # a write between the passes
    with pytest.raises(Exception, match="changed while it was read"):
        list(src.chunks())
