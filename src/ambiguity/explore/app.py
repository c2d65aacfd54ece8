"""The explorer web app: Figure 2 as an interactive scatter, a table, segment pages, actions.

Same server stack and rules as the annotation app (:mod:`ambiguity.annotate.app`):
Starlette, plain HTML/JS pages (no build step, nothing from a CDN), the same
security headers and Content-Security-Policy, only the Host headers it was bound
to, media looked up by segment id (never by a path from the request) and cut
with PyAV into the same clip cache, served as files with HTTP range requests.
"""

from __future__ import annotations

import gzip
import io
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ambiguity.constants import MODALITIES
from ambiguity.errors import AmbiguityError, StatsError
from ambiguity.explore import points as P
from ambiguity.stores.tables import SEGMENTS
from ambiguity.web.clips import KINDS, ClipCache, Source
from ambiguity.web.http import clip_response, guarded, hosts_for, html_page, json_error, read_json, static_file

if TYPE_CHECKING:
    from ambiguity.explore.data import ExploreData

STATIC = {
    "explore.js": "text/javascript; charset=utf-8", "segment.js": "text/javascript; charset=utf-8",
    "common.js": "text/javascript; charset=utf-8", "explore.css": "text/css; charset=utf-8",
}
MAX_SELECTION = 100_000


