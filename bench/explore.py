"""The explorer's first render at 100,000 segments in headless Chromium (navigation timing).

First render: from navigation start until the scatter, legend and first table page are drawn
(``performance.mark("explore:first-render")``). Goal: within 3 s. The same run measures the
floor any page showing these data pays: fetching and parsing the points document
(``fetch('/api/points').then(r => r.json())``, median of 3), and when the SVG layer of one
``data-segment-id`` element per point is complete (it is built in chunks after the first render).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import Row, emit  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


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


def main(n: int = 100_000, repeats: int = 3) -> list[Row]:
    import uvicorn
    from playwright.sync_api import sync_playwright

    from ambiguity.explore.app import create_app
    from ambiguity.explore.data import load

    tmp = Path(tempfile.mkdtemp(prefix="bench-explore-"))
    t0 = time.perf_counter()
    store = build_store(tmp / "store", n)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    data = load(store)
    payload = len(data.payload())
    zipped = len(data.payload_gzip())
    t_load = time.perf_counter() - t0
    srv = uvicorn.Server(uvicorn.Config(create_app(data), host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    threading.Thread(target=srv.run, daemon=True).start()
    while not srv.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{srv.servers[0].sockets[0].getsockname()[1]}"
    first, layer, floor = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        for _ in range(repeats):
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(base + "/")
            page.wait_for_selector("body[data-view='explore']", timeout=60_000)
            first.append(page.evaluate("() => performance.getEntriesByName('explore:first-render')[0].startTime") / 1000)
            page.wait_for_selector("body[data-points-ready]", timeout=120_000)
            layer.append(page.evaluate("() => performance.now()") / 1000)
            assert page.locator("#overlay circle").count() == n
            page.close()
            # the floor, in a fresh page of the same origin (a small static file): fetch and parse the points
            bare = browser.new_page()
            bare.goto(base + "/static/explore.css")
            floor.append(bare.evaluate("async () => { const t = performance.now(); const d = await (await fetch('/api/points')).json(); return (performance.now() - t) / 1000 + 0 * d.n; }"))
            bare.close()
        browser.close()
    srv.should_exit = True
    f, fl, ly = statistics.median(first), statistics.median(floor), statistics.median(layer)
    print(f"store of {n} segments built in {t_build:.1f} s; explorer data loaded in {t_load:.1f} s ({payload / 2**20:.1f} MiB of points JSON, {zipped / 2**20:.1f} MiB gzipped)")
    print(f"first render {first} s; fetch+parse floor {floor} s; SVG layer complete {layer} s")
    return [
        Row("explore", f"first render, {n // 1000}k segments (budget 3 s)", f, 3.0, f / 3.0, "<= 1"),
        Row("explore", f"first render / fetch+parse of its data, {n // 1000}k", f, fl, f / fl, "<= 10"),
        Row("explore", f"data-segment-id layer complete, {n // 1000}k (no goal)", ly, f, ly / f, "<= 100"),
    ]


if __name__ == "__main__":
    emit("explore", main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
