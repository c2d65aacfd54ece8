"""The explorer in real headless Chromium (Debian's `chromium`, driven by Playwright).

A 2,000-segment store loads; the page draws one point per segment (each in the SVG layer
with its data-segment-id); filtering to red leaves only red points; clicking a point opens
its page with the transcript, and its audio reaches readyState >= 2 with the segment's
duration; traversal and out-of-store paths are refused. Skips without Chromium unless
AMBIGUITY_REQUIRE_BROWSER=1. Screenshots go to AMBIGUITY_SCREENSHOTS when set (docs/img).
"""

from __future__ import annotations

import http.client
import os
from pathlib import Path

import numpy as np
import pytest

from app_server import serving
from explore_data import make_store

pytestmark = pytest.mark.browser
TIMEOUT_MS = 30_000
N = 2000


@pytest.fixture
def served(store, clip_dir, chromium):
    from ambiguity.explore.app import create_app
    from ambiguity.explore.data import load

    long_text = "Ünïcødé — 共感 " + "a very long transcript " * 60
    texts = [f"Transcript of segment {i}: how hard this has been." for i in range(N)]
    texts[7] = long_text
    ids, labels, p, (starts, durs) = make_store(store, N, transcripts=texts, split="test")
    app = create_app(load(store), clip_dir=str(clip_dir))
    with serving(app, "the explorer") as base:
        yield base, ids, p, dict(zip(ids, durs.tolist(), strict=True)), texts


def _quadrant(pu: float, pf: float) -> str:
    # the definition (paper, Figure 2): right means p(correct) > 0.5
    return {(True, False): "red", (False, True): "green", (True, True): "blue", (False, False): "yellow"}[(pu > 0.5, pf > 0.5)]


def _raw_status(base: str, path: str, host: str | None = None) -> int:
    """GET a path byte for byte (no client-side normalisation of '..')."""
    hostport = base.split("//", 1)[1]
    conn = http.client.HTTPConnection(hostport, timeout=10)
    conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", host or hostport)
    conn.endheaders()
    status = conn.getresponse().status
    conn.close()
    return status


