"""The segment page's words: /api/words/<id> reads the align and word_prosody groups."""

from __future__ import annotations

import math

import pytest
from starlette.testclient import TestClient

from ambiguity.extractors.align import Align
from ambiguity.extractors.base import Failure
from ambiguity.extractors.rows import results_to_table
from ambiguity.extractors.word_prosody import WordProsody
from explore_data import make_store


def _client(store):
    from ambiguity.explore.app import create_app
    from ambiguity.explore.data import load

    return TestClient(create_app(load(store)), base_url="http://127.0.0.1")


def _write(store, ex, ids, results):
    store.write_features(ex.default_group(), results_to_table(ex.schema(), ids, results), ex.schema(), {"extractor": ex.name})


def test_words_with_times_pitch_and_reasons(store):
    ids = sorted(make_store(store, 20)[0])
    c = _client(store)
    assert "extract --extractor align" in c.get(f"/api/words/{ids[0]}").json()["reason"]
    row = {
        "n_words": 2.0, "confidence_mean": 0.9, "confidence_min": 0.8, "words_s": 0.7,
        "words": ["hello", "there"], "word_start": [0.1, 0.5], "word_end": [0.4, 0.9],
        "word_confidence": [0.8, 1.0], "word_phones": ["HH 0.10 0.20;AH 0.20 0.40", "DH 0.50 0.60;EH 0.60 0.90"],
    }
    _write(store, Align(), ids[:2], [row, Failure("transcript does not match the audio")])
    prosody = {k: 0.0 for k in ("n_words",)}
    _write(store, WordProsody(), ids[:1], [{**prosody, "word_pitch": [120.0, math.nan], "word_intensity": [60.0, 55.0]}])
    got = c.get(f"/api/words/{ids[0]}").json()
    assert got["reason"] is None
    assert [(w["word"], w["start"], w["end"], w["pitch"], w["intensity"]) for w in got["words"]] == [
        ("hello", 0.1, 0.4, 120.0, 60.0), ("there", 0.5, 0.9, None, 55.0),
    ]
    assert got["words"][0]["word_index"] == 0 and got["words"][1]["confidence"] == 1.0
    assert c.get(f"/api/words/{ids[1]}").json() == {"words": [], "reason": "failed: transcript does not match the audio"}
    assert c.get(f"/api/words/{ids[2]}").json()["reason"] == "not aligned yet"
    assert c.get("/api/words/no-such-segment").status_code == 404


@pytest.mark.browser
def test_clicking_a_word_plays_from_it(store, clip_dir, chromium):
    """In headless Chromium: the words are drawn under the transcript, and a click on one moves
    the segment's audio to the word's start."""
    from playwright.sync_api import sync_playwright

    from ambiguity.explore.app import create_app
    from ambiguity.explore.data import load
    from app_server import serving

    ids, _, _, (_, durs) = make_store(store, 6)
    sid = sorted(ids)[0]
    dur = float(dict(zip(ids, durs.tolist(), strict=True))[sid])
    start = round(dur / 2, 2)
    row = {
        "n_words": 2.0, "confidence_mean": 0.9, "confidence_min": 0.8, "words_s": 0.5,
        "words": ["first", "second"], "word_start": [0.05, start], "word_end": [0.3, min(start + 0.3, dur)],
        "word_confidence": [0.8, 1.0], "word_phones": ["", ""],
    }
    _write(store, Align(), [sid], [row])
    with serving(create_app(load(store), clip_dir=str(clip_dir)), "the explorer") as base, sync_playwright() as pw:
        browser = pw.chromium.launch(**chromium)
        page = browser.new_page()
        page.set_default_timeout(30_000)
        page.goto(base + "/segment/" + sid)
        page.wait_for_selector("#words .word")
        assert page.locator("#words .word").all_inner_texts() == ["first", "second"]
        page.wait_for_function("() => document.getElementById('audio').readyState >= 2")
        page.locator("#words .word").nth(1).click()
        t = page.evaluate("() => document.getElementById('audio').currentTime")
        assert start - 0.05 <= t <= start + 0.5, (t, start)
        browser.close()
