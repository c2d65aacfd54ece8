"""Read OpenFace 2.x ``FeatureExtraction`` CSVs and summarise action units per segment.

Two layouts exist (OpenFace's ``RecorderCSV.cpp``):

- 2.0: ``frame, timestamp, confidence, success, [gaze], [pose], [landmarks], [params], AUxx_r..., AUxx_c...``
- 2.2: ``frame, face_id, timestamp, confidence, success, ...`` (the same blocks after it, the gaze
  block with ``gaze_angle_*`` and ``eye_lmk_*`` columns).

Columns are found by name, so any subset of output blocks parses. OpenFace
separates with ``", "``: names and values carry a leading space, stripped here.
The intensity AUs (``_r``) and occurrence AUs (``_c``) differ: AU28 is only an
occurrence output.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from ambiguity.errors import ExtractorError
from ambiguity.extractors.base import Empty, Result

#: Intensity outputs of OpenFace 2.x (0-5 scale), in its sorted column order.
AU_R = ("AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12", "AU14", "AU15", "AU17", "AU20", "AU23", "AU25", "AU26", "AU45")
#: Occurrence outputs (0/1): the intensity AUs plus AU28 (lip suck).
AU_C = ("AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12", "AU14", "AU15", "AU17", "AU20", "AU23", "AU25", "AU26", "AU28", "AU45")

REQUIRED = ("frame", "timestamp", "confidence", "success")


class OpenFaceOutputError(ExtractorError):
    """An OpenFace CSV is missing, empty, malformed or lacks a column we need."""


def feature_names() -> list[str]:
    """The per-segment output columns, in order."""
    return [f"{au}_r_mean" for au in AU_R] + [f"{au}_c_rate" for au in AU_C] + ["frames_total", "frames_valid"]


@dataclass(frozen=True)
class Frames:
    """The rows of one OpenFace CSV that we use, as arrays (one row per frame and face)."""

    layout: str  # "2.0" (no face_id column) or "2.2"
    frame: np.ndarray
    face_id: np.ndarray
    timestamp: np.ndarray
    confidence: np.ndarray
    success: np.ndarray
    au_r: np.ndarray  # (rows, len(AU_R)) intensities
    au_c: np.ndarray  # (rows, len(AU_C)) occurrences

    def __len__(self) -> int:
        return len(self.frame)


def read_csv(path: str | Path) -> Frames:
    """Parse an OpenFace CSV; raise OpenFaceOutputError saying what is wrong with it."""
    import polars as pl

    path = Path(path)
    if not path.exists():
        raise OpenFaceOutputError(f"OpenFace wrote no CSV at {path}")
    try:
        with path.open("r", encoding="utf-8", errors="replace") as fh:
            header = fh.readline()
    except OSError as exc:
        raise OpenFaceOutputError(f"cannot read OpenFace CSV {path}: {exc}") from None
    if not header.strip():
        raise OpenFaceOutputError(f"OpenFace CSV {path.name} is empty (OpenFace could not read the video?)")
    raw = header.rstrip("\r\n").split(",")
    names = [n.strip() for n in raw]
    by_name = {n: r for n, r in zip(names, raw, strict=True)}
    layout = "2.2" if "face_id" in by_name else "2.0"
    wanted = list(REQUIRED) + (["face_id"] if layout == "2.2" else [])
    wanted += [f"{au}_r" for au in AU_R] + [f"{au}_c" for au in AU_C]
    missing = [w for w in wanted if w not in by_name]
    if missing:
        hint = " (was FeatureExtraction run with -aus?)" if missing[0].startswith("AU") else ""
        raise OpenFaceOutputError(
            f"OpenFace CSV {path.name} has no column {missing[0]!r}{hint}"
            + (f" ({len(missing)} missing in all)" if len(missing) > 1 else "")
        )
    try:
        df = pl.read_csv(path, infer_schema=False, columns=[by_name[w] for w in wanted], truncate_ragged_lines=False)
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise OpenFaceOutputError(f"malformed OpenFace CSV {path.name}: {str(exc).splitlines()[0]}") from None
    if df.height == 0:
        raise OpenFaceOutputError(f"OpenFace CSV {path.name} has a header but no rows (OpenFace read no frame)")
    cols: dict[str, np.ndarray] = {}
    for w in wanted:
        s = df[by_name[w]].str.strip_chars()
        num = s.cast(pl.Float64, strict=False)
        bad = num.is_null()  # unparseable or blank
        if bad.any():
            i = int(cast(int, bad.arg_max()))  # any() above: a True exists
            what = "is blank (a short row?)" if s[i] is None or s[i] == "" else f"holds {s[i]!r}, not a number"
            raise OpenFaceOutputError(f"malformed OpenFace CSV {path.name}: line {i + 2}, column {w!r} {what}")
        cols[w] = num.to_numpy()
    n = df.height
    return Frames(
        layout=layout,
        frame=cols["frame"].astype(np.int64),
        face_id=cols["face_id"].astype(np.int64) if layout == "2.2" else np.zeros(n, np.int64),
        timestamp=cols["timestamp"],
        confidence=cols["confidence"],
        success=cols["success"],
        au_r=np.column_stack([cols[f"{au}_r"] for au in AU_R]),
        au_c=np.column_stack([cols[f"{au}_c"] for au in AU_C]),
    )


def choose_face(face_id: np.ndarray, confidence: np.ndarray) -> int:
    """The face track a segment is measured on, among its valid rows.

    The track with the most valid frames; ties go to the higher mean confidence,
    then to the lower face_id. (FeatureExtraction tracks one face and writes
    face_id 0; FaceLandmarkVidMulti writes one row per tracked face.)
    """
    ids = np.unique(face_id)
    if len(ids) == 1:
        return int(ids[0])
    best = min(ids, key=lambda f: (-(face_id == f).sum(), -confidence[face_id == f].mean(), f))
    return int(best)


def summarize(
    frames: Frames, start_s: float | None, end_s: float | None, min_confidence: float
) -> Result:
    """AU means and activation rates over the frames with ``start_s <= timestamp < end_s``.

    Valid frames: ``success == 1`` and ``confidence >= min_confidence``, of the
    face chosen by :func:`choose_face`. ``frames_total`` counts the distinct
    frames in the window, ``frames_valid`` the valid frames of the chosen face.
    """
    ts = frames.timestamp
    lo = -np.inf if start_s is None else start_s
    hi = np.inf if end_s is None else end_s
    window = (ts >= lo) & (ts < hi)
    span = f"{'start' if start_s is None else f'{start_s:.3f} s'}–{'end' if end_s is None else f'{end_s:.3f} s'}"
    if not window.any():
        return Empty(f"OpenFace reported no frame in {span} (is the segment past the end of the video?)")
    total = len(np.unique(frames.frame[window]))
    valid = window & (frames.success >= 0.5) & (frames.confidence >= min_confidence)
    if not valid.any():
        return Empty(
            f"no tracked face in {total} frames of {span} (success = 1 and confidence >= {min_confidence:g})"
        )
    face = choose_face(frames.face_id[valid], frames.confidence[valid])
    rows = valid & (frames.face_id == face)
    out: dict[str, float | int] = {}
    r = frames.au_r[rows]
    c = frames.au_c[rows]
    for j, au in enumerate(AU_R):
        out[f"{au}_r_mean"] = float(r[:, j].mean())
    for j, au in enumerate(AU_C):
        out[f"{au}_c_rate"] = float((c[:, j] >= 0.5).mean())
    out["frames_total"] = int(total)
    out["frames_valid"] = int(rows.sum())
    return out
