"""``check_extractor``: the conformance suite a plugin author runs on an extractor class.

It builds small media of the extractor's modality (a tone, a transcript, a short
video), runs the class directly and through the real runner on a temporary store,
and raises ``AssertionError`` naming the first broken promise:

- the class is registrable (an Extractor subclass with a name and a modality);
- parameters are a frozen dataclass and the instance validates them;
- declared columns are valid and every result uses only declared columns;
- one result per input, in order; a broken segment becomes a ``failed`` row;
- results are deterministic and do not depend on how segments are batched.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
import tempfile
import wave
from pathlib import Path
from typing import Any, cast

import numpy as np

from ambiguity.extractors.base import Empty, Extractor, Failure
from ambiguity.extractors.registry import check_class
from ambiguity.inputs import SegmentInput


def _fail(msg: str) -> None:
    raise AssertionError(msg)


def _tone(path: Path, seconds: float = 1.5, rate: int = 16000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((x * 32767).astype("<i2").tobytes())
    return path


def _video(path: Path, seconds: float = 1.0, fps: int = 10) -> Path:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
        for i in range(int(seconds * fps)):
            img = np.full((64, 64, 3), (i * 20) % 255, np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def sample_segments(modality: str, folder: Path, media: str | None = None) -> tuple[list[SegmentInput], SegmentInput]:
    """Good segments of ``modality`` (on ``media`` if given) and one whose media file does not exist."""
    tone = str(_tone(folder / "tone.wav", 3.0))
    media = media or (str(_video(folder / "clip.mp4")) if modality == "video" else tone)
    texts = ["I am so sorry to hear that, it must be hard.", "The meeting is at ten.", "ok"]
    good = [
        SegmentInput("whole", media, transcript_value=texts[0], label="1"),
        SegmentInput("part", media, 0.2, 0.9, transcript_value=texts[1], label="0"),
        SegmentInput("late", media, 0.5, 1.0, transcript_value=texts[2], label="1"),
    ]
    broken = SegmentInput("broken", str(folder / "missing.wav"), transcript_value=None)
    return good, broken


def _same(a: Any, b: Any, tol: float) -> bool:
    if isinstance(a, (Failure, Empty)) or isinstance(b, (Failure, Empty)):
        return type(a) is type(b)
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = np.asarray(a[k], dtype=float), np.asarray(b[k], dtype=float)
        if x.shape != y.shape or not np.allclose(x, y, rtol=tol, atol=tol, equal_nan=True):
            return False
    return True


#: The sample segments in words, for messages ("result for whole" read as a typo).
_SAMPLES = {"whole": "the whole file", "part": "0.2-0.9 s", "late": "0.5-1.0 s"}


def _seg(sid: str) -> str:
    return f"sample segment {sid!r} ({_SAMPLES[sid]})" if sid in _SAMPLES else f"segment {sid!r}"


def check_extractor(
    cls: type[Extractor], params: dict[str, Any] | None = None, *, media: str | Path | None = None, tol: float = 1e-5
) -> None:
    """Run the conformance checks on ``cls`` (constructed with ``params``); raise AssertionError on a failure.

    ``media`` replaces the generated sample file (a tone, or a grey video) with one of
    yours, for extractors that need real content (a face, speech) to produce features.
    The sample segments are the whole file, 0.2-0.9 s and 0.5-1.0 s of it. Whatever the
    extractor itself raises (a refused registration, a parameter error, a crash in ``setup()``)
    becomes an AssertionError that starts with the class name and keeps the extractor's words.
    """
    try:
        _check(cls, params, media, tol)
    except AssertionError:
        raise
    except Exception as exc:
        raise AssertionError(f"{getattr(cls, '__name__', cls)}: {type(exc).__name__}: {exc}") from exc


def _check(cls: type[Extractor], params: dict[str, Any] | None, media: str | Path | None, tol: float) -> None:
    check_class(cast(str, getattr(cls, "name", None)), cls)  # check_class refuses a missing name
    if not (dataclasses.is_dataclass(cls.Params) and cast(Any, cls.Params).__dataclass_params__.frozen):
        _fail(f"{cls.__name__}.Params must be a frozen dataclass")
    ex = cls(**(params or {}))
    ex2 = cls(**(params or {}))
    if ex.config_key() != ex2.config_key():
        _fail("config_key() differs between two instances with the same parameters")
    schema = ex.schema()
    names = {f.name for f in ex.columns()}
    if not names:
        _fail("columns() declares no feature column")
    if ex.kind == "cpu":
        try:
            pickle.loads(pickle.dumps(cls))
        except Exception as exc:  # the spawn pool ships the class by reference
            _fail(f"{cls.__name__} cannot be pickled by reference (define it at module level): {exc}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        good, broken = sample_segments(cls.modality, folder, str(media) if media else None)
        ex.setup()
        together = ex.process(good)
        if len(together) != len(good):
            _fail(f"process() returned {len(together)} results for {len(good)} segments")
        for seg, r in zip(good, together, strict=True):
            if not isinstance(r, (dict, Failure, Empty)):
                _fail(f"result for {_seg(seg.segment_id)} is {type(r).__name__}, not dict/Failure/Empty")
            if isinstance(r, dict):
                extra = set(r) - names
                if extra:
                    _fail(f"result for {_seg(seg.segment_id)} has columns not declared in columns(): {sorted(extra)}")
                for k, v in r.items():
                    if np.isscalar(v) and isinstance(v, float) and math.isinf(v):
                        _fail(f"{k} of {_seg(seg.segment_id)} is infinite")
        if all(not isinstance(r, dict) for r in together):
            _fail(f"no sample segment gave features: {together}")
        alone = [ex.process([s])[0] for s in good]
        for s, a, b in zip(good, together, alone, strict=True):
            if not _same(a, b, tol):
                _fail(f"{_seg(s.segment_id)}: the result in a batch differs from the result alone")
        again = ex.process(good)
        if not all(_same(a, b, tol) for a, b in zip(together, again, strict=True)):
            _fail("process() is not deterministic: two runs on the same batch differ")

        # Through the real runner and store: the broken segment is a failed row, the others ok/empty.
        from ambiguity.extractors.runner import run
        from ambiguity.stores.lance import open_store
        from ambiguity.stores.schema import SEGMENTS_SCHEMA

        store = open_store(folder / "store")
        import pyarrow as pa

        rows = [{"segment_id": s.segment_id, "media": s.media, "audio": None, "start_s": s.start_s, "end_s": s.end_s,
                 "transcript": s.transcript, "label": s.label, "split": "train", "metadata": "{}"} for s in [*good, broken]]
        store.upsert_segments(pa.Table.from_pylist(rows, schema=SEGMENTS_SCHEMA))
        report = run(store, cls(**(params or {})), workers=1, progress=False)
        st = {r["segment_id"]: r["status"] for r in store.group_status(report.group).iter_rows(named=True)}
        if st.get("broken") != "failed" and cls.modality != "text":
            _fail(f"a segment with a missing media file got status {st.get('broken')!r}, not 'failed'")
        if len(st) != len(rows):
            _fail(f"the runner wrote {len(st)} rows for {len(rows)} segments")
        if schema.names[:3] != ["segment_id", "status", "error"]:
            _fail("schema() must start with segment_id, status, error")
