"""Boundary analysis at scale (issue 29): exact kNN against the Lance index path on the same vectors.

For each size n (the first n rows): ``neighbours`` with exact search (blocked matrix products, n^2)
and with the index path (Lance IVF_FLAT, probes raised until recall@10 on a tuning sample reaches
0.95), both timed in this process, wall and CPU (user + system of all threads, os.times), with the
recall@10 and nearest-per-label recall the index path reports (measured against exact search on an
independent sample of 500 rows) and the speed ratio exact / index.

``--choices`` also times the index kinds Lance offers on the same vectors (build, then 3,000 queries
projected to n, and recall@10 against exact search on the tuning sample): IVF_FLAT at 2-8 probes and
two k-means sample rates, IVF_PQ with a refine factor, IVF_HNSW_SQ at several ef.

The vectors: the minilm group of a store built by bench/million.py (``--store``), or the same generator
(64 clustered centres, 384-d, label-shifted) when no store is given.

    .venv/bin/python bench/boundary_scale.py --store /tmp/mbk/store100000 --sizes 20000,50000,100000
    .venv/bin/python bench/boundary_scale.py --sizes 100000 --choices
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import OUT, machine  # noqa: E402


def cpu() -> float:
    t = os.times()
    return t.user + t.system


def vectors(store: str | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    if store:
        from ambiguity import open_store

        s = open_store(store)
        ids, x = s.vectors("minilm")
        seg = s.segments(["segment_id", "label"])
        lookup = dict(zip(seg["segment_id"].to_list(), seg["label"].to_list(), strict=True))
        return x[:n], np.asarray([lookup[i] for i in ids[:n]])
    import million

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((64, 384)).astype(np.float32)
    ids, seg = million._segments(0, n, rng)
    labels = np.asarray(seg.column("label").to_pylist())
    table = million._features("minilm", 384, ids, labels, rng, centres)
    return table.column("vector").combine_chunks().values.to_numpy().reshape(n, 384), labels


def timed(fn):
    w, c = time.perf_counter(), cpu()
    out = fn()
    return time.perf_counter() - w, cpu() - c, out


def compare(x: np.ndarray, lab: np.ndarray, k: int) -> dict:
    from ambiguity.stats.neighbours import neighbours

    n = len(x)
    ew, ec, ex = timed(lambda: neighbours(x, lab, k, "cosine", exact_limit=n))
    iw, ic, ix = timed(lambda: neighbours(x, lab, k, "cosine", exact_limit=1))
    # the index's own answer against the exact one on every row (not only the reported sample)
    whole = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ex.index, ix.index, strict=True)]))
    return {"n": n, "exact_wall": ew, "exact_cpu": ec, "index_wall": iw, "index_cpu": ic,
            "ratio_cpu": ec / ic, "ratio_wall": ew / iw, "recall": ix.recall, "nearest_recall": ix.nearest_recall,
            "recall_every_row": whole, "nprobes": ix.nprobes, "partitions": ix.partitions, "tuning": ix.tuning,
            "describe": ix.describe()}


def choices(x: np.ndarray, k: int, queries: int = 3000) -> list[dict]:
    """Each index kind Lance offers: build CPU, query CPU projected to n, recall@k on the tuning sample."""
    import lancedb
    import pyarrow as pa
    from lancedb.index import HnswSq, IvfFlat, IvfPq

    import ambiguity.stats.neighbours as N

    n = len(x)
    xp, sq, _ = N._prepare(x, "cosine")
    rows = N._sample(n, 1)
    ex_idx, ex_s, _ = N._exact(xp, sq, [], k, "cosine", rows)
    q_rows = np.random.default_rng(2).choice(n, min(n, queries), replace=False)
    parts = int(math.sqrt(n))
    kinds = {
        "IVF_FLAT (Lance default k-means sample 256)": (IvfFlat(distance_type="l2", num_partitions=parts), [{"nprobes": p} for p in (2, 4, 8)]),
        "IVF_FLAT (k-means sample 64: ours)": (IvfFlat(distance_type="l2", num_partitions=parts, sample_rate=64), [{"nprobes": p} for p in (2, 4, 8)]),
        "IVF_PQ (48 sub-vectors)": (IvfPq(distance_type="l2", num_partitions=parts, num_sub_vectors=48), [{"nprobes": 20, "refine": 10}]),
        "IVF_HNSW_SQ (1 partition)": (HnswSq(distance_type="l2", num_partitions=1), [{"ef": 50}, {"ef": 100, "refine": 2}]),
    }
    out = []
    for name, (cfg, settings) in kinds.items():
        with tempfile.TemporaryDirectory(prefix="bsc-") as tmp:
            vec = pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(xp, np.float32).ravel()), x.shape[1])
            table = lancedb.connect(tmp).create_table("t", data=pa.table({"row": pa.array(np.arange(n)), "vector": vec}))
            bw, bc, _ = timed(lambda: table.create_index("vector", config=cfg))  # noqa: B023
            for s in settings:
                def search(r, s=s):  # noqa: B023
                    got = np.full((len(r), k), -1)
                    for q0 in range(0, len(r), 1024):
                        rr = r[q0 : q0 + 1024]
                        b = table.search(list(xp[rr])).distance_type("l2").limit(k + 1)  # noqa: B023
                        b = b.nprobes(s["nprobes"]) if "nprobes" in s else b.ef(s["ef"])
                        b = b.refine_factor(s["refine"]) if "refine" in s else b
                        res = b.select(["row", "_distance"]).to_arrow()
                        qi, row = res.column("query_index").to_numpy(), res.column("row").to_numpy()
                        for j in range(len(rr)):
                            mine = [v for v in row[qi == j] if v != rr[j]][:k]
                            got[q0 + j, : len(mine)] = mine
                    return got
                got = search(rows)
                rec = N._recall_at_k(got, N._pair_scores(xp, sq, rows[:, None], got, "cosine"), ex_idx, ex_s)
                qw, qc, _ = timed(lambda: search(q_rows))  # noqa: B023
                row = {"kind": name, "setting": s, "build_cpu": bc, "build_wall": bw, "query_cpu_per_n": qc * n / len(q_rows),
                       "total_cpu": bc + qc * n / len(q_rows), "recall": rec}
                print(f"  {name} {s}: build {bc:.1f} CPU s, queries {row['query_cpu_per_n']:.1f} CPU s per {n:,}, "
                      f"recall@{k} {rec:.3f}", flush=True)
                out.append(row)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", help="a store built by bench/million.py (its minilm group); default: the same generator")
    ap.add_argument("--sizes", default="20000,50000,100000")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--choices", action="store_true", help="also time the index kinds Lance offers (at the largest size)")
    ap.add_argument("--no-compare", action="store_true", help="only --choices")
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    x, lab = vectors(a.store, max(sizes))
    print(f"machine: {machine()}; load average {os.getloadavg()}", flush=True)
    rows = []
    for n in [] if a.no_compare else sizes:
        r = compare(x[:n], lab[:n], a.k)
        r["load"] = os.getloadavg()[0]
        print(f"n={n:,}: exact {r['exact_wall']:.1f} s wall / {r['exact_cpu']:.1f} s CPU; index {r['index_wall']:.1f} / "
              f"{r['index_cpu']:.1f}; ratio {r['ratio_cpu']:.1f}x CPU ({r['ratio_wall']:.1f}x wall); recall@{a.k} "
              f"{r['recall']:.3f} (every row {r['recall_every_row']:.3f}), nearest-per-label {r['nearest_recall']:.3f}; "
              f"{r['nprobes']} of {r['partitions']} partitions probed; load {r['load']:.1f}", flush=True)
        rows.append(r)
    kinds = choices(x, a.k) if a.choices else []
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "boundary_scale.json").write_text(json.dumps({"compare": rows, "choices": kinds}, indent=1, default=str))
    print(f"wrote {OUT / 'boundary_scale.json'}")


if __name__ == "__main__":
    main()
