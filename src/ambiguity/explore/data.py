"""What the explorer shows: the stored points and summary, and each segment's details when asked.

What every segment needs (quadrants, scores, codes) is computed once into an entry of the
explorer's cache (:mod:`ambiguity.explore.cache`): ``meta.json`` (the page's summary, with exact
quadrant counts), ``points.arrow`` (memory-mapped, queried by :mod:`ambiguity.explore.points`) and
the quadrant and score frames as Parquet. Opening an entry reads the summary and maps the points
file, nothing more, so the server answers at once; a segment's row of the store, its quadrants and
its score are read by predicate when its page or its hover asks.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from ambiguity.constants import Scheme
from ambiguity.errors import AmbiguityError, StatsError
from ambiguity.explore import compute
from ambiguity.explore import points as P
from ambiguity.explore.compute import NO_PREDICTIONS
from ambiguity.stores.tables import ANNOTATIONS, ATTRIBUTIONS, PREDICTIONS, SEGMENTS

if TYPE_CHECKING:
    from ambiguity.stats.score import ScoreResult
    from ambiguity.stores.lance import FeatureStore

# ambiguity.stats is imported where it is used: 0.44 s of `python -X importtime` (polars, scipy's parts),
# which a stored entry (nothing to compute) never needs before its first page

SEGMENT_COLUMNS = ["segment_id", "media", "audio", "start_s", "end_s", "transcript", "label", "split", "metadata"]
#: Segment rows kept after a read (hover asks for the same few again and again).
ROW_CACHE = 2048


def _round(a: np.ndarray | list, digits: int = 4) -> list[float | None]:
    arr = np.asarray(a, dtype=np.float64)
    r = np.round(arr, digits)
    return [None if not math.isfinite(v) else float(v) for v in r.tolist()]


@dataclass
class ExploreData:
    """The explorer's view of a store (built by :func:`load`): an entry of the explorer's cache.

    ``summary`` is what the page needs before any row (codes, models, exact counts); ``points``
    answers filters, pages, counts and the scatter. ``quadrants`` and ``scores`` (whole frames) are
    read from the entry only when asked; the app reads one segment's rows by predicate instead.
    """

    store: FeatureStore
    scheme: str
    fusion: str | None
    unimodal: list[str]
    threshold: float
    folder: Path
    summary: dict[str, Any]
    problem: str | None = None
    embedding_groups: list[str] = field(default_factory=list)
    #: True when the entry was there already (nothing it depends on changed).
    cached: bool = False
    n: int = 0
    _points: P.Points | None = None
    _rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def points(self) -> P.Points:
        with self._lock:
            if self._points is None:
                self._points = P.Points(self.folder / P.FILE, self.summary)
            return self._points

    @property
    def quadrants(self) -> dict[str, pl.DataFrame]:
        """Every unimodal model's whole quadrant frame (read on first use; the page never needs them whole)."""
        return self._cached("quadrants", lambda: {m: pl.read_parquet(self._frame(f"quadrants-{i}")) for i, m in enumerate(self.unimodal)})

    @property
    def scores(self) -> ScoreResult:
        from ambiguity.stats.score import ScoreResult  # see the note on ambiguity.stats at the top

        s = self.summary
        return self._cached("scores", lambda: ScoreResult(pl.read_parquet(self._frame("scores")), s["weights"], tuple(s["available"]), s["missing"]))

    def _frame(self, name: str) -> Path:
        return self.folder / f"{name}.parquet"

    def frame_rows(self, name: str, ids: str | list[str]) -> pl.DataFrame:
        """Rows of a stored frame for one segment or a list (row groups without them are skipped)."""
        lf = pl.scan_parquet(self._frame(name))
        cond = pl.col("segment_id") == ids if isinstance(ids, str) else pl.col("segment_id").is_in(ids)
        return lf.filter(cond).collect()

    def quadrant_rows(self, model: str, ids: str | list[str]) -> pl.DataFrame:
        return self.frame_rows(f"quadrants-{self.unimodal.index(model)}", ids)

    def has(self, segment_id: str) -> bool:
        """Whether ``segment_id`` is one of the store's segments (binary search in the mapped ids)."""
        return self.points.position(segment_id) is not None

    def page_summary(self) -> dict[str, Any]:
        """The page's first request: everything but rows (codes, models, weights, exact counts)."""
        return {**self.summary, "dense_above": P.DENSE_ABOVE}

    def payload(self) -> bytes:
        """The summary as JSON bytes (``/api/points``)."""
        return json.dumps(self.page_summary(), separators=(",", ":"), allow_nan=False).encode()

    # -- one segment ------------------------------------------------------------------------------
    def row(self, segment_id: str) -> dict[str, Any]:
        """The segment's row of the store (read by predicate; the last ROW_CACHE kept)."""
        with self._lock:
            hit = self._rows.get(segment_id)
        if hit is not None:
            return hit
        df = SEGMENTS.read(self.store, SEGMENT_COLUMNS, segment_id=segment_id)
        if df.height == 0:
            raise KeyError(segment_id)
        r = df.row(0, named=True)
        with self._lock:
            if len(self._rows) >= ROW_CACHE:
                self._rows.pop(next(iter(self._rows)))
            self._rows[segment_id] = r
        return r

    def detail(self, segment_id: str, embedding: str | None = None) -> dict[str, Any]:
        """Everything the segment page shows; sections that cannot be built say why."""
        r = self.row(segment_id)
        out: dict[str, Any] = {
            "segment_id": segment_id, "transcript": r.get("transcript"), "label": r.get("label"), "split": r.get("split"),
            "start_s": r.get("start_s"), "end_s": r.get("end_s"), "metadata": json.loads(r.get("metadata") or "{}"),
            "media": self._media(r), "fusion": self.fusion, "scheme": self.scheme,
        }
        sc = self.frame_rows("scores", segment_id)
        out["score"] = sc.row(0, named=True) if sc.height else None
        from ambiguity.stats.score import COMPONENTS  # see the note on ambiguity.stats at the top

        out["components"] = {c: {"needs": COMPONENTS[c], "available": c in self.summary["available"]} for c in COMPONENTS}
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
            q = self.quadrant_rows(m, sid)
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
        blue = pl.scan_parquet(self._frame("quadrants-0")).filter(pl.col("quadrant") == "blue").select("segment_id").collect()["segment_id"].to_list()
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
        near = [ids[j] for j in idx[0].tolist()]
        qmap = dict(self.quadrant_rows(ref, near).select("segment_id", "quadrant").iter_rows()) if ref else {}
        rows = []
        for j, d in zip(idx[0].tolist(), dist[0].tolist(), strict=True):
            n = ids[j]
            if not self.has(n):
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


