"""What the explorer shows, read once from the store: points, filters, scores, segment details.

The scatter's data go to the browser as one columnar JSON document (ids, codes and
rounded probabilities; no transcripts), built when the app starts, so the page's
first render costs one request. Everything about a single segment (transcript,
predictions, features, neighbours, annotations) is read when its page asks.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from ambiguity.constants import QUADRANT_COLOURS, QUADRANT_MEANING, QUADRANTS, Scheme
from ambiguity.errors import AmbiguityError, StatsError
from ambiguity.stats.score import COMPONENTS, ScoreResult, ambiguity_scores, fusion_model
from ambiguity.stores.tables import ANNOTATIONS, ATTRIBUTIONS, PREDICTIONS, SEGMENTS

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore

#: A metadata column becomes a filter when it has at most this many distinct values.
MAX_CATEGORIES = 30
#: Above this many shown points the page draws the scatter as per-pixel density, without a per-point SVG layer.
DENSE_ABOVE = 100_000
NO_PREDICTIONS = "the store has no predictions: run `ambiguity train` (or `ambiguity predictions import FILE`), then restart `ambiguity explore`"


def _codes(values: list[Any]) -> dict[str, Any]:
    """Categorical column as sorted distinct values and one code per row (-1: missing)."""
    vals = sorted({str(v) for v in values if v is not None})
    pos = {v: i for i, v in enumerate(vals)}
    return {"values": vals, "codes": [-1 if v is None else pos[str(v)] for v in values]}


def _round(a: np.ndarray | list, digits: int = 4) -> list[float | None]:
    arr = np.asarray(a, dtype=np.float64)
    r = np.round(arr, digits)
    return [None if not math.isfinite(v) else float(v) for v in r.tolist()]


def _aligned(ids: list[str], df: pl.DataFrame, col: str) -> np.ndarray:
    base = pl.DataFrame({"segment_id": ids})
    return base.join(df.select("segment_id", col), on="segment_id", how="left")[col].cast(pl.Float64).to_numpy()


@dataclass
class ExploreData:
    """The explorer's view of a store (built by :func:`load`).

    ``segments``, ``quadrants`` and ``scores`` are read when first used: from the store and the
    explorer's cache when the data come from it (``cached``), so serving starts before they are read.
    """

    store: FeatureStore
    scheme: str
    fusion: str | None
    unimodal: list[str]
    threshold: float
    problem: str | None = None
    embedding_groups: list[str] = field(default_factory=list)
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: True when the points document and frames came from the explorer's cache (explore/cache.py).
    cached: bool = False
    #: Segments in the points document.
    n: int = 0
    _lazy_segments: pl.DataFrame | None = None
    _lazy_quadrants: dict[str, pl.DataFrame] | None = None
    _lazy_scores: ScoreResult | None = None
    _loaders: dict[str, Callable[[], Any]] = field(default_factory=dict)
    _payload: bytes | None = None
    _cache: dict[str, Any] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def _lazy(self, name: str) -> Any:
        with self._lock:
            if getattr(self, "_lazy_" + name) is None:
                setattr(self, "_lazy_" + name, self._loaders[name]())
            return getattr(self, "_lazy_" + name)

    @property
    def segments(self) -> pl.DataFrame:
        return self._lazy("segments")

    @property
    def quadrants(self) -> dict[str, pl.DataFrame]:
        return self._lazy("quadrants")

    @property
    def scores(self) -> ScoreResult:
        return self._lazy("scores")

    @property
    def ids(self) -> list[str]:
        return self.segments["segment_id"].to_list()

    @property
    def index(self) -> dict[str, int]:
        """Row of each segment id in ``segments`` (built on first use)."""
        return self._cached("index", lambda: {s: i for i, s in enumerate(self.ids)})

    def warm(self) -> None:
        """Read what the lazy parts need (in a thread, once the server is up)."""
        for f in (lambda: self.index, lambda: self.quadrants, lambda: self.scores):
            f()

    # -- the scatter's data ---------------------------------------------------------------------
    def payload(self) -> bytes:
        import gzip

        if self._payload is None:
            self._payload = gzip.decompress(self._cache["gzip"]) if "gzip" in self._cache else \
                json.dumps(self._build_payload(), separators=(",", ":"), allow_nan=False).encode()
        return self._payload

    def payload_gzip(self) -> bytes:
        """The payload compressed once (it is the page's one large request)."""
        import gzip

        with self._lock:
            if "gzip" not in self._cache:
                self._cache["gzip"] = gzip.compress(self.payload(), compresslevel=6, mtime=0)
            return self._cache["gzip"]

    def _build_payload(self) -> dict[str, Any]:
        ids = self.ids
        qpos = {q: i for i, q in enumerate(QUADRANTS)}
        models = []
        # 3 decimals: finer than a pixel of the plot
        fy = np.full(len(ids), np.nan)
        for m in self.unimodal:
            y = _aligned(ids, self.quadrants[m], "p_fusion")
            fy = np.where(np.isnan(fy), y, fy)
        for m in self.unimodal:
            q = self.quadrants[m]
            qq = pl.DataFrame({"segment_id": ids}).join(q.select("segment_id", "quadrant"), on="segment_id", how="left")["quadrant"].to_list()
            entry: dict[str, Any] = {
                "name": m, "x": _round(_aligned(ids, q, "p_unimodal"), 3), "q": [qpos.get(v, -1) if v else -1 for v in qq],
            }
            if "stability" in q.columns:
                entry["stability"] = _round(_aligned(ids, q, "stability"), 3)
            models.append(entry)
        sc = self.scores.frame
        return {
            "n": len(ids), "ids": ids, "scheme": self.scheme, "fusion": self.fusion, "threshold": self.threshold,
            "quadrants": list(QUADRANTS), "colours": QUADRANT_COLOURS, "meaning": QUADRANT_MEANING,
            "label": _codes(self.segments["label"].to_list()), "split": _codes(self.segments["split"].to_list()),
            "meta": self.metadata, "models": models, "y": _round(fy, 3),
            "score": _round(_aligned(ids, sc, "score"), 3),
            "components": {c: _round(_aligned(ids, sc, c), 3) for c in self.scores.available},
            "weights": self.scores.weights, "missing": self.scores.missing, "problem": self.problem,
            "embeddings": self.embedding_groups, "dense_above": DENSE_ABOVE,
            # exact counts over every segment, whatever the page draws (it may bin or sample points)
            "counts": {m: _counts(self.quadrants[m]) for m in self.unimodal},
        }

    # -- one segment ------------------------------------------------------------------------------
    def row(self, segment_id: str) -> dict[str, Any]:
        return self.segments.row(self.index[segment_id], named=True)

    def detail(self, segment_id: str, embedding: str | None = None) -> dict[str, Any]:
        """Everything the segment page shows; sections that cannot be built say why."""
        r = self.row(segment_id)
        out: dict[str, Any] = {
            "segment_id": segment_id, "transcript": r.get("transcript"), "label": r.get("label"), "split": r.get("split"),
            "start_s": r.get("start_s"), "end_s": r.get("end_s"), "metadata": json.loads(r.get("metadata") or "{}"),
            "media": self._media(r), "fusion": self.fusion, "scheme": self.scheme,
        }
        sc = self.scores.frame.filter(pl.col("segment_id") == segment_id)
        out["score"] = sc.row(0, named=True) if sc.height else None
        out["components"] = {c: {"needs": COMPONENTS[c], "available": c in self.scores.available} for c in COMPONENTS}
        for key, fn in (
            ("predictions", self._predictions), ("quadrants", self._quadrants), ("attributions", self._attributions),
            ("features", self._features), ("annotations", self._annotations),
        ):
            out[key] = self._section(fn, segment_id)
        out["embeddings"] = self.embedding_groups
        group = embedding or (self.embedding_groups[0] if self.embedding_groups else None)
        out["neighbours"] = self._section(self._neighbours, segment_id, group) if group else {"error": "the store has no embedding group (run `ambiguity extract` with a text, audio or video embedder)"}
        return out

    @staticmethod
    def _section(fn, *args) -> Any:
        try:
            return fn(*args)
        except (AmbiguityError, ValueError, KeyError, OSError) as exc:
            return {"error": str(exc)}

    def _media(self, r: dict[str, Any]) -> dict[str, Any]:
        from ambiguity.web.clips import Source, has_video

        missing = [p for p in (r.get("media"), r.get("audio")) if p and not os.path.exists(p)]
        info: dict[str, Any] = {"media": r.get("media"), "audio": r.get("audio"), "missing": missing, "urls": {}}
        if missing or not (r.get("media") or r.get("audio")):
            return info
        sid = r["segment_id"]
        try:
            video = has_video(Source(sid, r.get("media"), r.get("audio"), r.get("start_s"), r.get("end_s")))
        except AmbiguityError as exc:
            info["error"] = str(exc)
            return info
        info["urls"]["audio"] = f"/api/media/audio/{sid}"
        if video:
            info["urls"]["video"] = f"/api/media/video/{sid}"
            info["urls"]["full"] = f"/api/media/full/{sid}"
        return info

    def _predictions(self, sid: str) -> list[dict[str, Any]]:
        if not PREDICTIONS.exists(self.store):
            raise StatsError(NO_PREDICTIONS)
        # one row per model, of the explorer's scheme: crossfit, the mean over repeats of the out-of-fold
        # predictions (the repeats are summarised under Quadrants); fixed, the fixed-split model's
        cols = ["model", "kind", "classes", "probs", "predicted", "p_correct", "attention", "modalities"]
        has_scheme = "scheme" in self.store.schema(PREDICTIONS).names
        if has_scheme and self.scheme == Scheme.CROSSFIT:
            df = PREDICTIONS.read(self.store, cols, segment_id=sid, scheme=Scheme.CROSSFIT)
            rows = []
            for (_,), g in df.group_by(["model"], maintain_order=True):
                r = g.row(0, named=True)
                probs = np.mean(np.array(g["probs"].to_list(), dtype=float), axis=0)
                att = g["attention"].to_list()
                rows.append({**r, "probs": probs.tolist(), "p_correct": float(g["p_correct"].to_numpy().mean()),
                             "predicted": r["classes"][int(probs.argmax())],
                             "attention": None if any(a is None for a in att) else np.mean(np.array(att), axis=0).tolist()})
            df = pl.DataFrame(rows) if rows else df
        else:
            self._check_held_out(sid)
            df = PREDICTIONS.read(self.store, cols, segment_id=sid, scheme=(self.scheme if self.scheme in Scheme.STORED else Scheme.FIXED) if has_scheme else None)
        return [
            {**{k: r[k] for k in ("model", "kind", "classes", "predicted", "modalities")},
             "probs": _round(r["probs"] or [], 4), "p_correct": r["p_correct"],
             "attention": _round(r["attention"], 4) if r["attention"] is not None else None}
            for r in df.sort("model").iter_rows(named=True)
        ]

    def _check_held_out(self, sid: str) -> None:
        """Fixed scheme: a number the model made on its own training (or epoch-choosing) data is not shown."""
        split = self.row(sid).get("split")
        if self.scheme == Scheme.FIXED and split not in Scheme.HELD_OUT:
            raise StatsError(in_sample(split))

    def _quadrants(self, sid: str) -> list[dict[str, Any]]:
        self._check_held_out(sid)
        rows = []
        for m in self.unimodal:
            q = self.quadrants[m].filter(pl.col("segment_id") == sid)
            if q.height:
                rows.append({"unimodal": m, **{k: v for k, v in q.row(0, named=True).items() if k != "segment_id"}})
        from ambiguity.stats.quadrant_tables import quadrant_stability

        for row in rows:
            if "share_red" in row:  # crossfit scheme: the shares are in the frame
                row["repeats"] = {k: row.pop(k) for k in list(row) if k.startswith("share_") or k in ("stability", "n_repeats")}
                continue
            fusion = self.fusion
            assert fusion is not None  # unimodal quadrants exist only with a fusion model
            try:
                st = self._cached(f"stab:{row['unimodal']}", lambda m=row["unimodal"], f=fusion: quadrant_stability(self.store, m, f))
            except AmbiguityError:
                row["repeats"] = None  # no cross-fitted predictions: the page says what to run
                continue
            hit = st.filter(pl.col("segment_id") == sid)
            row["repeats"] = hit.row(0, named=True) if hit.height else None
        return rows

    def _attributions(self, sid: str) -> list[dict[str, Any]]:
        if not ATTRIBUTIONS.exists(self.store):
            raise StatsError("no attributions in the store (run `ambiguity attribute`)")
        df = ATTRIBUTIONS.read(self.store, segment_id=sid)
        if "scheme" in df.columns and df.height:
            # the explorer's scheme only (out of sample: crossfit rows come from the fold models that held the
            # segment out); crossfit's repeats are averaged, as every reader of the table does
            have = set(df["scheme"].to_list())
            df = df.filter(pl.col("scheme") == (self.scheme if self.scheme in have else sorted(have)[0]))
            df = df.group_by(["model", "target", "modality"], maintain_order=True).agg(
                pl.col("phi", "v_all", "v_empty").mean(), pl.col("phi").std().alias("phi_sd"),
                pl.col("dominant", "split", "scheme").first(), pl.len().alias("n_repeats"))
        keep = [c for c in ("model", "target", "modality", "phi", "phi_sd", "v_all", "v_empty", "dominant", "split",
                            "scheme", "n_repeats") if c in df.columns]
        df = df.select(keep or df.columns)
        return [{k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in r.items()} for r in df.iter_rows(named=True)]

    def _cached(self, key: str, fn):
        with self._lock:
            if key not in self._cache:
                self._cache[key] = fn()
            return self._cache[key]

    def _features(self, sid: str) -> dict[str, Any]:
        """Scalar features of the segment as z-scores against the blue quadrant (both models right)."""
        from ambiguity.stores.schema import table_name

        if not self.unimodal:
            raise StatsError(NO_PREDICTIONS)
        ref = self.unimodal[0]
        blue = self.quadrants[ref].filter(pl.col("quadrant") == "blue")["segment_id"].to_list()
        if len(blue) < 2:
            raise StatsError(f"fewer than two blue segments for {ref}: no reference to compare with")
        out = []
        for g in self.store.groups():
            if "vector" in self.store.schema(table_name(g)).names:
                continue
            stats = self._cached(f"blue:{g}", lambda g=g: self._blue_stats(g, blue))
            if stats is None:
                continue
            mine = self.store.features(g, segment_ids=[sid])
            if mine.height == 0:
                continue
            r = mine.row(0, named=True)
            for col, (mu, sd) in stats.items():
                v = r.get(col)
                if v is None or not math.isfinite(float(v)) or not sd:
                    continue
                out.append({"group": g, "feature": col, "value": float(v), "blue_mean": mu, "blue_sd": sd, "z": (float(v) - mu) / sd})
        out.sort(key=lambda d: -abs(d["z"]))
        return {"reference": f"blue quadrant of {ref} vs {self.fusion} ({len(blue)} segments)", "rows": out[:40], "total": len(out)}

    def _blue_stats(self, group: str, blue: list[str]) -> dict[str, tuple[float, float]] | None:
        df = self.store.features(group, segment_ids=blue)
        cols = [c for c, t in df.schema.items() if c not in ("segment_id", "status", "error") and t.is_numeric()]
        if not cols or df.height < 2:
            return None
        res = {}
        for c in cols:
            x = df[c].cast(pl.Float64).to_numpy()
            x = x[np.isfinite(x)]
            if len(x) >= 2:
                res[c] = (float(x.mean()), float(x.std(ddof=1)))
        return res

    def _neighbours(self, sid: str, group: str, k: int = 10) -> dict[str, Any]:
        from ambiguity.stats.neighbours import knn_exact

        if group not in self.embedding_groups:
            raise StatsError(f"no embedding group {group!r}; the store has: {', '.join(self.embedding_groups) or 'none'}")
        ids, vec = self._cached(f"vec:{group}", lambda: self.store.vectors(group))
        pos = self._cached(f"pos:{group}", lambda: {s: i for i, s in enumerate(ids)})
        if sid not in pos:
            raise StatsError(f"segment {sid} has no ok vector in {group}")
        kk = min(k, len(ids) - 1)
        if kk < 1:
            raise StatsError(f"group {group} has one vector only")
        idx, dist = knn_exact(vec, kk, "cosine", rows=[pos[sid]])
        ref = self.unimodal[0] if self.unimodal else None
        qmap = dict(zip(self.quadrants[ref]["segment_id"].to_list(), self.quadrants[ref]["quadrant"].to_list(), strict=True)) if ref else {}
        rows = []
        for j, d in zip(idx[0].tolist(), dist[0].tolist(), strict=True):
            n = ids[j]
            if n not in self.index:
                continue
            rr = self.row(n)
            rows.append({"segment_id": n, "distance": round(float(d), 4), "label": rr.get("label"), "quadrant": qmap.get(n),
                         "transcript": (rr.get("transcript") or "")[:120]})
        return {"group": group, "metric": "cosine", "rows": rows}

    def _annotations(self, sid: str) -> list[dict[str, Any]]:
        if not ANNOTATIONS.exists(self.store):
            return []
        df = ANNOTATIONS.read(self.store, ["task", "annotator", "item", "round", "judgment", "answered_at"], segment_id=sid)
        return df.sort("task", "annotator", "round").to_dicts()


def _counts(q: pl.DataFrame) -> dict[str, int]:
    got = dict(q.group_by("quadrant").len().iter_rows())
    return {k: int(got.get(k, 0)) for k in QUADRANTS}


def _metadata(segments: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """Categorical metadata columns (at most MAX_CATEGORIES values) as code columns."""
    parsed = [json.loads(m) if m else {} for m in segments["metadata"].to_list()]
    keys: dict[str, set[str]] = {}
    for d in parsed:
        for k, v in d.items():
            if isinstance(v, (str, int, float, bool)) or v is None:
                s = keys.setdefault(k, set())
                if len(s) <= MAX_CATEGORIES:
                    s.add(str(v))
    out = {}
    for k, vals in sorted(keys.items()):
        if 1 <= len(vals) <= MAX_CATEGORIES:
            out[k] = _codes([None if d.get(k) is None else str(d.get(k)) for d in parsed])
    return out


def in_sample(split: str | None) -> str:
    """Why the fixed scheme shows no prediction or quadrant for a segment outside its test split."""
    why = {"train": "the model trained on this segment", "val": "this segment chose the model's epoch"}.get(
        split or "", "the segment has no split (the fixed models never predicted it)")
    return (f"in sample ({split or 'no'} split): {why}; the fixed scheme shows the test split only. "
            "Cross-fit (`ambiguity train GROUPS --folds 5`) for an out-of-sample number on every segment")


SEGMENT_COLUMNS = ["segment_id", "media", "audio", "start_s", "end_s", "transcript", "label", "split", "metadata"]


def _read_segments(store: FeatureStore) -> pl.DataFrame:
    return store.segments(SEGMENT_COLUMNS).sort("segment_id")


def load(
    store: FeatureStore, *, scheme: str = "auto", fusion: str | None = None, unimodal: list[str] | None = None,
    threshold: float = 0.5, embedding: str | None = None, weights: Mapping[str, Any] | None = None, cache: bool = True,
) -> ExploreData:
    """Read the explorer's data. A store without predictions still loads (``problem`` says what to run).

    With ``cache`` the points document, quadrants and scores are read from the explorer's cache
    in the store when nothing they depend on has changed since they were computed, and written
    to it when they are computed (:mod:`ambiguity.explore.cache`).
    """
    from ambiguity.explore import cache as C

    if scheme not in Scheme.WITH_HUMAN:
        raise StatsError(f"unknown scheme {scheme!r}: use {', '.join(Scheme.WITH_HUMAN)}")
    if not SEGMENTS.exists(store):
        raise StatsError(f"the store at {store.uri} has no segments: run `ambiguity ingest MANIFEST` first")
    params = {"scheme": scheme, "fusion": fusion, "unimodal": unimodal, "threshold": threshold, "embedding": embedding,
              "weights": dict(weights or {}), "held_out": list(Scheme.HELD_OUT)}
    key = C.cache_key(store, params) if cache else None
    hit = C.read(store, key) if key else None
    if key and hit:
        meta, gz = hit
        data = ExploreData(
            store=store, scheme=meta["scheme"], fusion=meta["fusion"], unimodal=meta["unimodal"], threshold=threshold,
            problem=meta["problem"], embedding_groups=meta["embeddings"], cached=True, n=meta["n"],
        )
        data._cache["gzip"] = gz
        data._loaders = {
            "segments": lambda: _read_segments(store),
            "quadrants": lambda: {m: C.frame(store, key, f"quadrants-{i}") for i, m in enumerate(meta["unimodal"])},
            "scores": lambda: ScoreResult(C.frame(store, key, "scores"), meta["weights"], tuple(meta["available"]), meta["missing"]),
        }
        return data
    data = _compute(store, scheme, fusion, unimodal, threshold, embedding, weights)
    if key:
        gz = data.payload_gzip()
        data._payload = None  # kept compressed only (decompressed again if a client asks for identity)
        meta = {"scheme": data.scheme, "fusion": data.fusion, "unimodal": data.unimodal, "problem": data.problem,
                "embeddings": data.embedding_groups, "n": data.n, "weights": data.scores.weights,
                "available": list(data.scores.available), "missing": data.scores.missing}
        frames = {f"quadrants-{i}": data.quadrants[m] for i, m in enumerate(data.unimodal)} | {"scores": data.scores.frame}
        C.write(store, key, meta, gz, frames)
    return data


def _compute(
    store: FeatureStore, scheme: str, fusion: str | None, unimodal: list[str] | None, threshold: float,
    embedding: str | None, weights: Mapping[str, Any] | None,
) -> ExploreData:
    from ambiguity.stats.quadrant_tables import load_quadrants, resolve_model, unimodal_models
    from ambiguity.stores.schema import table_name

    segments = _read_segments(store)
    embedding_groups = [g for g in store.groups() if "vector" in store.schema(table_name(g)).names]
    quads: dict[str, pl.DataFrame] = {}
    problem = None
    models: list[str] = []
    if not PREDICTIONS.exists(store):
        problem = NO_PREDICTIONS
    else:
        human = scheme == Scheme.HUMAN  # people (human:audio, human:video against human:all), never with models
        fusion = resolve_model(store, fusion) if fusion else "human:all" if human else fusion_model(store)
        models = [resolve_model(store, m) for m in unimodal] if unimodal else sorted(unimodal_models(store, human=human))
        if fusion is None or not models:
            problem = "the store needs a fusion model and at least one unimodal model: run `ambiguity train GROUP GROUP ...`"
            models = []
        if models:
            from ambiguity.models.predictions import model_summary
            from ambiguity.stats.stability import resolve_scheme

            # one scheme for every panel; crossfit: modal quadrant, mean p over repeats, stability
            scheme = resolve_scheme(model_summary(store), [*models, fusion], scheme, Scheme.WITH_HUMAN)
        for m in models:
            assert fusion is not None  # models is emptied when there is no fusion model
            # fixed: the test split only (train and val are in sample), as every other number on the fixed scheme
            quads[m] = load_quadrants(store, m, fusion, splits=Scheme.HELD_OUT if scheme == "fixed" else None,
                                      threshold=threshold, scheme=scheme)
    # the score is the models' (out of sample); people have their own numbers (`ambiguity annotations human`)
    scores = ambiguity_scores(store, fusion=fusion if models and scheme != Scheme.HUMAN else None, embedding=embedding,
                              weights=weights)
    return ExploreData(
        store=store, scheme=scheme, fusion=fusion if models else None, unimodal=models, threshold=threshold,
        _lazy_segments=segments, _lazy_quadrants=quads, _lazy_scores=scores, problem=problem, embedding_groups=embedding_groups,
        metadata=_metadata(segments), n=segments.height,
    )