def _selection(data: ExploreData, body: dict[str, Any]) -> list[str] | JSONResponse:
    """The segments an action applies to: ``ids``, or ``query`` (the page's filters and box as a query
    string, resolved here, so the page never holds every shown id)."""
    if isinstance(body.get("query"), str) and "ids" not in body:
        from urllib.parse import parse_qsl

        pts = data.points
        try:
            q = pts.parse(dict(parse_qsl(body["query"])))
        except StatsError as exc:
            return json_error(400, str(exc))
        rows = pts.rows(q)
        if rows.size == 0:
            return json_error(400, "no segment matches the filters")
        if rows.size > MAX_SELECTION:
            return json_error(413, f"at most {MAX_SELECTION} segments at a time ({rows.size} match the filters)")
        return pts.ids(rows)
    ids = body.get("ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        return json_error(400, "ids must be a non-empty list of segment ids")
    if len(ids) > MAX_SELECTION:
        return json_error(413, f"at most {MAX_SELECTION} segments at a time")
    unknown = [i for i in ids if not data.has(i)]
    if unknown:
        return json_error(404, f"{len(unknown)} segment(s) are not in the store, e.g. {unknown[0][:80]!r}")
    return list(dict.fromkeys(ids))


def selection_task(data: ExploreData, ids: list[str], name: str, modality: str, model: str | None):
    """An annotation task of the selected segments, in the format ``ambiguity sample`` saves."""
    from datetime import UTC, datetime

    from ambiguity.annotate.tasks import AnnotationTask, check_task_name

    check_task_name(name)
    if modality not in MODALITIES:
        raise AmbiguityError(f"modality must be one of {', '.join(MODALITIES)}")
    model = model if model in data.quadrants else (data.unimodal[0] if data.unimodal else None)
    if model is None:
        raise AmbiguityError("the selection has no quadrants: the store has no predictions (run `ambiguity train`)")
    q = data.quadrant_rows(model, ids)
    sel = pl.DataFrame({"segment_id": ids}).join(q, on="segment_id", how="left")
    lost = sel.filter(pl.col("quadrant").is_null())["segment_id"].to_list()
    if lost:
        why = " or in sample: the fixed scheme shows the test split only" if data.scheme == "fixed" else ""
        raise AmbiguityError(f"{len(lost)} selected segment(s) have no quadrant for {model} (not predicted{why}), e.g. {lost[0]}")
    items = sel.select(
        (pl.lit(modality + ":") + pl.col("segment_id")).alias("item"), "segment_id", pl.lit(modality).alias("modality"),
        "quadrant", pl.int_range(0, sel.height, dtype=pl.Int64).alias("position"), "p_unimodal", "p_fusion", "label", "split",
        pl.lit(model).alias("unimodal_model"), pl.lit(data.fusion, pl.String).alias("fusion_model"),
    )
    choices = tuple(data.summary["label"])
    return AnnotationTask(name=name, items=items, seed=0, per_quadrant=0, choices=choices,
                          created_at=datetime.now(UTC).isoformat(timespec="seconds"))


def add_to_task(data: ExploreData, ids: list[str], name: str, modality: str, model: str | None) -> dict[str, Any]:
    """Add the selection to task ``name`` (created if new; items already in it are kept as they are)."""
    from ambiguity.annotate.tasks import AnnotationTask, load_task, save_task, task_names

    new = selection_task(data, ids, name, modality, model)
    if name in task_names(data.store):
        old = load_task(data.store, name)
        fresh = new.items.filter(~pl.col("item").is_in(old.items["item"].to_list()))
        fresh = fresh.with_columns((pl.col("position") + old.items.height).alias("position"))
        items = pl.concat([old.items, fresh], how="vertical_relaxed")
        task = AnnotationTask(name=name, items=items, seed=old.seed, per_quadrant=old.per_quadrant, choices=old.choices or new.choices, created_at=old.created_at)
        save_task(data.store, task, replace=True)
        return {"task": name, "added": fresh.height, "items": items.height}
    save_task(data.store, new)
    return {"task": name, "added": new.items.height, "items": new.items.height}


def export(data: ExploreData, ids: list[str], fmt: str, modality: str, model: str | None) -> tuple[bytes, str, str]:
    """The selection as CSV or Label Studio JSON: (bytes, media type, file name)."""
    task = selection_task(data, ids, "selection", modality, model)
    segs = SEGMENTS.read(data.store, ["segment_id", "media", "audio", "start_s", "end_s", "transcript"], segment_id=ids)
    with tempfile.TemporaryDirectory(prefix="ambiguity-export-") as tmp:
        if fmt == "csv":
            sc = data.frame_rows("scores", ids).select("segment_id", "score")
            buf = io.BytesIO()
            task.with_segments(segs).join(sc, on="segment_id", how="left").sort("position").write_csv(buf)
            return buf.getvalue(), "text/csv; charset=utf-8", "selection.csv"
        out = Path(tmp) / "selection.json"
        task.to_label_studio(out, segs)
        return out.read_bytes(), "application/json", "selection-label-studio.json"


def create_app(data: ExploreData, *, clip_dir: str | None = None, allowed_hosts: list[str] | tuple[str, ...] | None = None) -> Starlette:
    """The explorer app over one loaded store (see :func:`ambiguity.explore.data.load`)."""
    clips = ClipCache(clip_dir)

    async def index(request: Request) -> Response:
        return html_page("ambiguity.explore", "index.html")

    async def segment_page(request: Request) -> Response:
        if not data.has(request.path_params["segment_id"]):
            return Response("no such segment in this store", status_code=404, media_type="text/plain; charset=utf-8")
        return html_page("ambiguity.explore", "segment.html")

    async def static(request: Request) -> Response:
        return static_file("ambiguity.explore", STATIC, request.path_params["name"])

    def summary(request: Request) -> Response:
        # the page's first request: codes, models, weights and exact counts, no rows (a few kB: compressed
        # here, below the middleware's threshold, for clients that ask)
        headers = {"Cache-Control": "no-store", "Vary": "Accept-Encoding"}
        body = data.payload()
        if "gzip" in request.headers.get("accept-encoding", ""):
            body = gzip.compress(body, mtime=0)
            headers["Content-Encoding"] = "gzip"
        return Response(body, media_type="application/json", headers=headers)

    def query(request: Request):
        params = dict(request.query_params)
        q = data.points.parse(params)
        return params, q, data.points.rows(q)

    def ints(params: dict[str, str], **defaults: int) -> list[int]:
        """The named integer parameters (a default where absent); one ValueError naming them all if one is not."""
        try:
            return [int(params.get(k) or d) for k, d in defaults.items()]
        except ValueError:
            raise ValueError(f"{' and '.join(defaults)} must be integers") from None

    def table(request: Request) -> Response:
        """One page of the filtered, sorted rows, the exact number that match and their quadrant counts."""
        try:
            params, q, rows = query(request)
            offset, limit = ints(params, offset=0, limit=50)
        except (StatsError, ValueError) as exc:
            return json_error(400, str(exc))
        if offset < 0 or not 0 <= limit <= P.MAX_LIMIT:
            return json_error(400, f"offset must be >= 0 and limit between 0 and {P.MAX_LIMIT}")
        pts, metacol = data.points, params.get("metacol", "")
        sort = params.get("sort") or "score"
        desc = params.get("desc", "1") != "0"
        page = pts.order(q, rows, sort, desc, metacol)[offset: offset + limit] if limit else rows[:0]
        return JSONResponse({"total": int(rows.size), "counts": pts.counts(q, rows), "offset": offset, "limit": limit,
                             "columns": pts.columns(q, metacol), "rows": pts.records(q, page, metacol)},
                            headers={"Cache-Control": "no-store"})

    def scatter(request: Request) -> Response:
        """The shown points (at most DENSE_ABOVE) as JSON, or else a w x h density grid as bytes."""
        try:
            params, q, rows = query(request)
            w, h = ints(params, w=600, h=500)
        except (StatsError, ValueError) as exc:
            return json_error(400, str(exc))
        if not (1 <= w <= P.MAX_GRID and 1 <= h <= P.MAX_GRID):
            return json_error(400, f"w and h must be between 1 and {P.MAX_GRID}")
        pts = data.points
        drawn = pts.drawn(q, rows)
        if drawn.size <= P.DENSE_ABOVE:  # read at call time: tests lower it
            return JSONResponse(pts.points(q, drawn), headers={"Cache-Control": "no-store"})
        body, n = pts.density(q, drawn, w, h)
        return Response(body, media_type="application/octet-stream", headers={
            "Cache-Control": "no-store", "X-Grid": f"{w},{h}", "X-Drawn": str(n)})

    def nearest(request: Request) -> Response:
        """The drawn point nearest (x, y) within radii (rx, ry), in p(correct) units, with its brief."""
        try:
            params, q, rows = query(request)
            x, y, rx, ry = (float(params.get(k, "")) for k in ("x", "y", "rx", "ry"))
        except (StatsError, ValueError) as exc:
            return json_error(400, str(exc) if isinstance(exc, StatsError) else "x, y, rx and ry must be numbers")
        pts = data.points
        i = pts.nearest(q, rows, x, y, rx, ry)
        if i is None:
            return JSONResponse({"segment_id": None})
        rec = pts.records(q, np.array([i]))[0]
        r = data.row(rec["segment_id"])
        return JSONResponse({**rec, "transcript": (r.get("transcript") or "")[:300]}, headers={"Cache-Control": "no-store"})

    def brief(request: Request) -> Response:
        sid = request.path_params["segment_id"]
        if not data.has(sid):
            return json_error(404, "no such segment in this store")
        r = data.row(sid)
        sc = data.frame_rows("scores", sid)
        score = sc["score"][0] if sc.height else None
        return JSONResponse({"segment_id": sid, "transcript": (r.get("transcript") or "")[:300], "label": r.get("label"),
                             "score": score if score is None or math.isfinite(score) else None})

    def detail(request: Request) -> Response:
        sid = request.path_params["segment_id"]
        if not data.has(sid):
            return json_error(404, "no such segment in this store")
        emb = request.query_params.get("embedding")
        if emb is not None and emb not in data.embedding_groups:
            return json_error(404, f"no embedding group {emb[:80]!r} in this store")
        return JSONResponse(data.detail(sid, emb), headers={"Cache-Control": "no-store"})

    def words_route(request: Request) -> Response:
        from ambiguity.stores.words import segment_words

        sid = request.path_params["segment_id"]
        if not data.has(sid):
            return json_error(404, "no such segment in this store")
        return JSONResponse(segment_words(data.store, sid), headers={"Cache-Control": "no-store"})

    def media(request: Request) -> Response:
        kind, sid = request.path_params["kind"], request.path_params["segment_id"]
        if kind not in KINDS or not data.has(sid):
            return json_error(404, "not found")
        r = data.row(sid)
        return clip_response(clips, Source(sid, r.get("media"), r.get("audio"), r.get("start_s"), r.get("end_s")), kind)

    async def on_selection(request: Request, action: Callable[[dict[str, Any], list[str]], Response]) -> Response:
        """``action(body, ids)`` in a thread for a JSON body with a valid selection ``ids``; a refused
        body or selection is answered as such, an AmbiguityError of the action with 422."""
        body = await read_json(request)
        if isinstance(body, JSONResponse):
            return body
        ids = _selection(data, body)
        if isinstance(ids, JSONResponse):
            return ids
        try:
            return await run_in_threadpool(action, body, ids)
        except AmbiguityError as exc:
            return json_error(422, str(exc))

    def add(body: dict[str, Any], ids: list[str]) -> Response:
        return JSONResponse(add_to_task(data, ids, str(body.get("task") or ""), str(body.get("modality") or "text"), body.get("model")))

    def download(body: dict[str, Any], ids: list[str]) -> Response:
        fmt = body.get("format")
        if fmt not in ("csv", "label-studio"):
            return json_error(400, "format must be csv or label-studio")
        content, mtype, fname = export(data, ids, fmt, str(body.get("modality") or "text"), body.get("model"))
        return Response(content, media_type=mtype, headers={"Content-Disposition": f'attachment; filename="{fname}"', "Cache-Control": "no-store"})

    async def task(request: Request) -> Response:
        return await on_selection(request, add)

    async def export_route(request: Request) -> Response:
        return await on_selection(request, download)

    routes = [
        Route("/", index),
        Route("/segment/{segment_id:path}", segment_page),
        Route("/static/{name}", static),
        Route("/api/points", summary),
        Route("/api/table", table),
        Route("/api/scatter", scatter),
        Route("/api/nearest", nearest),
        Route("/api/brief/{segment_id:path}", brief),
        Route("/api/segment/{segment_id:path}", detail),
        Route("/api/words/{segment_id:path}", words_route),
        Route("/api/media/{kind}/{segment_id:path}", media),
        Route("/api/task", task, methods=["POST"]),
        Route("/api/export", export_route, methods=["POST"]),
    ]
    # gzip level 4: the default 9 took 1.2 s CPU for the 100k points of a scatter, 4 takes 0.04 s for 10% more bytes
    app = Starlette(routes=routes, middleware=guarded(allowed_hosts, Middleware(GZipMiddleware, minimum_size=4096, compresslevel=4)))
    app.state.data = data
    return app


def serve(data: ExploreData, *, host: str = "127.0.0.1", port: int = 8766, clip_dir: str | None = None) -> None:
    """Serve the explorer until interrupted; a port in use is one readable error."""
    import errno
    import socket

    import uvicorn

    hosts = hosts_for(host)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise AmbiguityError(f"{host}:{port} is already in use: pass port N (another one)", param="port") from None
        raise AmbiguityError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    app = create_app(data, clip_dir=clip_dir, allowed_hosts=hosts)
    # the socket is bound here, so a port in use fails above as one line, not in uvicorn's log
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
