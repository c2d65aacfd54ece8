"""The explorer's points: one row per segment, stored as an Arrow IPC file and memory-mapped.

Every filter, the table's sorting and paging, the quadrant counts of what is shown, the
scatter's density and hover's nearest point are answered here, on the server, from columns
read without copying (numpy views of the mapped file). The browser gets a page of rows, the
counts, and either the shown points (at most ``DENSE_ABOVE``) or a per-pixel density, never
every row: at 10^6 segments opening the file costs milliseconds and a filtered page tens of them.

Columns (sorted by ``segment_id``; missing numbers are NaN, missing codes -1):
``segment_id``, ``label``, ``split`` (codes of the summary's values), ``meta.<k>`` (codes of
metadata column k), ``m<i>.x`` (p(correct label) of unimodal model i), ``m<i>.q`` (its quadrant,
an index into QUADRANTS), ``m<i>.stability`` (crossfit), ``y`` (the fusion model's p(correct)),
``score`` and ``c.<component>``.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from ambiguity.constants import QUADRANTS
from ambiguity.errors import StatsError

#: Above this many shown points the page draws the scatter as a per-pixel density, without a per-point SVG layer.
DENSE_ABOVE = 100_000
#: Most rows one table request returns.
MAX_LIMIT = 10_000
#: Largest density grid a request may ask for (pixels per side).
MAX_GRID = 4096
#: A metadata column becomes a filter when it has at most this many distinct values.
MAX_CATEGORIES = 30
FILE = "points.arrow"


# -- building -------------------------------------------------------------------------------------
def codes(s: pl.Series, values: list[str]) -> pl.Series:
    """``s`` as int16 indexes into ``values`` (-1: missing or not among them)."""
    pos = {v: i for i, v in enumerate(values)}
    return s.cast(pl.String).replace_strict(pos, default=-1, return_dtype=pl.Int16).fill_null(-1)


def _values(s: pl.Series) -> list[str]:
    return sorted(s.cast(pl.String).drop_nulls().unique().to_list())


def metadata_columns(meta: pl.Series) -> dict[str, pl.Series]:
    """Scalar metadata keys with 1..MAX_CATEGORIES distinct values, as string columns (parsed in
    polars: no Python object per row)."""
    js = meta.fill_null("{}").replace("", "{}")
    try:
        st = js.str.json_decode(infer_schema_length=None)
    except Exception:  # noqa: BLE001 - a key whose values have clashing JSON types: no filter from metadata
        return {}
    if not isinstance(st.dtype, pl.Struct):
        return {}
    out = {}
    for f in st.dtype.fields:
        if f.dtype.is_nested():
            continue
        col = st.struct.field(f.name)
        col = col.cast(pl.String) if f.dtype != pl.Boolean else col.replace_strict({True: "True", False: "False"}, return_dtype=pl.String)
        if 1 <= col.drop_nulls().n_unique() <= MAX_CATEGORIES:
            out[f.name] = col
    return dict(sorted(out.items()))


def build(segments: pl.DataFrame, quadrants: Mapping[str, pl.DataFrame], scores: pl.DataFrame | None,
          components: list[str]) -> tuple[pl.DataFrame, dict[str, Any]]:
    """The points frame and the small facts the page needs about its codes.

    ``segments``: segment_id, label, split, metadata; ``quadrants``: per unimodal model, its
    frame (segment_id, p_unimodal, p_fusion, quadrant[, stability]); ``scores``: segment_id, score
    and one column per component.
    """
    base = segments.select("segment_id", "label", "split", "metadata").sort("segment_id")
    labels, splits = _values(base["label"]), _values(base["split"])
    meta = metadata_columns(base["metadata"])
    cols: list[pl.Series] = [base["segment_id"], codes(base["label"], labels).alias("label"), codes(base["split"], splits).alias("split")]
    meta_values = {}
    for i, (k, s) in enumerate(meta.items()):
        meta_values[k] = _values(s)
        cols.append(codes(s, meta_values[k]).alias(f"meta.{i}"))
    ids = base.select("segment_id")
    del base, meta
    y = None
    models = []
    for i, (m, q) in enumerate(quadrants.items()):
        keep = ["segment_id", "p_unimodal", "p_fusion", "quadrant", *(["stability"] if "stability" in q.columns else [])]
        j = ids.join(q.select(keep), on="segment_id", how="left", maintain_order="left")
        cols += [j["p_unimodal"].cast(pl.Float64).fill_null(np.nan).alias(f"m{i}.x"),
                 codes(j["quadrant"], list(QUADRANTS)).cast(pl.Int8).alias(f"m{i}.q")]
        if "stability" in q.columns:
            cols.append(j["stability"].cast(pl.Float64).fill_null(np.nan).alias(f"m{i}.stability"))
        pf = j["p_fusion"].cast(pl.Float64)
        y = pf if y is None else y.fill_null(pf)
        models.append({"name": m, "stability": "stability" in q.columns})
    cols.append((y if y is not None else pl.Series([None] * ids.height, dtype=pl.Float64)).fill_null(np.nan).alias("y"))
    sc = ids.join(scores.select("segment_id", "score", *components), on="segment_id", how="left", maintain_order="left") if scores is not None else None
    for name, out in (("score", "score"), *((c, f"c.{c}") for c in components)):
        v = sc[name].cast(pl.Float64) if sc is not None else pl.Series([None] * ids.height, dtype=pl.Float64)
        cols.append(v.fill_null(np.nan).fill_nan(np.nan).alias(out))
    facts = {"n": ids.height, "label": labels, "split": splits, "meta": meta_values, "models": models, "components": components}
    return pl.DataFrame(cols), facts


def write(frame: pl.DataFrame, path: Path) -> None:
    """One uncompressed record batch: every column maps straight to a numpy view."""
    table = frame.to_arrow().combine_chunks()
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table, max_chunksize=max(1, table.num_rows))


# -- querying -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Query:
    """What the page shows: a unimodal model (index) and its filters, parsed from a query string."""

    model: int | None = None
    quadrants: tuple[int, ...] = ()
    label: int | None = None  # a code; -2: a value the store does not have (matches nothing)
    split: int | None = None
    meta: tuple[int, int] | None = None  # (column, code)
    smin: float | None = None
    smax: float | None = None
    stab: float | None = None
    box: tuple[float, float, float, float] | None = None  # x0, x1, y0, y1 in p(correct) of model and fusion


def _number(params: Mapping[str, str], key: str) -> float | None:
    v = params.get(key, "")
    if v == "":
        return None
    try:
        return float(v)
    except ValueError:
        raise StatsError(f"{key} must be a number, not {v[:40]!r}") from None


class Points:
    """The memory-mapped points file of one explorer entry, with the summary that names its codes."""

    def __init__(self, path: Path, summary: dict[str, Any]):
        self.path, self.summary = path, summary
        self.table = pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()
        self.n = self.table.num_rows
        self._ids = self.table.column("segment_id").chunk(0) if self.n else pa.array([], pa.large_string())
        self._cols: dict[str, np.ndarray] = {}
        self._last: tuple[Any, np.ndarray] | None = None  # the last query's rows, and the last sort
        self._sorted: tuple[Any, np.ndarray] | None = None
        self._lock = threading.Lock()

    def col(self, name: str) -> np.ndarray:
        if name not in self._cols:
            c = self.table.column(name)
            self._cols[name] = c.chunk(0).to_numpy(zero_copy_only=True) if c.num_chunks == 1 else c.to_numpy()
        return self._cols[name]

    # -- ids ----------------------------------------------------------------------------------
    def position(self, segment_id: str) -> int | None:
        """Row of ``segment_id`` (binary search in the sorted ids), None if it is not a point."""
        ids = self._ids
        i = bisect.bisect_left(range(self.n), segment_id, key=lambda k: ids[k].as_py())
        return i if i < self.n and ids[i].as_py() == segment_id else None

    def ids(self, rows: np.ndarray) -> list[str]:
        return self._ids.take(pa.array(rows, pa.int64())).to_pylist()

    # -- filters --------------------------------------------------------------------------------
    def parse(self, params: Mapping[str, str]) -> Query:
        """The query of a request's parameters; an unknown model or a malformed number is a StatsError."""
        s = self.summary
        names = [m["name"] for m in s["models"]]
        model = None
        if params.get("model"):
            if params["model"] not in names:
                raise StatsError(f"no unimodal model {params['model'][:80]!r} in the explorer (it has: {', '.join(names) or 'none'})")
            model = names.index(params["model"])
        elif names:
            model = 0
        qs = tuple(QUADRANTS.index(q) for q in params.get("q", "").split(",") if q in QUADRANTS)

        def code(key: str, values: list[str]) -> int | None:
            v = params.get(key, "")
            return None if v == "" else values.index(v) if v in values else -2

        meta = None
        metacol, metaval = params.get("metacol", ""), params.get("metaval", "")
        if metacol in s["meta"] and metaval != "":
            vals = s["meta"][metacol]
            meta = (list(s["meta"]).index(metacol), vals.index(metaval) if metaval in vals else -2)
        box = None
        if params.get("box"):
            try:
                x0, x1, y0, y1 = (float(v) for v in params["box"].split(","))
            except ValueError:
                raise StatsError("box must be four numbers: x0,x1,y0,y1") from None
            box = (min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1))
        return Query(model, qs, code("label", s["label"]), code("split", s["split"]), meta, _number(params, "smin"),
                     _number(params, "smax"), _number(params, "stab"), box)

    def rows(self, q: Query) -> np.ndarray:
        """Rows (ascending) that pass ``q``: the page's definition, one boolean mask per filter."""
        with self._lock:
            if self._last is not None and self._last[0] == q:
                return self._last[1]
        keep = np.ones(self.n, dtype=bool)
        if q.label is not None:
            keep &= self.col("label") == q.label
        if q.split is not None:
            keep &= self.col("split") == q.split
        if q.meta is not None:
            keep &= self.col(f"meta.{q.meta[0]}") == q.meta[1]
        if q.quadrants:
            keep &= np.isin(self.col(f"m{q.model}.q"), q.quadrants) if q.model is not None else False
        if q.smin is not None or q.smax is not None:
            s = self.col("score")
            if q.smin is not None:
                keep &= s >= q.smin  # NaN (no score) compares False: left out, as in the page before
            if q.smax is not None:
                keep &= s <= q.smax
        if q.stab is not None and q.model is not None and self.summary["models"][q.model]["stability"]:
            keep &= self.col(f"m{q.model}.stability") >= q.stab
        if q.box is not None:
            if q.model is None:
                keep &= False
            else:
                x, y = self.col(f"m{q.model}.x"), self.col("y")
                keep &= (x >= q.box[0]) & (x <= q.box[1]) & (y >= q.box[2]) & (y <= q.box[3])
        out = np.flatnonzero(keep)
        with self._lock:
            self._last = (q, out)
        return out

    def counts(self, q: Query, rows: np.ndarray) -> dict[str, int]:
        """Quadrant counts of model ``q.model`` over ``rows``: exact, whatever the scatter draws."""
        if q.model is None:
            return dict.fromkeys(QUADRANTS, 0)
        c = np.bincount(self.col(f"m{q.model}.q")[rows].astype(np.int64) + 1, minlength=len(QUADRANTS) + 1)
        return {name: int(c[k + 1]) for k, name in enumerate(QUADRANTS)}

    # -- the table ----------------------------------------------------------------------------------
    def columns(self, q: Query, metacol: str = "") -> list[str]:
        """The table's columns: the page shows them in this order."""
        cols = ["segment_id", "quadrant", "label", "split", "p_unimodal", "p_fusion", "score"]
        if q.model is not None and self.summary["models"][q.model]["stability"]:
            cols.append("stability")
        cols += [f"c:{c}" for c in self.summary["components"]]
        if metacol in self.summary["meta"]:
            cols.append("meta")
        return cols

    def _key(self, q: Query, column: str, metacol: str) -> np.ndarray | None:
        """A numeric sort key per row (NaN: missing), None for the id order. Categories sort by their code
        (their sorted values; quadrants in QUADRANTS order)."""
        m = q.model
        codes_of = {"label": "label", "split": "split"}
        if column == "segment_id":
            return None
        if column == "quadrant" and m is not None:
            return self._code_key(self.col(f"m{m}.q"))
        if column in codes_of:
            return self._code_key(self.col(codes_of[column]))
        if column == "meta" and metacol in self.summary["meta"]:
            return self._code_key(self.col(f"meta.{list(self.summary['meta']).index(metacol)}"))
        if column == "p_unimodal" and m is not None:
            return self.col(f"m{m}.x")
        if column == "p_fusion":
            return self.col("y")
        if column == "stability" and m is not None and self.summary["models"][m]["stability"]:
            return self.col(f"m{m}.stability")
        if column.startswith("c:") and column[2:] in self.summary["components"]:
            return self.col(f"c.{column[2:]}")
        return self.col("score")

    @staticmethod
    def _code_key(c: np.ndarray) -> np.ndarray:
        return np.where(c >= 0, c, np.nan).astype(np.float64)

    def order(self, q: Query, rows: np.ndarray, column: str, desc: bool, metacol: str = "") -> np.ndarray:
        """``rows`` sorted by ``column`` (missing last either way; ties in id order), cached for paging."""
        tag = (q, column, desc, metacol)
        with self._lock:
            if self._sorted is not None and self._sorted[0] == tag:
                return self._sorted[1]
        key = self._key(q, column, metacol)
        if key is None:
            out = rows[::-1] if desc else rows
        else:
            k = key[rows].astype(np.float64)
            k = np.where(np.isnan(k), np.inf, -k if desc else k)
            out = rows[np.argsort(k, kind="stable")]  # stable: ties keep the ascending id order
        with self._lock:
            self._sorted = (tag, out)
        return out

    def records(self, q: Query, rows: np.ndarray, metacol: str = "") -> list[dict[str, Any]]:
        """The table's rows (numbers rounded to 4 decimals; missing: None)."""
        s, m = self.summary, q.model
        ids = self.ids(rows)

        def num(name: str) -> list[float | None]:
            v = np.round(self.col(name)[rows].astype(np.float64), 4)
            return [None if x != x else x for x in v.tolist()]

        def cat(name: str, values: list[str]) -> list[str | None]:
            return [values[c] if c >= 0 else None for c in self.col(name)[rows].tolist()]

        cols: dict[str, list[Any]] = {"segment_id": ids}
        cols["quadrant"] = cat(f"m{m}.q", list(QUADRANTS)) if m is not None else [None] * len(ids)
        cols["label"], cols["split"] = cat("label", s["label"]), cat("split", s["split"])
        cols["p_unimodal"] = num(f"m{m}.x") if m is not None else [None] * len(ids)
        cols["p_fusion"], cols["score"] = num("y"), num("score")
        if m is not None and s["models"][m]["stability"]:
            cols["stability"] = num(f"m{m}.stability")
        for c in s["components"]:
            cols[f"c:{c}"] = num(f"c.{c}")
        if metacol in s["meta"]:
            cols["meta"] = cat(f"meta.{list(s['meta']).index(metacol)}", s["meta"][metacol])
        return [dict(zip(cols, vals, strict=True)) for vals in zip(*cols.values(), strict=True)]

    # -- the scatter ----------------------------------------------------------------------------------
    def drawn(self, q: Query, rows: np.ndarray) -> np.ndarray:
        """The rows with a position and a quadrant in model ``q.model`` (what the scatter can draw)."""
        if q.model is None:
            return rows[:0]
        x, y, qq = self.col(f"m{q.model}.x")[rows], self.col("y")[rows], self.col(f"m{q.model}.q")[rows]
        return rows[~np.isnan(x) & ~np.isnan(y) & (qq >= 0)]

    def points(self, q: Query, rows: np.ndarray) -> dict[str, Any]:
        """The drawn points of ``rows`` (ids, positions to 3 decimals, quadrant codes, stability)."""
        rows = self.drawn(q, rows)
        m = q.model
        out: dict[str, Any] = {"mode": "points", "n": int(rows.size), "ids": self.ids(rows)}
        if m is None:
            return out | {"x": [], "y": [], "q": []}
        out["x"] = np.round(self.col(f"m{m}.x")[rows], 3).tolist()
        out["y"] = np.round(self.col("y")[rows], 3).tolist()
        out["q"] = self.col(f"m{m}.q")[rows].tolist()
        if self.summary["models"][m]["stability"]:
            st = self.col(f"m{m}.stability")[rows]
            out["stability"] = [None if v != v else v for v in np.round(st, 3).tolist()]
        return out

    def density(self, q: Query, rows: np.ndarray, w: int, h: int) -> tuple[bytes, int]:
        """A w x h grid of the drawn points of ``rows``: each cell's count (uint32, little-endian) then the
        quadrant with most points there (uint8; ties: the first in QUADRANTS), row by row from the top.
        Returns (bytes, points binned)."""
        rows = self.drawn(q, rows)
        nq = len(QUADRANTS)
        x, y, qq = self.col(f"m{q.model}.x")[rows], self.col("y")[rows], self.col(f"m{q.model}.q")[rows]
        bx = np.minimum(w - 1, (x * w).astype(np.int64)).clip(0)
        by = np.minimum(h - 1, ((1 - y) * h).astype(np.int64)).clip(0)
        c = np.bincount((by * w + bx) * nq + qq, minlength=w * h * nq).reshape(w * h, nq)
        total = c.sum(axis=1).astype("<u4")
        best = c.argmax(axis=1).astype(np.uint8)
        return total.tobytes() + best.tobytes(), int(rows.size)

    def nearest(self, q: Query, rows: np.ndarray, x: float, y: float, rx: float, ry: float) -> int | None:
        """The drawn row nearest (x, y) in the ellipse of radii (rx, ry), None if none is inside."""
        rows = self.drawn(q, rows)
        if not rows.size or rx <= 0 or ry <= 0:
            return None
        d = ((self.col(f"m{q.model}.x")[rows] - x) / rx) ** 2 + ((self.col("y")[rows] - y) / ry) ** 2
        k = int(np.argmin(d))
        return int(rows[k]) if d[k] <= 1 else None
