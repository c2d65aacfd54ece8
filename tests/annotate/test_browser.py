"""End to end in real headless Chromium (Debian's `chromium`, driven by Playwright).

Two annotators each answer pass 1 and pass 2 of three items with the keyboard;
one reloads the page half way and resumes; the answers are in the store and
`ambiguity agreement` reads them.

Needs /usr/bin/chromium (`apt-get install chromium`; AMBIGUITY_CHROMIUM names another
binary); without it the test skips, unless AMBIGUITY_REQUIRE_BROWSER=1, when it fails. Screenshots of both passes go
to a temp folder, or to AMBIGUITY_SCREENSHOTS (e.g. docs/img) when that is set.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from app_server import serving

pytestmark = pytest.mark.browser

TIMEOUT_MS = 20_000


@pytest.fixture
def server(store, clip_dir, helpers, chromium):
    """The app on a free 127.0.0.1 port, run by uvicorn in a thread."""
    from ambiguity.annotate.app import create_app

    helpers.add_segments(store)
    helpers.make_task(store, flags={"text": ["s1"], "audio": ["s2"], "video": ["s3"]})
    app = create_app(store, "pilot", clip_dir=str(clip_dir))
    with serving(app, "the annotation server") as base:
        yield base, store


def _wait_media(page) -> float:
    """Wait until Chromium has decoded the player's first frame/samples (served with ranges); its duration."""
    page.wait_for_function("() => { const p = document.getElementById('player'); return p && p.readyState >= 2; }", timeout=TIMEOUT_MS)
    return page.evaluate("() => document.getElementById('player').duration")


def _shot(page, path: Path) -> None:
    # for a clean picture: wait until the clip is buffered (no loading spinner), if there is one
    page.wait_for_function(
        "() => { const p = document.getElementById('player'); return !p || (p.readyState >= 4 && p.networkState !== 2); }",
        timeout=TIMEOUT_MS,
    )
    page.wait_for_timeout(500)
    page.screenshot(path=str(path), full_page=True)


def _annotate(page, base, name, shots: Path | None, reload_after_first_pass_of: int | None) -> dict:
    """Log in and answer every item with the keyboard; returns {(item, round): label}."""
    page.goto(base + "/")
    page.wait_for_selector("#name", state="visible")
    page.keyboard.type(name)  # the name field has focus on the login screen
    page.keyboard.press("Enter")
    page.wait_for_selector("body[data-view='study']")
    choices = ["empathetic", "neutral"]
    given: dict[tuple[str, str], str] = {}
    for n in range(3):
        page.wait_for_selector("body[data-round='unimodal']")
        item = page.get_attribute("body", "data-item")
        flag = item.split(":", 1)[0]
        stage = page.locator("#stage")
        assert "Pass 1 of 2" in page.inner_text("#flag")
        if flag == "text":
            # the transcript only, shown literally (markup in it is text, not HTML)
            assert "I know how hard this has been <b>for you</b>." in stage.inner_text()
            assert stage.locator("video, audio").count() == 0
            page.keyboard.press("d")  # the definition (Appendix C) opens with D
            assert page.locator("#definition-box").get_attribute("open") is not None
            assert "imagining oneself in that other person's situation" in page.inner_text("#definition")
        elif flag == "audio":
            assert stage.locator("audio").count() == 1 and stage.locator("video").count() == 0
            assert stage.locator(".transcript").count() == 0
            assert abs(_wait_media(page) - 2.0) < 0.1
        else:
            assert stage.locator("video").count() == 1 and stage.locator(".transcript").count() == 0
            assert page.evaluate("() => document.getElementById('player').muted") is True
            assert abs(_wait_media(page) - 2.0) < 0.15
        k = (n + len(name)) % 2
        page.keyboard.press(str(k + 1))
        assert page.get_attribute(f".choice[data-index='{k}']", "aria-pressed") == "true"
        if shots is not None:
            _shot(page, shots / f"annotate-pass1-{flag}.png")
        if flag == "text":
            page.keyboard.press("d")
            assert page.locator("#definition-box").get_attribute("open") is None
        page.keyboard.press("Enter")
        given[(item, "unimodal")] = choices[k]
        page.wait_for_selector(f"body[data-round='multimodal'][data-item='{item}']")
        if reload_after_first_pass_of == n:
            page.reload()  # closing or reloading loses nothing: the page resumes at pass 2 of this item
            page.wait_for_selector(f"body[data-round='multimodal'][data-item='{item}']")
            assert f"Item {n + 1} of 3" in page.inner_text("#progress-text")
        assert "Pass 2 of 2" in page.inner_text("#flag")
        assert stage.locator("video").count() == 1
        assert page.evaluate("() => document.getElementById('player').muted") is False
        assert stage.locator(".transcript").count() == 1
        assert abs(_wait_media(page) - 2.0) < 0.15
        k2 = (k + n) % 2
        page.keyboard.press(str(k2 + 1))
        if shots is not None and n == 0:
            _shot(page, shots / "annotate-pass2.png")
        page.keyboard.press("Enter")
        given[(item, "multimodal")] = choices[k2]
    page.wait_for_selector("body[data-round='done']")
    assert "3 of 3 items done" in page.inner_text("#progress-text")
    return given


def test_two_annotators_in_chromium(server, tmp_path, chromium):
    from playwright.sync_api import sync_playwright

    from ambiguity.annotate.records import read_answers
    from ambiguity.cli import main

    base, store = server
    out = os.environ.get("AMBIGUITY_SCREENSHOTS")
    shots = Path(out) if out else tmp_path / "shots"
    shots.mkdir(parents=True, exist_ok=True)
    expected: dict[str, dict] = {}
    with sync_playwright() as p:
        for name, reload_at in (("alice", None), ("bob", 1)):
            profile = tmp_path / f"profile-{name}"  # a fresh user-data-dir per annotator
            ctx = p.chromium.launch_persistent_context(
                str(profile), **chromium, viewport={"width": 1000, "height": 860}
            )
            try:
                page = ctx.new_page()
                page.set_default_timeout(TIMEOUT_MS)
                expected[name] = _annotate(page, base, name, shots if name == "alice" else None, reload_at)
            finally:
                ctx.close()
            shutil.rmtree(profile, ignore_errors=True)

    for f in ("annotate-pass1-text.png", "annotate-pass1-audio.png", "annotate-pass1-video.png", "annotate-pass2.png"):
        assert (shots / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    rows = read_answers(store, "pilot")
    assert rows.height == 12  # 2 annotators x 3 items x 2 rounds, each written when given
    got = {(r["annotator"], r["item"], r["round"]): r["judgment"] for r in rows.iter_rows(named=True)}
    want = {(a, item, rnd): lab for a, d in expected.items() for (item, rnd), lab in d.items()}
    assert got == want
    assert set(rows["source"].to_list()) == {"app"}

    res = CliRunner().invoke(main, ["--store", store.uri, "agreement", "--task", "pilot", "--bootstrap", "100"])
    assert res.exit_code == 0, res.output
    assert "between alice and bob" in res.output and "3 of 3 items" in res.output
    assert "| All | 3 |" in res.output
