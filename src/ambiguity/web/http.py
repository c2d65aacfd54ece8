"""The HTTP parts both web apps share: security headers on every response, the Host check, JSON bodies and
errors, static pages and assets of a package, and a segment's clip as a file response.

Security: an app answers only for the hosts it was bound to (no DNS rebinding); a strict content security
policy (no inline script, nothing from another origin); a JSON body only with ``Content-Type:
application/json``, which a cross-site form cannot send without a CORS preflight.
"""

from __future__ import annotations

import ipaddress
from importlib import resources
from typing import Any

from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from ambiguity.media import MediaError
from ambiguity.web.clips import ClipCache, Source

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; media-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
#: The Host headers answered by default (an app bound to a loopback address).
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def hosts_for(host: str) -> list[str]:
    """The Host headers to answer when bound to ``host``: the loopback names, or any on a public address
    (the app is then reachable from the network: put it behind a proxy with authentication)."""
    return list(LOOPBACK_HOSTS) if is_loopback(host) else ["*"]


class SecurityHeaders:
    """Pure ASGI middleware: headers every response carries."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def guarded(allowed_hosts: list[str] | tuple[str, ...] | None, *extra: Middleware) -> list[Middleware]:
    """The middleware every app starts with: security headers, then the Host check (default: loopback names)."""
    hosts = list(allowed_hosts) if allowed_hosts else list(LOOPBACK_HOSTS)
    return [Middleware(SecurityHeaders), Middleware(TrustedHostMiddleware, allowed_hosts=hosts), *extra]


def json_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers={"Cache-Control": "no-store"})


def no_store(data: Any) -> JSONResponse:
    """A JSON answer that no cache keeps (it may hold an annotator's answers or the store's rows)."""
    return JSONResponse(data, headers={"Cache-Control": "no-store"})


def html_page(package: str, name: str) -> Response:
    """A page from ``package``'s static folder, never cached (it names the current assets)."""
    html = resources.files(package).joinpath(f"static/{name}").read_text(encoding="utf-8")
    return Response(html, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-store"})


def static_file(package: str, types: dict[str, str], name: str) -> Response:
    """An asset from ``package``'s static folder if ``types`` (name -> media type) lists it; else 404."""
    if name not in types:
        return json_error(404, "not found")
    text = resources.files(package).joinpath(f"static/{name}").read_text(encoding="utf-8")
    return Response(text, media_type=types[name], headers={"Cache-Control": "no-cache"})


async def read_json(request: Request) -> dict[str, Any] | JSONResponse:
    """The request's JSON object, or the error response to send instead."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return json_error(415, "send JSON (Content-Type: application/json)")
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return json_error(400, "the request body is not valid JSON")
    if not isinstance(body, dict):
        return json_error(400, "the request body must be a JSON object")
    return body


def clip_response(clips: ClipCache, source: Source, kind: str) -> Response:
    """The segment's clip of ``kind`` (cut once, then served from the cache with range requests), or a 404
    that says why the media is unavailable."""
    try:
        path, mtype = clips.get(source, kind)
    except (MediaError, OSError) as exc:
        return json_error(404, f"media unavailable: {exc}")
    return FileResponse(path, media_type=mtype, headers={"Cache-Control": "private, max-age=3600"})