def in_sample(split: str | None) -> str:
    """Why the fixed scheme shows no prediction or quadrant for a segment outside its test split."""
    why = {"train": "the model trained on this segment", "val": "this segment chose the model's epoch"}.get(
        split or "", "the segment has no split (the fixed models never predicted it)")
    return (f"in sample ({split or 'no'} split): {why}; the fixed scheme shows the test split only. "
            "Cross-fit (`ambiguity train GROUPS --folds 5`) for an out-of-sample number on every segment")


def load(
    store: FeatureStore, *, scheme: str = "auto", fusion: str | None = None, unimodal: list[str] | None = None,
    threshold: float = 0.5, embedding: str | None = None, weights: Mapping[str, Any] | None = None, cache: bool = True,
) -> ExploreData:
    """Open the explorer's entry for these options, computing it first if needed. A store without
    predictions still loads (``problem`` says what to run).

    With ``cache`` the entry is the one in the store's ``_explore`` folder while nothing it depends on
    has changed, and a computed entry is kept there (:mod:`ambiguity.explore.cache`); without, it is
    computed into a temporary folder.
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
    cached = hit is not None
    if hit is None:
        folder = C.begin(store, keep=key is not None)
        meta = compute.entry(store, folder, scheme, fusion, unimodal, threshold, embedding, weights)
        folder = C.commit(store, key, folder, meta)
    else:
        meta, folder = hit
    return ExploreData(
        store=store, scheme=meta["scheme"], fusion=meta["fusion"], unimodal=meta["unimodal"], threshold=threshold,
        folder=folder, summary=meta, problem=meta["problem"], embedding_groups=meta["embeddings"], cached=cached, n=meta["n"],
    )
