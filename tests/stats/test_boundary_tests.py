"""Boundary analysis: neighbours against sklearn / scipy brute force, geometry on Gaussian classes."""

from __future__ import annotations

import importlib
import itertools

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from numpy.testing import assert_allclose
from scipy.spatial.distance import cdist
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

import ambiguity.stats.neighbours as N
from ambiguity.errors import StatsError
from ambiguity.stats.boundary_store import boundary
from ambiguity.stats.boundary_tests import boundary_arrays, permutation_tests
from ambiguity.stats.neighbours import knn_exact, neighbours


def _classes(n=300, d=8, seed=0, sep=2.0):
    """Two Gaussian classes either side of the hyperplane x0 = 0, shifted off the origin along x1."""
    rng = np.random.default_rng(seed)
    lab = np.repeat(["empathetic", "neutral"], n // 2)
    x = rng.normal(size=(n, d))
    x[:, 0] += np.where(lab == "empathetic", sep, -sep)
    x[:, 1] += 10.0  # keeps the cosine geometry close to the euclidean one
    return x, lab


def _clustered(n=3000, d=32, k=25, seed=0):
    """Embedding-like data: a mixture of k clusters, each mostly of one class."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 3
    c = rng.integers(0, k, n)
    x = centres[c] + rng.normal(size=(n, d))
    lab = np.where(rng.uniform(size=n) < 0.85, c % 2, 1 - c % 2).astype(str)
    return x, lab


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_exact_knn_equals_sklearn_brute(metric):
    x, _ = _classes(n=400, d=16, seed=1)
    idx, dist = knn_exact(x, 10, metric)
    # reference: sklearn NearestNeighbors(n_neighbors=11, algorithm="brute", metric=metric), self dropped
    ref_d, ref_i = NearestNeighbors(n_neighbors=11, algorithm="brute", metric=metric).fit(x).kneighbors(x)
    assert (idx == ref_i[:, 1:]).all()
    assert_allclose(dist, ref_d[:, 1:], rtol=1e-9, atol=1e-9)


def test_exact_knn_of_some_rows():
    x, _ = _classes(n=300, d=10, seed=16)
    rows = [0, 7, 150, 299]
    idx, dist = knn_exact(x, 6, "euclidean", rows=rows)
    # reference: sklearn brute force for the same query rows, the query itself dropped
    ref_d, ref_i = NearestNeighbors(n_neighbors=7, algorithm="brute").fit(x).kneighbors(x[rows])
    assert (idx == ref_i[:, 1:]).all()
    assert_allclose(dist, ref_d[:, 1:], rtol=1e-9)
    with pytest.raises(StatsError, match="rows must be indices"):
        knn_exact(x, 6, rows=[300])


def test_exact_knn_float32_blocks(monkeypatch):
    monkeypatch.setattr(N, "BLOCK_BYTES", 4096)  # many small blocks
    x, _ = _classes(n=500, d=12, seed=2)
    x = x.astype(np.float32)
    idx, _ = knn_exact(x, 5, "cosine")
    # reference: sklearn brute force on the same float32 data
    _, ref_i = NearestNeighbors(n_neighbors=6, algorithm="brute", metric="cosine").fit(x).kneighbors(x)
    assert (idx == ref_i[:, 1:]).mean() > 0.99  # float32 ties may swap a pair


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_nearest_of_each_class_equals_cdist(metric):
    x, lab = _classes(n=240, seed=3)
    lab = lab.copy()
    lab[:30] = "third"
    nb = neighbours(x, lab, 5, metric)
    # reference: scipy.spatial.distance.cdist(x, x, metric) with the diagonal excluded
    full = cdist(x, x, metric)
    np.fill_diagonal(full, np.inf)
    for c, name in enumerate(sorted(set(lab))):
        assert_allclose(nb.nearest[:, c], full[:, lab == name].min(axis=1), rtol=1e-9, atol=1e-9)
    some = neighbours(x, lab, 5, metric, rows=[3, 100, 239])
    assert (some.index == nb.index[[3, 100, 239]]).all()
    assert_allclose(some.nearest, nb.nearest[[3, 100, 239]], rtol=1e-12)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_points_near_the_boundary_score_as_ambiguous(metric):
    x, lab = _classes(n=600, seed=4)
    rng = np.random.default_rng(5)
    probes = rng.normal(size=(80, x.shape[1]))
    probes[:, 1] += 10.0
    side = np.repeat([1.0, -1.0], 40)
    probes[:40, 0], probes[40:, 0] = 0.15 * side[:40], 0.15 * side[40:]  # near: |x0| = 0.15
    far = probes.copy()
    far[:, 0] = 4.5 * side  # far: |x0| = 4.5
    plab = np.where(side > 0, "empathetic", "neutral")
    res = boundary_arrays(np.vstack([x, probes, far]), [*lab, *plab, *plab], k=10, metric=metric, n_permutations=0)
    seg = res.segments
    near_rows, far_rows = seg.slice(600, 80), seg.slice(680, 80)
    assert near_rows["other_share"].mean() > far_rows["other_share"].mean() + 0.2
    assert near_rows["margin"].mean() < far_rows["margin"].mean()
    assert (near_rows["margin"].median() < far_rows["margin"].median())
    assert res.method == "exact"


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_index_backed_knn_recall_at_10(metric, monkeypatch):
    x, lab = _clustered()
    exact = neighbours(x, lab, 10, metric)
    monkeypatch.setattr(N, "SMALL_CLASS", 100)  # the per-class nearest also goes through the index
    indexed = neighbours(x, lab, 10, metric, exact_limit=1000)
    assert exact.method == "exact" and indexed.method == "index"
    recall = np.mean([len(set(exact.index[i]) & set(indexed.index[i])) / 10 for i in range(len(x))])
    assert recall >= 0.95, recall
    # the nearest of each class found by the index equals the exact one for nearly every row
    assert np.isclose(indexed.nearest, exact.nearest, rtol=1e-4, atol=1e-5).mean() >= 0.95


def test_rows_that_cannot_be_used_get_reasons():
    x, lab = _classes(n=60, seed=6)
    x[0, 3] = np.nan
    x[1] = 0.0
    labels = list(lab)
    labels[2] = None
    res = boundary_arrays(x, labels, k=5, n_permutations=0)
    reasons = res.segments["reason"].to_list()
    assert reasons[:3] == ["vector has NaN or Inf", "zero vector (cosine distance undefined)", "no label"]
    assert res.segments["other_share"][:3].is_null().all()
    assert res.segments["other_share"][3:].is_not_null().all()
    # euclidean distance is defined for the zero vector
    assert boundary_arrays(x, labels, k=5, metric="euclidean", n_permutations=0).segments["reason"][1] is None


def test_one_class_only_has_no_margin():
    x, _ = _classes(n=40, seed=7)
    res = boundary_arrays(x, ["a"] * 40, k=3, n_permutations=0)
    assert (res.segments["other_share"] == 0).all()
    assert res.segments["margin"].is_null().all()
    assert set(res.segments["reason"].to_list()) == {"no segment with another label"}


@pytest.mark.parametrize(
    "kwargs,match",
    [({"k": 50}, "at least 51 usable"), ({"k": 0}, "positive integer"), ({"metric": "manhattan"}, "unknown metric"),
     ({"n_permutations": -1}, "non-negative"), ({"correction": "x"}, "unknown correction")],
)

def test_bad_arguments(kwargs, match):
    x, lab = _classes(n=40, seed=8)
    with pytest.raises(StatsError, match=match):
        boundary_arrays(x, lab, **kwargs)


def test_bad_shapes():
    with pytest.raises(StatsError, match="2-D"):
        boundary_arrays(np.zeros(5), ["a"] * 5)
    with pytest.raises(StatsError, match="labels for"):
        boundary_arrays(np.ones((5, 2)), ["a"] * 4)
    with pytest.raises(StatsError, match="not unique"):
        boundary_arrays(np.ones((3, 2)), ["a", "b", "a"], ids=["x", "x", "y"], k=1)


def test_permutation_test_equals_full_enumeration():
    rng = np.random.default_rng(9)
    red, blue = rng.normal(0.8, 1, 6), rng.normal(0, 1, 6)
    seg = pl.DataFrame({"quadrant": ["red"] * 6 + ["blue"] * 6, "other_share": np.r_[red, blue], "margin": np.r_[-red, blue]})
    out = permutation_tests(seg, [("red", "blue")], n_permutations=10_000, seed=1)
    # reference: all C(12, 6) = 924 splits enumerated here; two-sided p = share with |T| >= |T_obs|
    values = np.r_[red, blue]
    obs = abs(red.mean() - blue.mean())
    hits = 0
    for combo in itertools.combinations(range(12), 6):
        mask = np.zeros(12, bool)
        mask[list(combo)] = True
        hits += abs(values[mask].mean() - values[~mask].mean()) >= obs - 1e-12
    assert_allclose(out.filter(pl.col("metric") == "other_share")["p"][0], hits / 924, rtol=1e-9)


def test_permutation_tests_seeded_and_sensitive():
    rng = np.random.default_rng(10)
    q = np.repeat(["red", "green", "blue"], [60, 60, 200])
    share = np.r_[rng.normal(0.5, 0.2, 60), rng.normal(0.2, 0.2, 60), rng.normal(0.2, 0.2, 200)]
    seg = pl.DataFrame({"quadrant": q, "other_share": share, "margin": -share})
    one = permutation_tests(seg, n_permutations=2000, seed=3)
    two = permutation_tests(seg, n_permutations=2000, seed=3)
    assert one.equals(two)
    red = one.filter(pl.col("a") == "red")
    green = one.filter(pl.col("a") == "green")
    assert (red["p"] < 0.001).all() and (green["p"] > 0.01).all()
    from stats_refs import ref_holm

    # reference: Holm's step-down definition over the four tests (not statsmodels, which boundary calls)
    assert_allclose(one["p_adj"].to_numpy(), ref_holm(one["p"].to_numpy()), rtol=1e-12)


def test_summary_and_tables():
    x, lab = _classes(n=200, seed=11)
    rng = np.random.default_rng(12)
    quad = rng.choice(["red", "green", "blue", "yellow"], 200).tolist()
    ids = [f"s{i}" for i in range(200)]
    frame = pl.DataFrame({"segment_id": ids[::-1], "quadrant": quad[::-1]})
    res = boundary_arrays(x, lab, ids=ids, quadrants=frame, k=7, n_permutations=500, seed=2)
    assert res.segments["quadrant"].to_list() == quad
    s = res.summary
    assert s["quadrant"].to_list() == ["red", "green", "blue", "yellow", "(all)"]
    for row in s.iter_rows(named=True):
        sub = res.segments if row["quadrant"] == "(all)" else res.segments.filter(pl.col("quadrant") == row["quadrant"])
        assert row["n"] == sub.height
        assert_allclose(row["margin_mean"], np.mean(sub["margin"].to_numpy()))
    assert res.tests.height == 4 and set(res.tests["metric"]) == {"other_share", "margin"}
    md = res.to_markdown()
    assert "500 permutations, seed 2" in md and "Holm correction over the 4 tests" in md
    assert r"\toprule" in res.to_latex()


def _vector_store(store, x, lab, ids):
    from ambiguity.stores import schema as S

    n = len(ids)
    cols = {f.name: pa.nulls(n, f.type) for f in S.SEGMENTS_SCHEMA}
    cols.update(segment_id=pa.array(ids), label=pa.array(list(lab)), split=pa.array(["train", "test"] * (n // 2)))
    store.upsert_segments(pa.table(cols, schema=S.SEGMENTS_SCHEMA))
    d = x.shape[1]
    vec = pa.FixedSizeListArray.from_arrays(pa.array(x.astype(np.float32).ravel()), d)
    status = ["ok"] * n
    status[5] = "failed"
    tbl = pa.table({"segment_id": ids, "status": status, "error": [None] * n, "vector": vec})
    store.write_features("emb", tbl, tbl.schema, {"extractor": "fake", "extractor_version": "1", "params": {}, "config_key": "k"})


def test_boundary_reads_the_store(store):
    x, lab = _classes(n=80, seed=13)
    ids = [f"seg{i:02d}" for i in range(80)]
    _vector_store(store, x, lab, ids)
    quads = pl.DataFrame({"segment_id": ids, "quadrant": (["red", "green", "blue", "yellow"] * 20)})
    res = boundary(store, "emb", k=5, quadrants=quads, n_permutations=200)
    assert res.segments.height == 79 and "seg05" not in res.segments["segment_id"].to_list()
    assert res.group == "emb"
    keep = [i for i in range(80) if i != 5]
    ref = boundary_arrays(x[keep].astype(np.float32), lab[keep], ids=[ids[i] for i in keep], k=5, n_permutations=0)
    got = res.segments.sort("segment_id")
    assert_allclose(got["margin"].to_numpy(), ref.segments.sort("segment_id")["margin"].to_numpy(), rtol=1e-6)
    only_test = boundary(store, "emb", k=5, splits=["test"], n_permutations=0)
    assert only_test.segments.height == 39  # the 40 test segments less the failed seg05
    with pytest.raises(StatsError, match="no segment of group"):
        boundary(store, "emb", splits=["val"])


@pytest.mark.slow
def test_umap_projection_is_seeded(tmp_path):
    x, lab = _classes(n=150, seed=14)
    one = boundary_arrays(x, lab, k=5, n_permutations=0, umap=True, seed=3)
    two = boundary_arrays(x, lab, k=5, n_permutations=0, umap=True, seed=3)
    xy = one.segments.select("umap_x", "umap_y").to_numpy()
    assert xy.shape == (150, 2) and np.isfinite(xy).all()
    assert_allclose(xy, two.segments.select("umap_x", "umap_y").to_numpy())
    # classes that are apart in the embedding stay apart in the projection: 5-NN in 2-D separates them
    from sklearn.model_selection import cross_val_score

    assert cross_val_score(KNeighborsClassifier(5), xy, lab, cv=5).mean() > 0.8
    from ambiguity.report.fig_boundary import write_figure3

    paths = write_figure3(one, tmp_path)
    assert all(p.stat().st_size > 1000 for p in paths)


def test_cli_boundary(store, tmp_path, monkeypatch):

    from click.testing import CliRunner

    from ambiguity.cli import main

    x, lab = _classes(n=60, seed=15)
    ids = [f"seg{i:02d}" for i in range(60)]
    _vector_store(store, x, lab, ids)
    quads = pl.DataFrame({"segment_id": ids, "quadrant": ["red", "green", "blue"] * 20})
    mod = importlib.import_module("ambiguity.stats.quadrant_tables")
    from types import SimpleNamespace

    from ambiguity.stats.stability import SchemeUsed

    fake = SimpleNamespace(frame=quads, scheme=SchemeUsed("fixed", ("test",)))
    monkeypatch.setattr(mod, "quadrants", lambda store, unimodal, fusion, splits=None, threshold=0.5, **kw: fake)
    out = tmp_path / "seg.parquet"
    r = CliRunner().invoke(main, ["--store", store.uri, "boundary", "emb", "--unimodal", "text", "--k", "4", "--permutations", "300", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "| red |" in r.output and "300 permutations" in r.output
    seg = pl.read_parquet(out)
    assert seg.height == 59 and {"other_share", "margin", "quadrant"} <= set(seg.columns)
    r = CliRunner().invoke(main, ["--store", store.uri, "boundary", "emb", "--unimodal", "text", "--k", "4", "--permutations", "50", "--format", "csv"])
    assert r.exit_code == 0, r.output
    blocks = [b.splitlines() for b in r.output.split("# ")[1:]]
    assert [b[0] for b in blocks] == ["summary", "tests"] and "quadrant" in blocks[0][1]
    r = CliRunner().invoke(main, ["--store", store.uri, "boundary", "emb", "--k", "100"])
    assert r.exit_code == 2 and "lower k" in r.output


@pytest.mark.parametrize("shape", [(6,), (2, 3, 4), (5, 0)])
def test_vectors_must_be_a_2d_array(shape):
    from ambiguity.stats.neighbours import knn_exact

    with pytest.raises(StatsError, match="2-D array"):
        knn_exact(np.ones(shape), k=1)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_pair_scores_in_chunks_equal_the_definition(metric):
    # every row, chunk boundaries included: cosine score = -x.y (unit rows), euclidean = |x - y|^2
    from ambiguity.stats.neighbours import _pair_scores

    rng = np.random.default_rng(0)
    xp = rng.normal(size=(10, 4))
    if metric == "cosine":
        xp /= np.linalg.norm(xp, axis=1, keepdims=True)
    sq = (xp**2).sum(1)
    cols = rng.integers(0, 10, size=(10, 3))
    got = _pair_scores(xp, sq, np.arange(10)[:, None], cols, metric, chunk=3)
    want = np.array([[-(xp[i] @ xp[j]) if metric == "cosine" else ((xp[i] - xp[j]) ** 2).sum() for j in cols[i]] for i in range(10)])
    assert_allclose(got, want, atol=1e-12)


def test_index_search_probing_every_partition_equals_exact_for_every_row():
    # 200 rows: 14 IVF partitions; probing all 14 is an exhaustive search, so every row -- the
    # first one included -- must get exactly the exact neighbours
    from ambiguity.stats.neighbours import neighbours

    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 8)).astype(np.float32)
    labels = ["a", "b"] * 100
    exact = neighbours(x, labels, k=5, metric="euclidean")
    index = neighbours(x, labels, k=5, metric="euclidean", exact_limit=10, nprobes=14)
    assert exact.method == "exact" and index.method == "index"
    assert (index.index == exact.index).all()
    assert_allclose(index.distance, exact.distance, rtol=1e-5)


def test_index_search_marks_missing_neighbours():
    # one partition probed and k larger than a partition: some neighbours are not found;
    # they are -1 with an infinite distance, never a real row
    from ambiguity.stats.neighbours import neighbours

    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 8)).astype(np.float32)
    res = neighbours(x, ["a", "b"] * 100, k=40, metric="euclidean", exact_limit=10, nprobes=1)
    missing = ~np.isfinite(res.distance)
    assert missing.any() and (res.index[missing] == -1).all() and (res.index[~missing] >= 0).all()
    assert not (res.index == np.arange(200)[:, None]).any()  # never the row itself


def test_knn_for_chosen_rows_equals_those_rows_of_the_full_search():
    from ambiguity.stats.neighbours import knn_exact

    x = np.random.default_rng(4).normal(size=(30, 5))
    idx, dist = knn_exact(x, k=3)
    sub_idx, sub_dist = knn_exact(x, k=3, rows=[0, 7, 29])
    assert (sub_idx == idx[[0, 7, 29]]).all()
    assert_allclose(sub_dist, dist[[0, 7, 29]])


def test_permutation_means_do_not_overflow_near_the_float_limit():
    # found by tests/stats/test_adversarial.py: the plain mean of two margins of 1e308 overflows to inf
    import warnings

    from ambiguity.stats.boundary_tests import permutation_tests

    segs = pl.DataFrame({"quadrant": ["red"] * 3 + ["blue"] * 3, "other_share": [0.5] * 6,
                         "margin": [1e308, 1e308, 1e308, 0.0, 1.0, 2.0]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = permutation_tests(segs, [("red", "blue")], n_permutations=20)
    row = out.filter(pl.col("metric") == "margin").row(0, named=True)
    assert row["mean_a"] == 1e308 and row["mean_b"] == 1.0
