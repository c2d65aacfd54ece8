"""The analysis side at 10^4, 10^5 (and, behind --million, 10^6) segments: wall, CPU and peak RSS per command.

``build`` makes a store of N segments with the columns a real cross-fitted run leaves: three unimodal
probes (text, audio, video) and a fusion model, each with fixed-split predictions and cross-fitted
ones (K = 5 folds, R = 3 repeats), a 384-d text embedding (clustered, label-dependent), 88
openSMILE-like functionals, 17 AU activation rates, speaker and dialog metadata, and a saved
(randomly initialised) fusion network for ``attribute``. Tables are written in 100k-row batches
(the first batch through the store's own writers, the rest appended), so building never holds a
whole table.

Each command then runs as a user would run it: ``ambiguity --store S CMD ...`` in a child process,
whose process tree's RSS is sampled with psutil every 20 ms (common.tree_peak; ru_maxrss is wrong
across fork/exec), and so is its anonymous part (RssAnon: without file pages such as a memory-mapped
embedding); CPU time is the children's user+system time (os.wait4). The explorer is timed
from the command's start until its first page and /api/points answer, and its quadrant counts are
checked against the store's. The growth exponent between two sizes is log(t2/t1)/log(n2/n1)
(1 = linear).

    .venv/bin/python bench/million.py                 # 10^4 and 10^5
    .venv/bin/python bench/million.py --million       # also 10^6 (about an hour on 2 cores)
    .venv/bin/python bench/million.py --sizes 10000 --only quadrants,rank
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import OUT, Row, emit, machine  # noqa: E402

CLI = str(Path(sys.executable).with_name("ambiguity"))
CLASSES = ["empathetic", "neutral"]
MODELS = {"text.probe": ["text"], "audio.probe": ["audio"], "video.probe": ["video"], "fusion": ["text", "audio", "video"]}
GROUPS = {"text": ("minilm", 384), "audio": ("opensmile", 88), "video": ("openface", 17)}
BATCH = 100_000
K_FOLDS, REPEATS = 5, 3


# -- the store -----------------------------------------------------------------------------------
def _segments(lo: int, hi: int, rng) -> tuple[list[str], object]:
    import pyarrow as pa

    from ambiguity.stores.schema import SEGMENTS_SCHEMA

    i = np.arange(lo, hi)
    ids = [f"seg{j:07d}" for j in i]
    labels = np.array(CLASSES)[(i * 7919 % 13) % 2]
    splits = np.array(["train", "val", "test"])[np.searchsorted([0.6, 0.8], rng.random(len(i)))]
    meta = [json.dumps({"speaker": f"spk{j % 2000:04d}", "dialog": f"dlg{j // 12:06d}", "gender": "fm"[j % 2]}) for j in i]
    table = pa.table({
        "segment_id": ids, "media": [None] * len(i), "audio": [None] * len(i), "start_s": (i % 12 * 4.0).tolist(),
        "end_s": (i % 12 * 4.0 + 3.5).tolist(), "transcript": [f"utterance {j} of dialog {j // 12}" for j in i],
        "label": labels.tolist(), "split": splits.tolist(), "metadata": meta,
    }, schema=SEGMENTS_SCHEMA)
    return ids, table


def _features(group: str, dim: int, ids: list[str], labels: np.ndarray, rng, centres: np.ndarray):
    import pyarrow as pa

    n = len(ids)
    y = (labels == CLASSES[1]).astype(np.float32)
    cols: dict[str, object] = {"segment_id": ids, "status": ["ok"] * n, "error": [None] * n}
    if group == "minilm":
        c = rng.integers(0, len(centres), n)
        x = centres[c] + 0.8 * rng.standard_normal((n, dim), dtype=np.float32) + 0.3 * y[:, None] * centres[0]
        cols["vector"] = pa.FixedSizeListArray.from_arrays(pa.array(x.astype(np.float32).ravel()), dim)
    elif group == "opensmile":
        x = rng.standard_normal((n, dim), dtype=np.float32) + 0.2 * y[:, None]
        for j in range(dim):
            cols[f"egemaps_{j:02d}"] = x[:, j]
    else:
        x = rng.beta(2, 5, (n, dim)).astype(np.float32) + 0.05 * y[:, None]
        for j in range(dim):
            cols[f"AU{j + 1:02d}_rate"] = x[:, j]
    return pa.table(cols)


def _feature_schema(group: str, dim: int):
    import pyarrow as pa

    base = [pa.field("segment_id", pa.string(), nullable=False), pa.field("status", pa.string(), nullable=False), pa.field("error", pa.string())]
    if group == "minilm":
        return pa.schema([*base, pa.field("vector", pa.list_(pa.float32(), dim))])
    names = [f"egemaps_{j:02d}" for j in range(dim)] if group == "opensmile" else [f"AU{j + 1:02d}_rate" for j in range(dim)]
    return pa.schema([*base, *[pa.field(c, pa.float32()) for c in names]])


def _probs(labels: np.ndarray, rng, skill: float) -> np.ndarray:
    k = (labels == CLASSES[1]).astype(int)
    pc = rng.beta(2 + 2 * skill, 1.5, len(labels))
    probs = np.empty((len(labels), 2))
    probs[np.arange(len(labels)), k], probs[np.arange(len(labels)), 1 - k] = pc, 1 - pc
    return probs


def build(path: Path, n: int, seed: int = 0) -> None:
    """A store of ``n`` segments (see the module docstring), written in BATCH-row batches."""
    from ambiguity import open_store
    from ambiguity.models.predictions import PREDICTIONS, prediction_table, write_predictions
    from ambiguity.stores import schema as S

    rng = np.random.default_rng(seed)
    store = open_store(path)
    centres = rng.standard_normal((64, 384)).astype(np.float32)
    first = True
    for lo in range(0, n, BATCH):
        hi = min(n, lo + BATCH)
        ids, seg = _segments(lo, hi, rng)
        labels = np.asarray(seg.column("label").to_pylist())
        splits = seg.column("split").to_pylist()
        (store.upsert_segments if first else lambda t: store.append("segments", t))(seg)
        for mod, (group, dim) in GROUPS.items():
            rows = _features(group, dim, ids, labels, rng, centres)
            sch = S.with_provenance(_feature_schema(group, dim), S.provenance(group, "1", {}, group, modality=mod))
            if first:
                store.write_features(group, rows.cast(sch), sch, S.provenance(group, "1", {}, group, modality=mod))
            else:
                store.append(S.table_name(group), rows.cast(sch))
        for m, mods in MODELS.items():
            skill = 1.0 if m == "fusion" else 0.3
            groups = [GROUPS[x][0] for x in mods]
            kw = dict(model=m, kind="fusion" if m == "fusion" else "probe", arch="fusion" if m == "fusion" else "logistic",
                      modalities=mods, groups=groups, segment_ids=ids, labels=labels.tolist(), classes=CLASSES)
            t = prediction_table(splits=splits, probs=_probs(labels, rng, skill), run_id=f"fixed-{m}", **kw)
            write_predictions(store, t) if first and m == next(iter(MODELS)) else store.append(PREDICTIONS, t)
            for r in range(REPEATS):
                fold = ((np.arange(lo, hi) * (r + 3)) % K_FOLDS).tolist()
                t = prediction_table(splits=splits, probs=_probs(labels, rng, skill), scheme="crossfit", repeat=r, fold=fold,
                                     run_id="crossfit-run", config={"folds": K_FOLDS, "repeats": REPEATS}, **kw)
                store.append(PREDICTIONS, t)
        first = False
        print(f"  built {hi:,} of {n:,}", flush=True)
    _save_fusion(store, n)
    store.compact()


def _save_fusion(store, n: int) -> None:
    """A randomly initialised fusion network in the ``models`` table, for ``attribute``."""
    import io

    import pyarrow as pa
    import torch

    from ambiguity.models.saved import _HPARAMS, MODELS_SCHEMA
    from ambiguity.models.saved import MODELS as MODELS_TABLE
    from ambiguity.models.spec import TrainConfig, build_model
    from ambiguity.stores import schema as S

    cfg = TrainConfig(arch="fusion")
    dims = [GROUPS[m][1] for m in MODELS["fusion"]]
    torch.manual_seed(0)
    net = build_model(cfg, dims, 2).eval()
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    run = store.read("predictions", ["run_id"], where="model = 'fusion'")["run_id"][0]
    row = {
        "key": ["fusion"], "model": ["fusion"], "kind": ["fusion"], "arch": ["fusion"],
        "groups": [[GROUPS[m][0] for m in MODELS["fusion"]]], "modalities": [MODELS["fusion"]], "classes": [CLASSES],
        "input_dims": [dims], "hparams": [json.dumps({k: getattr(cfg, k) for k in _HPARAMS}, sort_keys=True)],
        "mean": [[[0.0] * d for d in dims]], "sd": [[[1.0] * d for d in dims]], "class_prior": [[0.5, 0.5]],
        "n_train": [int(0.6 * n)], "state": [buf.getvalue()], "run_id": [run], "created_at": [S.now()], "scheme": ["fixed"],
    }
    row.update({c: [None] for c in MODELS_SCHEMA.names if c not in row})  # columns added since (repeat, fold, ...)
    store.upsert(MODELS_TABLE, pa.table(row, schema=MODELS_SCHEMA), key="key", schema=MODELS_SCHEMA)


# -- running the commands ----------------------------------------------------------------------------
@dataclass
class Run:
    command: str
    n: int
    wall: float
    cpu: float
    rss_mb: float
    note: str = ""
    anon_mb: float = math.nan  # peak anonymous RSS (RssAnon): without file pages, e.g. a memory-mapped embedding


def _anon(pid: int) -> int:
    """RssAnon of a process in bytes (Linux /proc; 0 where it cannot be read)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _sample(pid: int, stop: threading.Event, out: list[float]) -> None:
    """Appends the tree's peak RSS and then its peak anonymous RSS (MB) to ``out`` once ``stop`` is set."""
    import psutil

    root = psutil.Process(pid)
    peak = anon = 0.0
    while not stop.is_set():
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        total = total_anon = 0
        for q in procs:
            try:
                total += q.memory_info().rss
                total_anon += _anon(q.pid)
            except psutil.NoSuchProcess:
                pass
        peak = max(peak, total / 2**20)
        anon = max(anon, total_anon / 2**20)
        time.sleep(0.02)
    out += [peak, anon]


