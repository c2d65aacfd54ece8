"""The web parts both apps share, on a bare Starlette app: the headers every response carries, the Host check,
JSON bodies and errors, static assets, and a clip whose media is missing."""

from __future__ import annotations

import pytest

pytest.importorskip("starlette")

from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.routing import Route  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from ambiguity.web.clips import ClipCache, Source  # noqa: E402
from ambiguity.web.http import (  # noqa: E402
    CSP,
    clip_response,
    guarded,
    hosts_for,
    is_loopback,
    json_error,
    no_store,
    read_json,
    static_file,
)


def _app(tmp_path, allowed_hosts=None) -> TestClient:
    async def echo(request: Request):
        body = await read_json(request)
        return body if not isinstance(body, dict) else no_store(body)

    def asset(request: Request):
        return static_file("ambiguity.explore", {"explore.js": "text/javascript"}, request.path_params["name"])

    def clip(request: Request):
        return clip_response(ClipCache(str(tmp_path / "clips")), Source("s1", str(tmp_path / "gone.mp4")), "full")

    def teapot(request: Request):
        return json_error(418, "short and stout")

    routes = [Route("/echo", echo, methods=["POST"]), Route("/static/{name}", asset), Route("/clip", clip), Route("/tea", teapot)]
    return TestClient(Starlette(routes=routes, middleware=guarded(allowed_hosts)), base_url="http://127.0.0.1")


def test_loopback_hosts():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2") and not is_loopback("example.org")
    assert hosts_for("127.0.0.1") == ["127.0.0.1", "localhost"] and hosts_for("0.0.0.0") == ["*"]


def test_every_response_carries_the_security_headers_and_foreign_hosts_are_refused(tmp_path):
    c = _app(tmp_path)
    r = c.get("/tea")
    assert r.status_code == 418 and r.json() == {"error": "short and stout"}
    assert r.headers["content-security-policy"] == CSP and "script-src 'self'" in CSP
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer" and r.headers["cache-control"] == "no-store"
    # DNS rebinding: a page on another name that resolves here is not answered
    assert c.get("/tea", headers={"host": "evil.example"}).status_code == 400
    assert _app(tmp_path, ["evil.example"]).get("/tea", headers={"host": "evil.example"}).status_code == 418


def test_json_bodies_only_as_json_objects(tmp_path):
    c = _app(tmp_path)
    assert c.post("/echo", json={"a": 1}).json() == {"a": 1}
    assert c.post("/echo", content=b"a=1", headers={"content-type": "application/x-www-form-urlencoded"}).status_code == 415
    assert c.post("/echo", content=b"{nope", headers={"content-type": "application/json"}).status_code == 400
    assert c.post("/echo", json=[1, 2]).json() == {"error": "the request body must be a JSON object"}


def test_static_assets_only_when_listed_and_missing_media_is_a_404(tmp_path):
    c = _app(tmp_path)
    r = c.get("/static/explore.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript") and len(r.text) > 100
    assert c.get("/static/explore.py").status_code == 404
    r = c.get("/clip")
    assert r.status_code == 404 and r.json()["error"].startswith("media unavailable")
