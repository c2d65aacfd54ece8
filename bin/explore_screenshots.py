#!/usr/bin/env python
"""Screenshots of `ambiguity explore` on the demo store for the README and docs/explore.md.

    .venv/bin/python bin/demo.py                 # once
    .venv/bin/python bin/explore_screenshots.py  # writes docs/img/explore*.png
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "docs" / "img"


def main(store_path: str = str(ROOT / "demo-out" / "store")) -> int:
    import uvicorn
    from playwright.sync_api import sync_playwright

    from ambiguity import open_store
    from ambiguity.explore.app import create_app
    from ambiguity.explore.data import load
    from ambiguity.stats.score import default_embedding

    store = open_store(store_path, create=False)
    data = load(store, embedding=default_embedding(store))
    srv = uvicorn.Server(uvicorn.Config(create_app(data), host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    threading.Thread(target=srv.run, daemon=True).start()
    while not srv.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{srv.servers[0].sockets[0].getsockname()[1]}"
    top = data.scores.top(1)["segment_id"][0]
    IMG.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = b.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(base + "/?model=text.minilm&split=test")
        page.wait_for_selector("body[data-points-ready]")
        box = page.locator("#plot").bounding_box()
        # a box selection over the red quadrant (unimodal right, fusion wrong)
        page.mouse.move(box["x"] + box["width"] * 0.56, box["y"] + box["height"] * 0.52)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.97, box["y"] + box["height"] * 0.9, steps=5)
        page.mouse.up()
        pt = page.locator("#overlay circle[data-quadrant='green']").first.bounding_box()
        page.mouse.move(pt["x"] + pt["width"] / 2, pt["y"] + pt["height"] / 2)
        page.wait_for_selector("#tooltip:not([hidden]) .tip-text:not(:has-text('…'))")
        page.screenshot(path=str(IMG / "explore.png"))
        page.goto(base + "/segment/" + top)
        page.wait_for_selector("body[data-view='segment']")
        page.wait_for_function("() => { const a = document.getElementById('audio'); return !a || a.readyState >= 2; }")
        page.wait_for_timeout(1000)
        page.screenshot(path=str(IMG / "explore-segment.png"), clip={"x": 0, "y": 0, "width": 1280, "height": 1900}, full_page=True)
        b.close()
    srv.should_exit = True
    print(f"wrote {IMG / 'explore.png'} and {IMG / 'explore-segment.png'} (segment {top})")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