def test_explorer_in_chromium(served, chromium, tmp_path):
    from playwright.sync_api import sync_playwright

    base, ids, p, durs, texts = served
    shots = Path(os.environ.get("AMBIGUITY_SCREENSHOTS") or tmp_path)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(**chromium)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(base + "/?model=text.m")
        page.wait_for_selector("body[data-points-ready]")
        # one point per segment, each addressable by its id, in its quadrant by the definition
        got = page.evaluate("() => [...document.querySelectorAll('#overlay circle')].map(c => [c.dataset.segmentId, c.dataset.quadrant])")
        assert len(got) == N and sorted(s for s, _ in got) == sorted(ids)
        want = {s: _quadrant(p["text.m"][s], p["fusion"][s]) for s in ids}
        assert all(q == want[s] for s, q in got)
        if os.environ.get("AMBIGUITY_SCREENSHOTS"):
            page.screenshot(path=str(shots / "explore.png"))

        # filter to red: only red points remain, as many as the definition gives; the URL holds it
        page.check("#quadrants input[value='red']")
        page.wait_for_selector("body[data-points-ready]")
        red = page.evaluate("() => [...document.querySelectorAll('#overlay circle')].map(c => c.dataset.quadrant)")
        assert red and set(red) == {"red"} and len(red) == sum(q == "red" for q in want.values())
        assert "q=red" in page.url
        rows = page.evaluate("() => [...document.querySelectorAll('#table tbody tr')].map(r => r.dataset.segmentId)")
        assert rows and all(want[s] == "red" for s in rows)
        # sortable: p unimodal, highest first, then lowest first on a second click; the sort is in the URL
        page.click("#table th[data-key='p_unimodal']")
        page.wait_for_selector("#table th[data-key='p_unimodal'][aria-sort='descending']")  # the server's page arrived
        col = "() => [...document.querySelectorAll('#table tbody tr')].map(r => r.dataset.segmentId)"
        down = [round(p["text.m"][s], 3) for s in page.evaluate(col)]  # the page holds 3 decimals
        assert down == sorted(down, reverse=True) and down[0] == round(max(p["text.m"][s] for s in ids if want[s] == "red"), 3)
        page.click("#table th[data-key='p_unimodal']")
        page.wait_for_selector("#table th[data-key='p_unimodal'][aria-sort='ascending']")
        up = [round(p["text.m"][s], 3) for s in page.evaluate(col)]
        assert up == sorted(up) and "sort=p_unimodal" in page.url and "desc=0" in page.url
        page.reload()  # the state survives a reload (a shared link shows the same view)
        page.wait_for_selector("body[data-points-ready]")
        assert page.locator("#overlay circle").count() == len(red)

        # click a red point that no other point crowds, from its position on the canvas
        pts = page.evaluate("() => [...document.querySelectorAll('#overlay circle')].map(c => [c.dataset.segmentId, +c.getAttribute('cx'), +c.getAttribute('cy')])")
        lonely = next(s for s, x, y in pts if all((x - x2) ** 2 + (y - y2) ** 2 > 10 ** 2 for s2, x2, y2 in pts if s2 != s))
        box = page.locator(f"#overlay circle[data-segment-id='{lonely}']").bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_selector("#tooltip:not([hidden]) .tip-text:has-text('Transcript of segment')")
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_selector("body[data-view='segment']")
        assert page.get_attribute("body", "data-segment-id") == lonely
        assert page.inner_text("#transcript") == texts[ids.index(lonely)]
        page.wait_for_function("() => document.getElementById('audio').readyState >= 2")
        assert abs(page.evaluate("() => document.getElementById('audio').duration") - durs[lonely]) <= 0.1
        assert page.evaluate("() => document.getElementById('video-muted').muted") is True
        assert page.evaluate("() => document.getElementById('video-full').muted") is False
        if os.environ.get("AMBIGUITY_SCREENSHOTS"):
            page.wait_for_timeout(800)
            page.screenshot(path=str(shots / "explore-segment.png"), full_page=True)

        # a non-ASCII, very long transcript: truncated with an expander, then whole
        page.goto(base + "/segment/" + ids[7])
        page.wait_for_selector("body[data-view='segment']")
        short = page.inner_text("#transcript")
        assert short.startswith("Ünïcødé — 共感") and short.endswith("…") and len(short) < len(texts[7])
        page.click("#expand")
        assert page.inner_text("#transcript") == texts[7]
        browser.close()

    # traversal and out-of-store paths: refused (404), never a file of the disk or another segment
    bad = [
        "/segment/..%2F..%2Fetc%2Fpasswd", "/segment/../../etc/passwd", "/segment/not-a-segment",
        "/api/segment/..%2Fconftest.py", "/api/segment/seg999999", "/api/brief/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/api/media/audio/../../../etc/passwd", "/api/media/audio/%2Fetc%2Fpasswd", "/api/media/full/seg999999",
        "/api/media/../../etc/passwd/seg000001", "/api/media/passwd/seg000001", "/static/../app.py", "/static/..%2Fapp.py",
        "/static/%2e%2e%2fdata.py", "/static/index.html/../../score.py", "/api/segment/seg000001?embedding=..%2F..%2Fetc",
    ]
    for path in bad:
        status = _raw_status(base, path)
        assert status in (400, 404), f"{path} answered {status}"
    assert _raw_status(base, "/api/brief/" + ids[0]) == 200  # the same client reaches what is served
    assert _raw_status(base, "/", host="evil.example") == 400  # DNS rebinding: unknown Host refused


