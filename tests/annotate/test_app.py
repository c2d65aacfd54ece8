"""The annotation app over HTTP (starlette's TestClient): login, passes, media, security."""

from __future__ import annotations

import io
import wave

import av
import numpy as np
import pytest
from starlette.testclient import TestClient

from ambiguity.annotate.app import COOKIE, DEFAULT_DEFINITION, create_app
from ambiguity.annotate.records import read_answers

BASE = "http://127.0.0.1"


@pytest.fixture
def app(study, clip_dir):
    return create_app(study, "pilot", clip_dir=str(clip_dir))


def client(app, name=None) -> TestClient:
    c = TestClient(app, base_url=BASE)
    if name:
        r = c.post("/api/login", json={"name": name})
        assert r.status_code == 200, r.text
    return c


def current(c) -> dict:
    r = c.get("/api/state")
    assert r.status_code == 200, r.text
    return r.json()


def answer(c, item, rnd, judgment="empathetic"):
    return c.post("/api/answer", json={"item": item, "round": rnd, "judgment": judgment, "elapsed_s": 1.5})


def find_state(c, flag) -> dict:
    """Answer items (both passes) until the current pass-1 item has ``flag``."""
    for _ in range(10):
        st = current(c)
        it = st["item"]
        if it["round"] == "unimodal" and it["flag"] == flag:
            return st
        assert answer(c, it["item"], it["round"]).status_code == 200
    raise AssertionError(f"no {flag} item")


# -- login and names -------------------------------------------------------------------

@pytest.mark.parametrize("name", ["", " ", "a b", "../etc", "<script>", "x" * 33, "1abc", "ann\n", None, 42, ["ann"], "anné"])
def test_invalid_names_are_refused(app, name):
    r = TestClient(app, base_url=BASE).post("/api/login", json={"name": name})
    assert r.status_code == 400 and "invalid annotator name" in r.json()["error"]
    assert COOKIE not in r.cookies


def test_login_sets_a_strict_httponly_cookie(app):
    r = TestClient(app, base_url=BASE).post("/api/login", json={"name": "alice"})
    assert r.status_code == 200 and r.json() == {"annotator": "alice"}
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_allow_list(study, clip_dir):
    app = create_app(study, "pilot", clip_dir=str(clip_dir), annotators=["alice", "bob"])
    assert TestClient(app, base_url=BASE).post("/api/login", json={"name": "mallory"}).status_code == 403
    assert TestClient(app, base_url=BASE).post("/api/login", json={"name": "bob"}).status_code == 200


def test_requests_need_a_session(app):
    c = TestClient(app, base_url=BASE)
    assert c.get("/api/state").status_code == 401
    assert c.get("/api/media/audio/s2").status_code == 401
    assert answer(c, "text:s1", "unimodal").status_code == 401
    c.cookies.set(COOKIE, "forged-token")
    assert c.get("/api/state").status_code == 401