def run_cli(name: str, n: int, args: list[str], timeout: float) -> Run:
    """One whole ``ambiguity`` process: wall, children's CPU, sampled peak RSS of its tree."""
    stop, peak = threading.Event(), []
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        p = subprocess.Popen([CLI, *args], stdout=out, stderr=err)
        th = threading.Thread(target=_sample, args=(p.pid, stop, peak))
        th.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            stop.set()
            th.join()
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode:
            err.seek(0)
            tail = err.read().decode(errors="replace").strip().splitlines()[-3:]
            print(f"  {name} at {n:,} FAILED ({p.returncode}): {' | '.join(tail)}", flush=True)
            return Run(name, n, wall, ru.ru_utime + ru.ru_stime, peak[0] if peak else math.nan, "failed: " + " | ".join(tail)[-200:])
    return Run(name, n, wall, ru.ru_utime + ru.ru_stime, peak[0] if peak else math.nan, anon_mb=peak[1] if peak else math.nan)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(p: subprocess.Popen, base: str, t0: float, timeout: float) -> float:
    """Poll ``base``/ until the explorer answers (seconds since ``t0``); exits if it dies or times out."""
    while True:
        if p.poll() is not None:
            raise SystemExit(f"explore exited: {p.stderr.read().decode()[-1000:] if p.stderr else ''}")
        try:
            urllib.request.urlopen(base + "/", timeout=5).read()
            return time.perf_counter() - t0
        except OSError:
            if time.perf_counter() - t0 > timeout:
                raise SystemExit("explore did not answer") from None
            time.sleep(0.05)


