"""The annotation web app: pass 1 shows only the flagged modality, pass 2 the full clip.

A Starlette app with a JSON API and one static page (plain HTML/JS, no build
step). Annotators log in by name and each gets their own seeded order of the
task's items; every answer is upserted into the store's ``annotations`` table
when it is given, so closing the browser loses nothing and reopening resumes at
the first unanswered pass.

Security: the server answers only for hosts it was bound to (no DNS rebinding);
media is served only for segments of the task and looked up by id, never by a
path taken from the request; a session sees only its own annotator's answers;
a pass-1 answer cannot be changed once given (the annotator has seen the full
clip since), and the full clip is not served before it.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ambiguity.annotate.records import (
    ROUNDS,
    AnnotationError,
    Answer,
    check_annotator,
    read_answers,
    write_answers,
)
from ambiguity.annotate.tasks import AnnotationTask, load_task
from ambiguity.media import MediaError
from ambiguity.stores.tables import ANNOTATIONS
from ambiguity.web.clips import ClipCache, Source, has_video
from ambiguity.web.http import clip_response, guarded, html_page, json_error, no_store, read_json, static_file

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore

COOKIE = "ambiguity_session"
#: Appendix C of the paper: the excerpt on empathy annotators were shown
#: (Encyclopedia of Social Psychology, Vol. 1, Baumeister and Vohs, 2007).
DEFAULT_DEFINITION = (
    "Empathy is often defined as understanding another person's experience by imagining oneself in that "
    "other person's situation: One understands the other person's experience as if it were being experienced "
    "by the self, but without the self actually experiencing it. There are three commonly studied components "
    "of emotional empathy. The first is feeling the same emotion as another person (sometimes attributed to "
    "emotional contagion, e.g., unconsciously \"catching\" someone else's tears and feeling sad oneself). The "
    "second component, personal distress, refers to one's own feelings of distress in response to perceiving "
    "another's plight. The third emotional component, feeling compassion for another person, is the one most "
    "frequently associated with the study of empathy. Cognitive empathy refers to the extent to which we "
    "perceive or have evidence that we have successfully guessed someone else's thoughts and feelings.\n\n"
    "(Encyclopedia of Social Psychology, Volume 1, Baumeister and Vohs, 2007)"
)
INSTRUCTIONS = (
    "Each example is judged twice. Pass 1 shows only the flagged modality (the transcript, the audio, or "
    "the video without sound): judge from that alone. Pass 2 shows the full clip (video, sound and "
    "transcript): judge again. Your pass-1 answer cannot be changed after you submit it."
)
#: What pass 1 may show for each modality flag.
PASS1_KIND = {"text": None, "audio": "audio", "video": "video"}
STATIC = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}


@dataclass
class Study:
    store: FeatureStore
    task: AnnotationTask
    definition: str
    instructions: str
    choices: tuple[str, ...]
    annotators: frozenset[str] | None
    clips: ClipCache
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    segments: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)
    # items whose pass 1 each annotator answered: saves a store read per media (range) request
    opened: dict[str, set[str]] = field(default_factory=dict)
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    writes: int = 0

    def order(self, annotator: str) -> list[str]:
        """The annotator's own queue: the task's items in an order seeded by task and name."""
        digest = hashlib.sha256(f"{self.task.name}|{annotator}".encode()).digest()
        rng = np.random.default_rng([self.task.seed, int.from_bytes(digest[:8], "little")])
        ids = list(self.items)
        return [ids[i] for i in rng.permutation(len(ids))]

    def answers(self, annotator: str) -> dict[tuple[str, str], str]:
        """The annotator's answers, read from the store (the source of truth)."""
        df = read_answers(self.store, self.task.name, annotator)
        got = {(r["item"], r["round"]): r["judgment"] for r in df.select("item", "round", "judgment").iter_rows(named=True)}
        self.opened[annotator] = {i for (i, r) in got if r == "unimodal"}
        return got

    def views(self, annotator: str, segment_id: str, fresh: bool) -> set[str]:
        """Clip kinds of a segment this annotator may see now: the flagged one before the
        pass-1 answer, everything after it. ``fresh`` re-reads the store."""
        opened = self.answered_items(annotator) if fresh else self.opened.get(annotator, set())
        allowed: set[str] = set()
        for item_id, it in self.items.items():
            if it["segment_id"] != segment_id:
                continue
            if item_id in opened:
                allowed |= {"audio", "video", "full"}
            elif kind := PASS1_KIND[it["modality"]]:
                allowed.add(kind)
        return allowed

    def answered_items(self, annotator: str) -> set[str]:
        self.answers(annotator)
        return self.opened[annotator]

    def source(self, segment_id: str) -> Source:
        s = self.segments[segment_id]
        return Source(segment_id, s.get("media"), s.get("audio"), s.get("start_s"), s.get("end_s"))