def test_json_only(app):
    c = client(app, "alice")
    r = c.post("/api/answer", content=b"item=text:s1&round=unimodal&judgment=neutral", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415
    r = c.post("/api/answer", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    r = c.post("/api/answer", json=["item"])
    assert r.status_code == 400


# -- the passes -------------------------------------------------------------------------

def test_state_shows_definition_choices_and_progress(app):
    st = current(client(app, "alice"))
    assert st["definition"] == DEFAULT_DEFINITION and "imagining oneself" in st["definition"]
    assert st["choices"] == ["empathetic", "neutral"]
    assert st["total"] == 4 and st["done"] == 0 and st["item"]["position"] == 1 and st["item"]["round"] == "unimodal"


def test_definition_is_configurable(study, clip_dir):
    app = create_app(study, "pilot", clip_dir=str(clip_dir), definition="Our own definition.")
    assert current(client(app, "alice"))["definition"] == "Our own definition."


def test_pass1_shows_only_the_flagged_modality(app):
    c = client(app, "alice")
    text = find_state(c, "text")["item"]
    assert text["transcript"].startswith("I know how hard") and text["media"] == {}
    c2 = client(app, "bob")
    audio = find_state(c2, "audio")["item"]
    assert "transcript" not in audio and list(audio["media"]) == ["audio"]
    c3 = client(app, "cy")
    video = find_state(c3, "video")["item"]
    assert "transcript" not in video and list(video["media"]) == ["video"]
    # the full clip of that segment is not served before the pass-1 answer
    sid = video["item"].split(":", 1)[1]
    assert c3.get(f"/api/media/full/{sid}").status_code == 403
    assert c3.get(f"/api/media/audio/{sid}").status_code == 403
    assert c3.get(f"/api/media/video/{sid}").status_code == 200
    assert answer(c3, video["item"], "unimodal").status_code == 200
    st = current(c3)["item"]
    assert st["item"] == video["item"] and st["round"] == "multimodal"
    assert st["transcript"] and list(st["media"]) == ["full"] and st["has_video"] is True
    assert c3.get(f"/api/media/full/{sid}").status_code == 200


def test_answers_are_written_at_once_and_pass1_is_locked(app, study):
    c = client(app, "alice")
    it = current(c)["item"]["item"]
    assert answer(c, it, "multimodal").status_code == 409  # pass 2 before pass 1
    assert answer(c, it, "unimodal", "neutral").status_code == 200
    rows = read_answers(study, "pilot", "alice")
    assert rows.select("item", "round", "judgment", "source").rows() == [(it, "unimodal", "neutral", "app")]
    assert rows["elapsed_s"][0] == 1.5
    r = answer(c, it, "unimodal", "empathetic")
    assert r.status_code == 409 and "cannot be changed" in r.json()["error"]
    assert answer(c, it, "multimodal", "empathetic").status_code == 200
    assert answer(c, it, "multimodal", "neutral").status_code == 200  # pass 2 may be revised: one row still
    rows = read_answers(study, "pilot", "alice").sort("round")
    assert rows.select("round", "judgment", "shown").rows() == [
        ("multimodal", "neutral", "full"), ("unimodal", "neutral", it.split(":")[0])
    ]
    assert current(c)["done"] == 1


@pytest.mark.parametrize(
    "body,status",
    [
        ({"item": "text:nope", "round": "unimodal", "judgment": "neutral"}, 404),
        ({"item": "text:out1", "round": "unimodal", "judgment": "neutral"}, 404),
        ({"item": "text:s1", "round": "third", "judgment": "neutral"}, 400),
        ({"item": "text:s1", "round": "unimodal", "judgment": "maybe"}, 422),
        ({"item": ["text:s1"], "round": "unimodal", "judgment": "neutral"}, 404),
    ],
)
def test_bad_answers(app, study, body, status):
    c = client(app, "alice")
    assert c.post("/api/answer", json=body).status_code == status
    assert read_answers(study, "pilot").height == 0


def test_resume_in_a_new_session(app):
    c = client(app, "alice")
    first = current(c)["item"]["item"]
    assert answer(c, first, "unimodal").status_code == 200
    again = client(app, "alice")  # another browser, same name
    st = current(again)
    assert st["item"]["item"] == first and st["item"]["round"] == "multimodal"


def test_full_run_reaches_done(app):
    c = client(app, "alice")
    for _ in range(8):
        it = current(c)["item"]
        assert answer(c, it["item"], it["round"], "neutral").status_code == 200
    st = current(c)
    assert st["item"] is None and st["done"] == st["total"] == 4


# -- isolation ---------------------------------------------------------------------------

def test_one_annotator_cannot_read_or_write_anothers_answers(app, study):
    alice, bob = client(app, "alice"), client(app, "bob")
    a_item = current(alice)["item"]
    assert answer(alice, a_item["item"], "unimodal", "neutral").status_code == 200
    # bob's queue is his own: nothing of alice's shows, and her answer opens nothing for him
    st = current(bob)
    assert st["done"] == 0 and st["item"]["round"] == "unimodal"
    assert "neutral" not in str({k: v for k, v in st.items() if k != "choices"})
    sid = a_item["item"].split(":", 1)[1]
    assert bob.get(f"/api/media/full/{sid}").status_code == 403
    # naming another annotator in the body changes nothing: answers go to the session's name
    r = bob.post("/api/answer", json={"item": a_item["item"], "round": "unimodal", "judgment": "empathetic", "annotator": "alice"})
    assert r.status_code == 200
    rows = read_answers(study, "pilot").sort("annotator")
    assert rows.select("annotator", "judgment").rows() == [("alice", "neutral"), ("bob", "empathetic")]
    # no route takes an annotator: ?annotator= is ignored
    assert bob.get("/api/state?annotator=alice").json()["annotator"] == "bob"


def test_each_annotator_has_an_own_order_of_the_same_items(app):
    study = app.state.study
    orders = {n: study.order(n) for n in ("alice", "bob", "cy", "dan")}
    assert all(sorted(o) == sorted(study.items) for o in orders.values())
    assert len({tuple(o) for o in orders.values()}) > 1
    assert study.order("alice") == orders["alice"]  # stable: resume finds the same queue


# -- media: cutting and range requests --------------------------------------------------------

def test_audio_clip_is_the_segment_and_supports_ranges(app, study):
    from ambiguity.media import decode_audio

    c = client(app, "alice")
    # answer pass 1 of every item so every view is open to alice
    for _ in range(8):
        it = current(c)["item"]
        if it is None:
            break
        answer(c, it["item"], "unimodal" if it["round"] == "unimodal" else "multimodal")
    full = c.get("/api/media/audio/w1")
    assert full.status_code == 200 and full.headers["content-type"] == "audio/wav"
    assert full.headers["accept-ranges"] == "bytes"
    body = full.content
    with wave.open(io.BytesIO(body)) as w:
        rate, n = w.getframerate(), w.getnframes()
        got = np.frombuffer(w.readframes(n), dtype="<i2").astype(np.float32) / 32767
    assert rate == 16000 and n == round((1.8 - 0.2) * 16000)
    # the cut matches the source decoded directly with PyAV (file at its native 16 kHz mono)
    src, src_rate, first = decode_audio(str(study.segments(where="segment_id = 'w1'")["media"][0]))
    ref = src[int(0.2 * src_rate) - first : int(0.2 * src_rate) - first + n]
    assert np.max(np.abs(got - ref)) < 1e-3

    size = len(body)
    r = c.get("/api/media/audio/w1", headers={"Range": "bytes=0-99"})
    assert r.status_code == 206 and r.content == body[:100]
    assert r.headers["content-range"] == f"bytes 0-99/{size}"
    r = c.get("/api/media/audio/w1", headers={"Range": "bytes=-64"})
    assert r.status_code == 206 and r.content == body[-64:]
    r = c.get("/api/media/audio/w1", headers={"Range": f"bytes={size - 10}-"})
    assert r.status_code == 206 and r.content == body[-10:]
    r = c.get("/api/media/audio/w1", headers={"Range": f"bytes={size + 10}-{size + 20}"})
    assert r.status_code == 416


def test_video_clips_muted_and_full(app, clip_dir, tmp_path):
    c = client(app, "alice")
    for _ in range(8):
        it = current(c)["item"]
        if it is None:
            break
        answer(c, it["item"], it["round"])
    out = {}
    for kind in ("video", "full"):
        r = c.get(f"/api/media/{kind}/s3")
        assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
        p = tmp_path / f"{kind}.mp4"
        p.write_bytes(r.content)
        with av.open(str(p)) as f:
            out[kind] = (len(f.streams.video), len(f.streams.audio), f.duration / 1e6)
        r = c.get(f"/api/media/{kind}/s3", headers={"Range": "bytes=100-199"})
        assert r.status_code == 206 and r.content == p.read_bytes()[100:200]
    assert out["video"][:2] == (1, 0)  # pass 1 video: no sound track at all
    assert out["full"][:2] == (1, 1)
    for _, _, dur in out.values():
        assert abs(dur - 2.0) < 0.15
    # an audio-only segment's "full" clip is its WAV
    r = c.get("/api/media/full/w1")
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"


# -- security: only the task's segments ----------------------------------------------------------

TRAVERSALS = [
    "/api/media/audio/../../etc/passwd",
    "/api/media/audio/..%2F..%2F..%2Fetc%2Fpasswd",
    "/api/media/audio/%2e%2e/%2e%2e/etc/passwd",
    "/api/media/full//etc/passwd",
    "/api/media/full/%2Fetc%2Fpasswd",
    "/api/media/audio/out1",  # a segment of the store, but not of the task
    "/api/media/full/out1",
    "/api/media/passwd/s1",
    "/api/media/audio/s2/../../out1",
    "/static/../../etc/passwd",
    "/static/..%2F..%2Fapp.py",
    "/static/index.html",
    "/static/app.py",
    "/etc/passwd",
]


def test_traversal_and_out_of_task_requests_get_404(app):
    c = client(app, "alice")
    for _ in range(8):  # open every view of every item first: the 404s must not depend on that
        it = current(c)["item"]
        if it is None:
            break
        answer(c, it["item"], it["round"])
    for path in TRAVERSALS:
        r = c.get(path)
        assert r.status_code == 404, (path, r.status_code)
        assert b"root:" not in r.content
    # the handler itself, given an id that is a path, looks it up and finds nothing
    assert "../../etc/passwd" not in app.state.study.segments


def test_foreign_host_header_is_refused(app):
    c = TestClient(app, base_url="http://evil.example")
    assert c.get("/").status_code == 400
    assert c.post("/api/login", json={"name": "alice"}).status_code == 400


def test_security_headers_and_static_files(app):
    c = TestClient(app, base_url=BASE)
    r = c.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert c.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    assert c.get("/static/app.css").status_code == 200
    js = c.get("/static/app.js").text
    assert "innerHTML" not in js  # text goes in as textContent only


def test_missing_segments_and_bad_choices_are_reported(store, clip_dir, helpers):
    from ambiguity.annotate.records import AnnotationError
    from ambiguity.errors import MissingGroupError

    helpers.make_task(store, flags={"text": ["s1"]})
    with pytest.raises(MissingGroupError, match="no segments"):
        create_app(store, "pilot", clip_dir=str(clip_dir))
    helpers.add_segments(store, [r for r in helpers.segments if r[0] != "s1"])
    with pytest.raises(AnnotationError, match="not in the store's segments: s1"):
        create_app(store, "pilot", clip_dir=str(clip_dir))
    helpers.add_segments(store)
    with pytest.raises(AnnotationError, match="2 to 9 labels"):
        create_app(store, "pilot", clip_dir=str(clip_dir), choices=["only"])
    with pytest.raises(MissingGroupError, match="no annotation task 'nope'"):
        create_app(store, "nope", clip_dir=str(clip_dir))
