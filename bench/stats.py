"""Benchmarks of the statistics layer, each against a baseline measured in the same run.

1. compare(): 2,000 features x 500 samples (250 per group), Welch + Holm + Hedges' g with CI,
   vs a pingouin per-feature loop (pingouin.ttest, compute_effsize, compute_esci, then
   statsmodels' Holm), with the largest difference between the two results printed.
2. Exact kNN at 100k x 384 (cosine, k = 10) vs sklearn NearestNeighbors(algorithm="brute"):
   time ratio and recall@10. By default the k nearest of --queries rows (searched among
   all 100k rows) are timed, to stay within a few minutes on a small machine; --full
   searches for every row.

    .venv/bin/python bench/stats.py            # about 1-2 min on 2 cores
    .venv/bin/python bench/stats.py --full     # every row of the 100k (long)
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Row, emit, machine  # noqa: E402

from ambiguity.stats.comparisons import compare  # noqa: E402
from ambiguity.stats.neighbours import knn_exact, neighbours  # noqa: E402


def _best(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def bench_compare(n_features: int, n_samples: int, seed: int = 0) -> list[Row]:
    import pingouin as pg
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(seed)
    half = n_samples // 2
    x = rng.normal(size=(n_samples, n_features)) * rng.uniform(0.5, 3, n_features)
    x[:half, : n_features // 10] += 0.4  # 10% true effects
    groups = ["red"] * half + ["blue"] * (n_samples - half)

    compare(x[:, :10], groups, "red", "blue")  # warm imports
    t_ours, res = _best(lambda: compare(x, groups, "red", "blue"))
    ours = res.to_polars()

    def pingouin_loop(bayes: bool):
        rows = []
        for j in range(n_features):
            a, b = x[:half, j], x[half:, j]
            tt = pg.ttest(a, b, correction=True)  # Welch; also computes power and BF10
            g = pg.compute_effsize(a, b, eftype="hedges")
            lo, hi = pg.compute_esci(stat=g, nx=len(a), ny=len(b), eftype="cohen", decimals=12)
            rows.append((tt["T"].iloc[0], tt["dof"].iloc[0], tt["p_val"].iloc[0], g, lo, hi, float(tt["BF10"].iloc[0])))
        arr = np.array(rows, dtype=float)
        p_adj = multipletests(arr[:, 2], method="holm")[1]
        return np.column_stack([arr, p_adj])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        base = pingouin_loop(False)
        t_base = time.perf_counter() - t0
    cols = ["statistic", "df", "p", "hedges_g", "g_ci_low", "g_ci_high"]
    got = ours.select(cols + ["p_adj"]).to_numpy()
    ref = np.column_stack([base[:, :6], base[:, 7]])
    diff = np.abs(got - ref).max(axis=0)
    print("compare vs pingouin, max |difference|: " + ", ".join(f"{c} {d:.1e}" for c, d in zip(cols + ["p_adj"], diff, strict=True)))
    if diff.max() > 1e-6:
        raise SystemExit("compare() and the pingouin loop disagree: the timing would be meaningless")

    t_bayes, res_b = _best(lambda: compare(x, groups, "red", "blue", bayes=True), repeat=1)
    bf_diff = np.nanmax(np.abs(res_b.to_polars()["bf10"].to_numpy() - base[:, 6]) / base[:, 6])
    print(f"compare(bayes=True) vs pingouin.ttest BF10 (which pingouin rounds to 3 digits): max relative difference {bf_diff:.1e}")

    import scipy.stats

    def scipy_loop():
        return [scipy.stats.ttest_ind(x[:half, j], x[half:, j], equal_var=False) for j in range(n_features)]

    t_scipy, _ = _best(scipy_loop, repeat=1)
    tag = f"{n_features} features x {n_samples} samples"
    return [
        Row("stats", f"compare (Welch, Holm, g + CI), {tag} vs pingouin loop", t_ours, t_base, t_base / t_ours, ">= 100"),
        Row("stats", "compare(bayes=True) vs the same pingouin loop (BF10 both)", t_bayes, t_base, t_base / t_bayes, ">= 1"),
        Row("stats", "compare vs a scipy.stats.ttest_ind loop (t, p only)", t_ours, t_scipy, t_scipy / t_ours, ">= 1"),
    ]


def bench_knn(n: int, d: int, n_queries: int, full: bool, seed: int = 0) -> list[Row]:
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(200, d)).astype(np.float32)
    x = centres[rng.integers(0, 200, n)] + 1.5 * rng.standard_normal((n, d), dtype=np.float32)
    rows = np.arange(n) if full else np.sort(rng.choice(n, n_queries, replace=False))
    k = 10

    t0 = time.perf_counter()
    idx, _ = knn_exact(x, k, "cosine", rows=rows)
    t_ours = time.perf_counter() - t0

    t0 = time.perf_counter()
    nn = NearestNeighbors(n_neighbors=k + 1, algorithm="brute", metric="cosine").fit(x)
    _, ref = nn.kneighbors(x[rows])
    t_base = time.perf_counter() - t0
    # drop the query itself from sklearn's k + 1
    ref_k = np.array([[j for j in r if j != q][:k] for q, r in zip(rows, ref, strict=True)])
    recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(idx, ref_k, strict=True)]))
    what = f"{len(rows)} of {n} rows" if not full else f"all {n} rows"
    print(f"exact kNN {n} x {d} float32, cosine, k = {k}, neighbours of {what}: ours {t_ours:.1f} s, sklearn {t_base:.1f} s, recall@10 {recall:.4f}")
    if not full:
        print(f"  projected to all {n} rows: ours {t_ours * n / len(rows):.0f} s, sklearn {t_base * n / len(rows):.0f} s")
    # What boundary() needs: the k nearest and the nearest segment of each class. One fused
    # pass here; with sklearn, one search over all rows plus one per class.
    labels = np.where(rng.uniform(size=n) < 0.5, "empathetic", "neutral")
    t0 = time.perf_counter()
    nb = neighbours(x, labels, k, "cosine", rows=rows)
    t_fused = time.perf_counter() - t0
    t0 = time.perf_counter()
    per_class = []
    for c in ("empathetic", "neutral"):
        members = np.flatnonzero(labels == c)
        dist, _ = NearestNeighbors(n_neighbors=2, algorithm="brute", metric="cosine").fit(x[members]).kneighbors(x[rows])
        own = labels[rows] == c  # the query itself is its own nearest: take the second
        per_class.append(np.where(own, dist[:, 1], dist[:, 0]))
    t_classes = time.perf_counter() - t0 + t_base
    near_diff = float(np.abs(nb.nearest - np.column_stack(per_class)).max())
    print(f"  kNN + nearest of each class: ours {t_fused:.1f} s, sklearn {t_classes:.1f} s (kNN + one search per class); max |distance difference| {near_diff:.1e}")
    return [
        Row("stats", f"exact kNN {n} x {d} ({what}) vs sklearn brute", t_ours, t_base, t_base / t_ours, ">= 1"),
        Row("stats", "kNN + nearest per class (boundary pass) vs sklearn, 2 classes", t_fused, t_classes, t_classes / t_fused, ">= 1"),
        Row("stats", "exact kNN recall@10 vs sklearn brute", recall, 1.0, recall, ">= 0.99", unit=""),
    ]


def main(argv: list[str] | None = None) -> list[Row]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--features", type=int, default=2000)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=4000)
    ap.add_argument("--full", action="store_true", help="kNN of every row (long on a small machine)")
    args = ap.parse_args(argv if argv is not None else [])
    print(machine())
    rows = bench_compare(args.features, args.samples)
    rows += bench_knn(args.rows, args.dim, args.queries, args.full)
    return rows


if __name__ == "__main__":
    emit("stats", main(sys.argv[1:]))
