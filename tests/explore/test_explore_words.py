"""The segment page's words: /api/words/<id> reads the align and word_prosody groups."""

from __future__ import annotations

import math

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