def test_density_scatter_above_the_limit_keeps_counts_exact(store, clip_dir, chromium, monkeypatch):
    """Above ``DENSE_ABOVE`` shown points (lowered to 500 here) the scatter is a per-pixel density
    with no per-point layer; the legend's counts are still those of the definition, and the
    canvas holds pixels of each quadrant's colour."""
    from playwright.sync_api import sync_playwright

    import ambiguity.explore.data as D
    import ambiguity.explore.points as P
    from ambiguity.constants import QUADRANT_COLOURS
    from ambiguity.explore.app import create_app

    monkeypatch.setattr(P, "DENSE_ABOVE", 500)
    ids, _, p, _ = make_store(store, N, split="test")
    want = {q: 0 for q in ("red", "green", "blue", "yellow")}
    for s in ids:
        want[_quadrant(p["text.m"][s], p["fusion"][s])] += 1
    with serving(create_app(D.load(store, cache=False), clip_dir=str(clip_dir)), "the explorer") as base, sync_playwright() as pw:
        browser = pw.chromium.launch(**chromium)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        seen = []  # every API answer the page got: how many rows or ids each carried
        page.on("response", lambda r: seen.append(r) if "/api/" in r.url else None)
        page.goto(base + "/?model=text.m")
        page.wait_for_selector("body[data-points-ready]")
        assert page.get_attribute("body", "data-scatter") == "density" and page.get_attribute("body", "data-overlay") == "off"
        # the server filtered and paged: a page of 50 table rows and a density grid, never the N rows
        sizes = {}
        for r in seen:
            kind = r.headers.get("content-type", "")
            body = r.json() if kind.startswith("application/json") else None
            sizes[r.url.split("?")[0].rsplit("/", 1)[-1]] = (kind, len((body or {}).get("rows", [])), len((body or {}).get("ids", [])))
        assert sizes["scatter"][0] == "application/octet-stream" and sizes["table"][1:] == (50, 0), sizes
        assert all(rows <= 50 and ids == 0 for _, rows, ids in sizes.values()), sizes
        assert page.locator("#overlay circle").count() == 0
        got = page.evaluate("() => Object.fromEntries([...document.querySelectorAll('#legend [data-count]')].map(e => [e.dataset.count, +e.textContent]))")
        assert got == want
        # pixels of each quadrant's colour (within 4 per channel: the canvas keeps premultiplied alpha)
        near = page.evaluate("""(cols) => { const c = document.getElementById('plot'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            const rgb = cols.map(h => [1, 3, 5].map(k => parseInt(h.slice(k, k + 2), 16))), n = cols.map(() => 0);
            for (let i = 0; i < d.length; i += 4) { if (d[i + 3] < 100) continue;
              rgb.forEach((v, k) => { if (Math.max(...v.map((x, j) => Math.abs(x - d[i + j]))) <= 4) n[k]++; }); }
            return n; }""", [QUADRANT_COLOURS[q] for q in want])
        assert all(k > 0 for k in near), dict(zip(want, near, strict=True))
        # hover in the density: the server's nearest point, within 7 pixels of the mouse by its position
        canvas = page.locator("#plot").bounding_box()
        pw, ph = canvas["width"] - 46 - 12, canvas["height"] - 12 - 40  # the plot's margins (explore.js M)
        xy = {s: (p["text.m"][s], p["fusion"][s]) for s in ids}
        s0 = ids[17]
        page.mouse.move(canvas["x"] + 46 + xy[s0][0] * pw, canvas["y"] + 12 + (1 - xy[s0][1]) * ph)
        page.wait_for_selector("#tooltip:not([hidden]) .tip-text:has-text('Transcript of segment')")
        hit = page.inner_text("#tooltip strong")
        assert ((xy[hit][0] - xy[s0][0]) * pw) ** 2 + ((xy[hit][1] - xy[s0][1]) * ph) ** 2 <= 7 ** 2 + 1e-6
        # a box in the density selects what the server finds inside it; the action adds exactly those
        page.mouse.move(canvas["x"] + 46 + 0.6 * pw, canvas["y"] + 12 + 0.1 * ph)
        page.mouse.down()
        page.mouse.move(canvas["x"] + 46 + 0.75 * pw, canvas["y"] + 12 + 0.3 * ph, steps=5)
        page.mouse.up()
        page.wait_for_selector("#selinfo[data-box]")
        x0, x1, y0, y1 = map(float, page.get_attribute("#selinfo", "data-box").split(","))
        inside = sorted(s for s, (x, y) in xy.items() if x0 <= float(np.float32(x)) <= x1 and y0 <= float(np.float32(y)) <= y1)
        assert inside and page.inner_text("#selinfo") == f"{len(inside)} selected (box)"
        page.fill("#taskname", "boxed")
        page.click("#addtask")
        page.wait_for_selector("#status:has-text('task boxed')")
        from ambiguity.annotate.tasks import load_task

        assert sorted(load_task(store, "boxed").items["segment_id"].to_list()) == inside
        page.check("#quadrants input[value='red']")  # fewer than the limit shown: points and their layer again
        page.wait_for_selector("body[data-points-ready]")
        assert page.get_attribute("body", "data-scatter") == "points" and page.locator("#overlay circle").count() == want["red"]
        browser.close()


def test_store_without_predictions_opens_with_its_table(store, clip_dir, chromium):
    """No predictions: the page says what to run, draws no point, and the server's table lists the segments."""
    from playwright.sync_api import sync_playwright

    from ambiguity.explore.app import create_app
    from ambiguity.explore.data import load

    make_store(store, 12, predictions=False)
    with serving(create_app(load(store), clip_dir=str(clip_dir)), "the explorer") as base, sync_playwright() as pw:
        browser = pw.chromium.launch(**chromium)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(base + "/")
        page.wait_for_selector("body[data-points-ready='0']")
        assert "ambiguity train" in page.inner_text("#problem")
        rows = page.evaluate("() => [...document.querySelectorAll('#table tbody tr')].map(r => r.dataset.segmentId)")
        assert rows == [f"seg{i:06d}" for i in range(12)]  # by score, none has one: missing last, ties in id order
        page.goto(base + "/?page=99")  # a page past the end (an old link): the last page
        page.wait_for_selector("body[data-points-ready='0']")
        assert "page 1 of 1 (12 rows)" in page.inner_text("#pager") and page.locator("#table tbody tr").count() == 12
        browser.close()
