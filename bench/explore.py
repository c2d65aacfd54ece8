"""The explorer's first page and first render in headless Chromium, at 10^5 segments or on a given store.

Two measurements:

- **first page** (``--store``): ``ambiguity explore`` started as a user starts it, timed from the
  command's start until ``/``, the summary (``/api/points``, with exact counts), the scatter's data
  (``/api/scatter``: points, or a density grid above 100,000 shown points) and the table's first page
  (``/api/table``) have all answered: wall, CPU of the process (os.wait4) and peak RSS of its tree.
- **first render**: from navigation start until the scatter, legend and first table page are drawn
  (``performance.mark("explore:first-render")``), median of 3 page loads; goal 3 s. The same run
  measures the floor any page showing these data pays: fetching and parsing the summary, the scatter's
  data and a table page in a fresh page of the same origin. In points mode also when the SVG layer of
  one ``data-segment-id`` element per point is complete (built in chunks after the first render).

    .venv/bin/python bench/explore.py                       # builds a 100,000-segment store
    .venv/bin/python bench/explore.py --store /tmp/s1m --n 1000000 --embedding none
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import Row, emit  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
CLI = str(Path(sys.executable).with_name("ambiguity"))
#: What the page asks for first (the plot's drawing area is 582 x 508 pixels at the default size).
FIRST = ["/", "/api/points", "/api/scatter?w=582&h=508", "/api/table?sort=score&desc=1&offset=0&limit=50"]


def build_store(path: Path, n: int, seed: int = 0):
    import pyarrow as pa

    from ambiguity import open_store
    from ambiguity.models.predictions import prediction_table, write_predictions
    from ambiguity.stores.schema import SEGMENTS_SCHEMA

    rng = np.random.default_rng(seed)
    store = open_store(path)
    ids = [f"seg{i:07d}" for i in range(n)]
    labels = np.where(np.arange(n) % 2 == 0, "empathetic", "neutral")
    splits = rng.choice(["train", "val", "test"], n, p=[0.6, 0.2, 0.2])
    store.upsert_segments(pa.table({
        "segment_id": ids, "media": [None] * n, "audio": [None] * n, "start_s": [0.0] * n, "end_s": [2.0] * n,
        "transcript": [f"transcript {i}" for i in range(n)], "label": labels.tolist(), "split": splits.tolist(),
        "metadata": [json.dumps({"planted": ["audio", "video", None, None][i % 4]}) for i in range(n)],
    }, schema=SEGMENTS_SCHEMA))
    for model, mods in (("text.m", ["text"]), ("audio.m", ["audio"]), ("video.m", ["video"]), ("fusion", ["text", "audio", "video"])):
        pc = rng.beta(2, 1.2, n)
        k = (labels == "neutral").astype(int)
        probs = np.empty((n, 2))
        probs[np.arange(n), k], probs[np.arange(n), 1 - k] = pc, 1 - pc
        write_predictions(store, prediction_table(
            model=model, kind="probe", arch="logistic", modalities=mods, groups=[], segment_ids=ids,
            splits=splits.tolist(), labels=labels.tolist(), classes=["empathetic", "neutral"], probs=probs))
    store.compact()
    return store


def first_page(store: Path, extra: list[str], timeout: float = 3600) -> dict[str, float]:
    """``ambiguity explore`` from its start until every request of FIRST has answered."""
    import million  # the same RSS sampler and free port as the scale benchmark

    port = million._free_port()
    stop, peak = threading.Event(), []
    t0 = time.perf_counter()
    p = subprocess.Popen([CLI, "--store", str(store), "explore", "--port", str(port), *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    th = threading.Thread(target=million._sample, args=(p.pid, stop, peak))
    th.start()
    base, sizes, up = f"http://127.0.0.1:{port}", {}, None
    try:
        up = million.wait_until_up(p, base, t0, timeout)
        for path in FIRST[1:]:
            req = urllib.request.Request(base + path, headers={"Accept-Encoding": "gzip"})
            with urllib.request.urlopen(req, timeout=600) as r:
                sizes[path] = len(r.read())
        wall = time.perf_counter() - t0
    finally:
        p.send_signal(signal.SIGINT)
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            stop.set()
            th.join()
    return {"wall": wall, "up": up or 0.0, "cpu": ru.ru_utime + ru.ru_stime, "rss_mb": peak[0] if peak else float("nan"),
            "bytes": sum(sizes.values()), "load": os.getloadavg()[0]}


def render(base: str, repeats: int, n: int) -> tuple[list[float], list[float], list[float], str]:
    from playwright.sync_api import sync_playwright

    first, layer, floor, mode = [], [], [], ""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        for _ in range(repeats):
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(base + "/")
            page.wait_for_selector("body[data-view='explore']", timeout=120_000)
            first.append(page.evaluate("() => performance.getEntriesByName('explore:first-render')[0].startTime") / 1000)
            mode = page.get_attribute("body", "data-scatter") or ""
            if mode == "points":
                page.wait_for_selector("body[data-points-ready]", timeout=120_000)
                layer.append(page.evaluate("() => performance.now()") / 1000)
                assert page.locator("#overlay circle").count() == n
            page.close()
            # the floor, in a fresh page of the same origin (a small static file): fetch and parse the first view's data
            bare = browser.new_page()
            bare.goto(base + "/static/explore.css")
            floor.append(bare.evaluate("""async (urls) => { const t = performance.now();
                await (await fetch(urls[0])).json(); const r = await fetch(urls[1]);
                await ((r.headers.get('Content-Type') || '').startsWith('application/json') ? r.json() : r.arrayBuffer());
                await (await fetch(urls[2])).json();
                return (performance.now() - t) / 1000; }""", FIRST[1:]))
            bare.close()
        browser.close()
    return first, layer, floor, mode


def main(argv: list[str] | None = None) -> list[Row]:
    import uvicorn

    from ambiguity import open_store
    from ambiguity.explore.app import create_app
    from ambiguity.explore.data import load

    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=100_000, help="segments of the built store")
    ap.add_argument("--store", type=Path, help="an existing store (not built; --n says its size)")
    ap.add_argument("--n", dest="n_store", type=int, help="segments in --store")
    ap.add_argument("--embedding", help="passed to ambiguity explore (none: no kNN component)")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    extra = ["--embedding", a.embedding] if a.embedding else []
    rows: list[Row] = []
    if a.store:
        path, n = a.store, a.n_store or open_store(a.store).count("segments")
    else:
        n = a.n
        path = Path(tempfile.mkdtemp(prefix="bench-explore-")) / "store"
        t0 = time.perf_counter()
        build_store(path, n)
        print(f"store of {n} segments built in {time.perf_counter() - t0:.1f} s")
    runs = [first_page(path, extra) for _ in range(2)]  # the first computes (or reuses) the stored data, the second reuses it
    for what, r in zip(("run 1 (computes unless an entry is stored)", "run 2 (stored data)"), runs, strict=True):
        print(f"ambiguity explore, {what}: first page {r['wall']:.2f} s wall ('/' at {r['up']:.2f} s), {r['cpu']:.2f} s CPU, "
              f"peak RSS {r['rss_mb']:.0f} MB, {r['bytes'] / 2**20:.2f} MiB over the wire; load average {r['load']:.1f}")
    r = runs[1]
    rows.append(Row("explore", f"first page from stored data, {n:,} segments (budget 5 s)", r["wall"], 5.0, r["wall"] / 5.0, "<= 1"))
    from ambiguity.stats.score import default_embedding

    store = open_store(path)  # the options `ambiguity explore` used above, so its stored entry is the one opened
    data = load(store, embedding=None if a.embedding == "none" else a.embedding or default_embedding(store), weights={})
    srv = uvicorn.Server(uvicorn.Config(create_app(data), host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    threading.Thread(target=srv.run, daemon=True).start()
    while not srv.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{srv.servers[0].sockets[0].getsockname()[1]}"
    first, layer, floor, mode = render(base, a.repeats, n)
    srv.should_exit = True
    f, fl = statistics.median(first), statistics.median(floor)
    print(f"first render ({mode}) {[round(x, 2) for x in first]} s; fetch+parse floor {[round(x, 2) for x in floor]} s"
          + (f"; SVG layer complete {[round(x, 2) for x in layer]} s" if layer else "") + f"; load average {os.getloadavg()[0]:.1f}")
    rows += [
        Row("explore", f"first render, {n:,} segments, {mode} (budget 3 s)", f, 3.0, f / 3.0, "<= 1"),
        Row("explore", f"first render / fetch+parse of its data, {n:,}", f, fl, f / fl, "<= 10"),
    ]
    if layer:
        ly = statistics.median(layer)
        rows.append(Row("explore", f"data-segment-id layer complete, {n:,} (no goal)", ly, f, ly / f, "<= 100"))
    return rows


if __name__ == "__main__":
    emit("explore", main())