def run_explore(store: Path, n: int, timeout: float = 3600, what: str = "explore") -> Run:
    """``ambiguity explore`` from start until / and /api/points answer (the first page's data)."""
    port = _free_port()
    stop, peak = threading.Event(), []
    t0, c0 = time.perf_counter(), os.times()
    extra = ["--embedding", "none"] if n > KNN_WHOLE_UP_TO else []
    p = subprocess.Popen([CLI, "--store", str(store), "explore", "--port", str(port), *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    th = threading.Thread(target=_sample, args=(p.pid, stop, peak))
    th.start()
    base = f"http://127.0.0.1:{port}"
    note = ""
    try:
        wait_until_up(p, base, t0, timeout)
        pts = urllib.request.urlopen(urllib.request.Request(base + "/api/points", headers={"Accept-Encoding": "gzip"}), timeout=3600).read()
        wall = time.perf_counter() - t0
        import gzip

        doc = json.loads(gzip.decompress(pts))
        note = f"counts {doc['counts'][doc['models'][0]['name']]}; summary {len(pts) / 1024:.1f} KiB gzipped" + (" (no kNN)" if extra else "")
    finally:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()  # reaped, so its CPU time is counted in os.times()
        stop.set()
        th.join()
    c1 = os.times()
    cpu = (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)
    return Run(what, n, wall, cpu, peak[0] if peak else math.nan, note, peak[1] if peak else math.nan)


def knn_floor(store: Path, n: int, queries: int = 1000) -> Run:
    """Exact kNN (k = 10, cosine) of ``queries`` sampled segments among all n, in this process,
    extrapolated to every segment: the floor of any command whose kNN covers every segment."""
    from ambiguity import open_store
    from ambiguity.stats.neighbours import knn_exact

    _, x = open_store(store).vectors("minilm")
    rows = np.sort(np.random.default_rng(0).choice(len(x), min(queries, len(x)), replace=False))
    t, c = time.perf_counter(), time.process_time()
    knn_exact(x, 10, "cosine", rows=rows)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    f = n / len(rows)
    return Run("kNN of every segment, projected", n, wall * f, cpu * f, math.nan,
               f"exact k=10 of {len(rows)} rows among {n:,} in {wall:.1f} s wall / {cpu:.1f} s CPU, x {f:.0f}")


#: Above this many segments the commands whose kNN covers every segment (boundary of every segment, the kNN
#: score component of rank and explore) are not run whole: the index path costs n^1.5 d (docs/scaling.md);
#: see knn_floor, which measures exact search. boundary runs on a sample of query segments per quadrant
#: there (searched among all), as the report's Figure 3 does at every size above its own limit.
KNN_WHOLE_UP_TO = 200_000
#: Query segments per quadrant for boundary above KNN_WHOLE_UP_TO.
QUERY_SAMPLE = 2_000


def commands(store: Path, tmp: Path, n: int) -> dict[str, list[str]]:
    s = ["--store", str(store)]
    report = [*s, "report", "--out", str(tmp / f"report{n}"), "--audio-group", "opensmile", "--au-group", "openface",
              "--text-group", "minilm", "--permutations", "1000"]
    every = {
        "quadrants": [*s, "quadrants", "--bootstrap", "200"],
        "compare": [*s, "compare", "opensmile", "--unimodal", "audio.probe"],
        "attribute": [*s, "attribute", "--fusion", "fusion"],
        "rank (no kNN)": [*s, "rank", "--top", "50", "--embedding", "none"],
        "report": report,
    }
    if n > KNN_WHOLE_UP_TO:
        return every | {"boundary (query sample)": [*s, "boundary", "minilm", "--unimodal", "text.probe", "--permutations",
                                                    "1000", "--query-sample", str(QUERY_SAMPLE)]}
    return every | {
        "boundary": [*s, "boundary", "minilm", "--unimodal", "text.probe", "--permutations", "1000"],
        "boundary (query sample)": [*s, "boundary", "minilm", "--unimodal", "text.probe", "--permutations", "1000",
                                    "--query-sample", str(QUERY_SAMPLE)],
        "rank": [*s, "rank", "--top", "50"],
    }


def sgemm_rate() -> float:
    """This machine's float32 matrix-product rate in GFLOP per CPU-second (numpy's BLAS, the product
    exact kNN is made of): the floor of a search of q queries among n d-dimensional rows is 2 q n d / rate."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((4000, 384), dtype=np.float32), rng.standard_normal((65536, 384), dtype=np.float32)
    a @ b[:1000].T
    c = time.process_time()
    for _ in range(5):
        a @ b.T
    return 5 * 2 * 4000 * 65536 * 384 / (time.process_time() - c) / 1e9


def exponent(t1: float, t2: float, n1: int, n2: int) -> float:
    return math.log(t2 / t1) / math.log(n2 / n1) if t1 > 0 and t2 > 0 else math.nan


def main(argv: list[str] | None = None) -> list[Run]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated segment counts")
    ap.add_argument("--million", action="store_true", help="also 1,000,000 (long)")
    ap.add_argument("--only", help="comma-separated commands (quadrants, compare, boundary, attribute, rank, report, explore)")
    ap.add_argument("--keep", type=Path, help="build the stores here and keep them (reused when present)")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--knn-up-to", type=int, default=KNN_WHOLE_UP_TO, help="largest size whose commands run a kNN of every segment")
    ap.add_argument("--sgemm", action="store_true", help="only print the machine's float32 matrix-product rate")
    a = ap.parse_args(argv)
    if a.sgemm:
        rate = sgemm_rate()
        print(f"sgemm {rate:.1f} GFLOP per CPU-second (load {os.getloadavg()[0]:.1f}); 4,000 queries among 10^6 x 384: "
              f"{2 * 4000 * 1e6 * 384 / rate / 1e9:.0f} CPU s")
        return []
    globals()["KNN_WHOLE_UP_TO"] = a.knn_up_to
    sizes = [int(s) for s in a.sizes.split(",")] + ([1_000_000] if a.million else [])
    only = set(a.only.split(",")) if a.only else None
    tmp = a.keep or Path(tempfile.mkdtemp(prefix="bench-million-"))
    tmp.mkdir(parents=True, exist_ok=True)
    print(machine(), flush=True)
    runs: list[Run] = []
    for n in sizes:
        store = tmp / f"store{n}"
        if not (store / "segments.lance").exists():
            t0 = time.perf_counter()
            build(store, n)
            print(f"store of {n:,} segments built in {time.perf_counter() - t0:.0f} s", flush=True)
        for name, args in commands(store, tmp, n).items():
            if only and name not in only:
                continue
            load = os.getloadavg()[0]
            r = run_cli(name, n, args, a.timeout)
            r.note = (r.note + " " if r.note else "") + f"(load {load:.1f})"
            runs.append(r)
            print(f"  {name:<10} {n:>9,}  wall {r.wall:8.1f} s  cpu {r.cpu:8.1f} s  peak RSS {r.rss_mb:7.0f} MB "
                  f"(anonymous {r.anon_mb:.0f} MB) {r.note}", flush=True)
        if not only or "knn" in only:
            r = knn_floor(store, n)
            runs.append(r)
            print(f"  knn floor  {n:>9,}  wall {r.wall:8.1f} s  cpu {r.cpu:8.1f} s  {r.note}", flush=True)
        if not only or "explore" in only:
            shutil.rmtree(store / "_explore", ignore_errors=True)  # the first start computes and stores
            r = run_explore(store, n, what="explore (computes)")
            runs.append(r)
            print(f"  explore    {n:>9,}  wall {r.wall:8.1f} s  cpu {r.cpu:8.1f} s  peak RSS {r.rss_mb:7.0f} MB {r.note}", flush=True)
            r = run_explore(store, n, what="explore (stored data)")
            runs.append(r)
            print(f"  explore    {n:>9,}  wall {r.wall:8.1f} s  cpu {r.cpu:8.1f} s  peak RSS {r.rss_mb:7.0f} MB {r.note}", flush=True)
        if not a.keep:
            shutil.rmtree(store, ignore_errors=True)
    _table(runs, sizes)
    OUT.mkdir(parents=True, exist_ok=True)
    tag = "".join(ch if ch.isalnum() else "-" for ch in f"{','.join(map(str, sizes))}-{a.only or 'all'}")
    (OUT / f"million-runs-{tag}.json").write_text(json.dumps([r.__dict__ for r in runs], indent=1))
    rows = []
    big = [n for n in sizes if n >= 100_000]
    for r in runs:
        if r.n == max(sizes) and not math.isnan(r.rss_mb):
            rows.append(Row("million", f"peak RSS of {r.command}, {r.n:,} segments (<= 2 GB)", r.rss_mb, 2048, r.rss_mb / 2048, "<= 1", "MB"))
    for r in runs:
        if r.n == max(sizes) and r.command == "report":
            rows.append(Row("million", f"report, {r.n:,} segments (<= 5 min)", r.wall, 300.0, r.wall / 300.0, "<= 1"))
    for r in runs:
        if r.n == max(sizes) and r.command == "explore (stored data)":
            rows.append(Row("million", f"explore's first page from stored data, {r.n:,} segments (<= 5 s)", r.wall, 5.0, r.wall / 5.0, "<= 1"))
    if len(big) >= 2:
        for r2 in [r for r in runs if r.n == big[-1]]:
            r1 = next((r for r in runs if r.n == big[-2] and r.command == r2.command), None)
            if r1 and not r1.command.startswith("explore"):
                rows.append(Row("million", f"wall of {r2.command}, {r2.n:,} vs {r1.n:,}", r2.wall, r1.wall, r2.wall / r1.wall, "<= 12"))
    emit("million", rows)
    return runs


def _table(runs: list[Run], sizes: list[int]) -> None:
    """The Markdown table of docs/benchmarks.md: one row per command, wall/CPU/RSS per size, exponents."""
    names = list(dict.fromkeys(r.command for r in runs))
    head = "| command | " + " | ".join(f"{n:,}: wall s / CPU s / peak MB" for n in sizes) + " | exponent (wall) |"
    print("\n" + head + "\n|" + "---|" * (len(sizes) + 2))
    for c in names:
        by = {r.n: r for r in runs if r.command == c}
        cells = [f"{by[n].wall:.1f} / {by[n].cpu:.1f} / {by[n].rss_mb:.0f}" if n in by else "" for n in sizes]
        ex = [f"{exponent(by[a].wall, by[b].wall, a, b):.2f}" for a, b in zip(sizes, sizes[1:], strict=False) if a in by and b in by]
        print(f"| {c} | " + " | ".join(cells) + f" | {', '.join(ex)} |")


if __name__ == "__main__":
    main()
