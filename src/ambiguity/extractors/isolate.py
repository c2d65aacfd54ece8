"""Isolate and retry: a batch that raises is rerun one item at a time, so only the bad item fails.

One loop (:func:`isolated`) serves the three calls the runner makes into an
extractor: ``process`` (CPU extractors), ``prepare`` and ``forward`` (model extractors).
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from ambiguity.extractors.base import Empty, Extractor, Failure, Result
from ambiguity.inputs import SegmentInput


def reason() -> str:
    """The exception being handled, in one line a user can act on."""
    from ambiguity.errors import AmbiguityError

    exc = sys.exc_info()[1]
    if isinstance(exc, AmbiguityError):
        return str(exc).splitlines()[0]
    assert exc is not None  # called only while an exception is being handled
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" (at {os.path.basename(tb[-1].filename)}:{tb[-1].lineno})" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _outcome() -> Failure | Empty:
    """The exception being handled as a segment's result: a missing track is Empty, the rest Failure."""
    from ambiguity.media import MissingTrack

    if isinstance(sys.exc_info()[1], MissingTrack):
        return Empty(reason())
    return Failure(reason())


def isolated(call: Callable[[Sequence[Any]], Sequence[Any]], items: Sequence[Any], what: str,
             check: Callable[[Any], Any] | None = None) -> list[Any]:
    """``call(items)``; if it raises or miscounts, ``call([item])`` for each, a raise there a
    Failure (an Empty when the segment has no such track: :class:`ambiguity.media.MissingTrack`)."""
    check = check or (lambda r: r)
    try:
        out = call(items)
        if len(out) != len(items):
            raise RuntimeError(f"{what} returned {len(out)} results for {len(items)} segments")
        return [check(r) for r in out]
    except Exception:
        if len(items) == 1:
            return [_outcome()]
    res: list[Any] = []
    for it in items:
        try:
            got = call([it])
            res.append(check(got[0]) if len(got) == 1 else Failure(f"{what} returned {len(got)} results for 1 segment"))
        except Exception:
            res.append(_outcome())
    return res


def checker(ex: Extractor) -> Callable[[Any], Result]:
    """A result as the store takes it: a dict of declared columns, a Failure or an Empty."""
    names = {f.name for f in ex.columns()}

    def check(r: Any) -> Result:
        if isinstance(r, (Failure, Empty)):
            return r
        if not isinstance(r, dict):
            return Failure(f"extractor {ex.name} returned {type(r).__name__}, not a dict, Failure or Empty")
        extra = set(r) - names
        if extra:
            return Failure(f"extractor {ex.name} returned undeclared column(s) {', '.join(sorted(extra))}")
        return r

    return check


def attach_audio(batch: Sequence[SegmentInput]) -> None:
    """Segments of one batch share a decode of their source file."""
    from ambiguity.media import AudioBatch

    loader = AudioBatch(batch)
    for s in batch:
        s._audio_loader = loader


def _flagged(ex: Extractor, batch: Sequence[SegmentInput], run: Callable[[Sequence[SegmentInput]], list]) -> list:
    """Transcripts flagged at ingest (invalid UTF-8) fail with the reason in text extractors, not silently."""
    bad = {i: Failure(s.metadata["_transcript_error"]) for i, s in enumerate(batch) if s.metadata.get("_transcript_error")}
    if ex.modality != "text" or not bad:
        return run(batch)
    good = [s for i, s in enumerate(batch) if i not in bad]
    done = iter(run(good) if good else [])
    return [bad[i] if i in bad else next(done) for i in range(len(batch))]


def process_isolated(ex: Extractor, batch: Sequence[SegmentInput]) -> list[Result]:
    """ex.process over a batch, isolating a segment that raises."""
    attach_audio(batch)
    return _flagged(ex, batch, lambda b: isolated(ex.process, b, f"extractor {ex.name}", checker(ex)))


def prepare_isolated(ex: Extractor, batch: Sequence[SegmentInput]) -> list[Any]:
    """ex.prepare (a model extractor's CPU half) over a batch, isolating a segment that raises."""
    attach_audio(batch)
    return isolated(ex.prepare, batch, f"extractor {ex.name} (prepare)")  # type: ignore[attr-defined]


def forward_isolated(ex: Extractor, check: Callable[[Any], Result], items: Sequence[Any]) -> list[Result]:
    """ex.forward over prepared items; a bad input or out-of-memory batch reruns one by one."""
    return isolated(ex.forward, items, f"extractor {ex.name}", check)  # type: ignore[attr-defined]