def _load_segments(store: FeatureStore, ids: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        df = store.segments(["segment_id", "media", "audio", "start_s", "end_s", "transcript"], segment_id=chunk)
        out.update({r["segment_id"]: r for r in df.iter_rows(named=True)})
    missing = sorted(set(ids) - set(out))
    if missing:
        raise AnnotationError(f"{len(missing)} segment(s) of the task are not in the store's segments: {', '.join(missing[:5])}")
    return out


def create_app(
    store: FeatureStore,
    task: str,
    *,
    definition: str | None = None,
    instructions: str | None = None,
    choices: tuple[str, ...] | list[str] | None = None,
    annotators: list[str] | tuple[str, ...] | None = None,
    clip_dir: str | None = None,
    allowed_hosts: list[str] | tuple[str, ...] | None = None,
) -> Starlette:
    """The app for one task. ``annotators`` limits who may log in (default: any valid name);
    ``allowed_hosts`` are the Host headers answered (default: 127.0.0.1 and localhost)."""
    t = load_task(store, task)
    chosen = tuple(str(c) for c in (choices or t.choices))
    if len(chosen) < 2 or len(chosen) > 9:
        raise AnnotationError(f"annotators need 2 to 9 labels to choose from (keys 1-9), got {list(chosen)}")
    allow = frozenset(check_annotator(a) for a in annotators) if annotators else None
    study = Study(
        store=store, task=t, definition=definition or DEFAULT_DEFINITION, instructions=instructions or INSTRUCTIONS,
        choices=chosen, annotators=allow, clips=ClipCache(clip_dir),
    )
    study.items = {r["item"]: r for r in t.items.sort("position").iter_rows(named=True)}
    study.segments = _load_segments(store, sorted({r["segment_id"] for r in study.items.values()}))

    def who(request: Request) -> str | None:
        return study.sessions.get(request.cookies.get(COOKIE, ""))

    def state(annotator: str) -> dict[str, Any]:
        answers = study.answers(annotator)
        queue = study.order(annotator)
        done = sum(1 for i in queue if (i, "unimodal") in answers and (i, "multimodal") in answers)
        out: dict[str, Any] = {
            "annotator": annotator, "task": t.name, "choices": list(study.choices), "definition": study.definition,
            "instructions": study.instructions, "total": len(queue), "done": done, "item": None,
        }
        for pos, item_id in enumerate(queue):
            rnd = next((r for r in ROUNDS if (item_id, r) not in answers), None)
            if rnd is None:
                continue
            it = study.items[item_id]
            seg = study.segments[it["segment_id"]]
            sid = it["segment_id"]
            view: dict[str, Any] = {"item": item_id, "position": pos + 1, "round": rnd, "flag": it["modality"], "media": {}}
            if rnd == "unimodal":
                if it["modality"] == "text":
                    view["transcript"] = seg.get("transcript") or ""
                else:
                    kind = PASS1_KIND[it["modality"]]
                    view["media"][kind] = f"/api/media/{kind}/{sid}"
            else:
                view["transcript"] = seg.get("transcript") or ""
                view["media"]["full"] = f"/api/media/full/{sid}"
                try:
                    view["has_video"] = has_video(study.source(sid))
                except MediaError:
                    view["has_video"] = False
            out["item"] = view
            break
        return out

    async def index(request: Request) -> Response:
        return html_page("ambiguity.annotate", "index.html")

    async def static(request: Request) -> Response:
        return static_file("ambiguity.annotate", STATIC, request.path_params["name"])

    async def login(request: Request) -> Response:
        body = await read_json(request)
        if isinstance(body, JSONResponse):
            return body
        try:
            name = check_annotator(body.get("name"))
        except AnnotationError as exc:
            return json_error(400, str(exc))
        if study.annotators is not None and name not in study.annotators:
            return json_error(403, f"{name!r} is not an annotator of this study")
        token = secrets.token_urlsafe(32)
        study.sessions[token] = name
        resp = no_store({"annotator": name})
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
        return resp

    async def logout(request: Request) -> Response:
        study.sessions.pop(request.cookies.get(COOKIE, ""), None)
        resp = no_store({"ok": True})
        resp.delete_cookie(COOKIE, path="/")
        return resp

    def get_state(request: Request) -> Response:
        annotator = who(request)
        if annotator is None:
            return json_error(401, "log in first")
        return no_store(state(annotator))

    async def answer(request: Request) -> Response:
        annotator = who(request)
        if annotator is None:
            return json_error(401, "log in first")
        body = await read_json(request)
        if isinstance(body, JSONResponse):
            return body
        item_id, rnd, judgment = body.get("item"), body.get("round"), body.get("judgment")
        if not isinstance(item_id, str) or item_id not in study.items:
            return json_error(404, "no such item in this task")
        if rnd not in ROUNDS:
            return json_error(400, f"round must be one of {', '.join(ROUNDS)}")
        if judgment not in study.choices:
            return json_error(422, f"judgment must be one of {', '.join(study.choices)}")
        elapsed = body.get("elapsed_s")
        if not isinstance(elapsed, (int, float)) or isinstance(elapsed, bool) or not math.isfinite(elapsed) or elapsed < 0:
            elapsed = None
        return await run_in_threadpool(_save, annotator, item_id, rnd, judgment, elapsed)

    def _save(annotator: str, item_id: str, rnd: str, judgment: str, elapsed: float | None) -> Response:
        it = study.items[item_id]
        with study.write_lock:
            answers = study.answers(annotator)
            if rnd == "unimodal" and (item_id, "unimodal") in answers:
                return json_error(409, "the pass-1 answer of this item was given already and cannot be changed")
            if rnd == "multimodal" and (item_id, "unimodal") not in answers:
                return json_error(409, "answer pass 1 (the flagged modality alone) first")
            shown = it["modality"] if rnd == "unimodal" else "full"
            write_answers(study.store, [Answer(t.name, annotator, item_id, it["segment_id"], rnd, judgment, shown=shown, elapsed_s=elapsed)])
            study.opened.setdefault(annotator, set())
            if rnd == "unimodal":
                study.opened[annotator].add(item_id)
            study.writes += 1
            if study.writes % 100 == 0:  # one commit per answer: merge the fragments now and then
                study.store.compact([ANNOTATIONS])
        return no_store(state(annotator))

    def media(request: Request) -> Response:
        annotator = who(request)
        if annotator is None:
            return json_error(401, "log in first")
        kind, sid = request.path_params["kind"], request.path_params["segment_id"]
        if kind not in ("audio", "video", "full") or sid not in study.segments:
            return json_error(404, "not found")
        if kind not in study.views(annotator, sid, fresh=False) and kind not in study.views(annotator, sid, fresh=True):
            return json_error(403, "this view of the segment opens after its pass-1 answer")
        return clip_response(study.clips, study.source(sid), kind)

    routes = [
        Route("/", index),
        Route("/static/{name}", static),
        Route("/api/login", login, methods=["POST"]),
        Route("/api/logout", logout, methods=["POST"]),
        Route("/api/state", get_state),
        Route("/api/answer", answer, methods=["POST"]),
        Route("/api/media/{kind}/{segment_id:path}", media),
    ]
    app = Starlette(routes=routes, middleware=guarded(allowed_hosts))
    app.state.study = study
    return app
