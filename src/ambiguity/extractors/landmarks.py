"""Geometric facial cues from dlib's 68 landmarks: a pip-only stand-in for OpenFace.

Per sampled frame: dlib's HOG frontal face detector, the 68-point shape predictor
shipped by ``face-recognition-models``, then distances between landmarks,
normalised by the inter-ocular distance (between the eye centres) after turning
the face upright (eye line horizontal). Head pose comes from ``cv2.solvePnP`` with
a generic 3-D face model. Per segment: mean and standard deviation of each cue,
the share of valid frames past a documented threshold, ``frames_total`` and
``frames_valid``.

These are geometric proxies, not FACS-coded action units: see docs/faces.md for
what each cue approximates and where the thresholds come from.
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from ambiguity.errors import ExtractorError, UnavailableError
from ambiguity.extractors.base import Empty, Extractor, Failure, Result
from ambiguity.inputs import SegmentInput


@dataclass(frozen=True)
class Cue:
    name: str
    approximates: str  # the action unit(s) it stands in for
    above: bool  # active when the value is above (True) or below (False) the threshold
    threshold: float
    rate: str = ""  # name of the activation-rate column: ``<name>_rate`` unless it says otherwise

    def __post_init__(self) -> None:
        if not self.rate:
            object.__setattr__(self, "rate", f"{self.name}_rate")


#: The cues, their activation direction and default thresholds (docs/faces.md says why).
CUES: tuple[Cue, ...] = (
    Cue("inner_brow_raise", "AU1", True, 0.45),
    Cue("outer_brow_raise", "AU2", True, 0.35),
    Cue("brow_gap", "AU4 (smaller: brows lowered and drawn together)", False, 0.33, "brow_lowering_rate"),
    Cue("eye_opening", "AU5 (larger) / AU7, AU43 (smaller)", True, 0.18, "eye_widening_rate"),
    Cue("eye_aspect_ratio", "AU45 blink, AU43 eyes closed (small)", False, 0.20, "blink_rate"),
    Cue("lip_corner_pull", "AU12 (positive) / AU15 (negative)", True, 0.10),
    Cue("lip_stretch", "AU20 (mouth width; AU12 widens it too)", True, 1.00),
    Cue("mouth_opening", "AU25 lips part", True, 0.10),
    Cue("jaw_drop", "AU26 / AU27", True, 1.25),
    Cue("head_pitch", "head up/down (AU53/54)", True, 15.0),
    Cue("head_yaw", "head turn (AU51/52)", True, 15.0),
    Cue("head_roll", "head tilt (AU55/56)", True, 15.0),
)
CUE_NAMES = tuple(c.name for c in CUES)
#: Head-pose cues are judged by their absolute value (degrees either way).
ABSOLUTE = ("head_pitch", "head_yaw", "head_roll")

# Generic 3-D face model (arbitrary units, about 0.1 mm) for solvePnP: the widely used
# six-point model (nose tip, chin, outer eye corners, mouth corners) of Mallick (2016),
# "Head Pose Estimation using OpenCV and Dlib", with y and z flipped so that a face looking
# straight at the camera has zero rotation in OpenCV's camera frame (x right, y down, z forward).
MODEL_POINTS = np.array(
    [
        (0.0, 0.0, 0.0),  # nose tip (30)
        (0.0, 330.0, 65.0),  # chin (8)
        (-225.0, -170.0, 135.0),  # outer corner of the eye on the image's left (36)
        (225.0, -170.0, 135.0),  # outer corner of the eye on the image's right (45)
        (-150.0, 150.0, 125.0),  # mouth corner, image left (48)
        (150.0, 150.0, 125.0),  # mouth corner, image right (54)
    ],
    dtype=np.float64,
)
MODEL_INDEX = [30, 8, 36, 45, 48, 54]


def predictor_path() -> str | None:
    """The 68-point model file of face-recognition-models, found without importing the package
    (its ``__init__`` imports ``pkg_resources``, which recent setuptools no longer ships)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = os.path.join(root, "models", "shape_predictor_68_face_landmarks.dat")
        if os.path.isfile(path):
            return path
    return None


def _dist(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.hypot(*(a - b)))


def head_pose(points: np.ndarray, width: int, height: int) -> tuple[float, float, float]:
    """(pitch, yaw, roll) in degrees from six landmarks and the generic model.

    Camera: focal length = image width in pixels, principal point at the image
    centre, no distortion. Angles are the x-y-z Euler decomposition of the
    rotation (R = Rz(roll) Ry(yaw) Rx(pitch)); pitch > 0: chin down, yaw > 0:
    face turned toward the image's left, roll > 0: clockwise in the image (the
    eye on the image's right lower).
    """
    import cv2

    image = points[MODEL_INDEX].astype(np.float64)
    f = float(width)
    cam = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=np.float64)
    ok, rvec, _tvec = cv2.solvePnP(MODEL_POINTS, image, cam, np.zeros(4), flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return (math.nan, math.nan, math.nan)
    r, _ = cv2.Rodrigues(rvec)
    pitch = math.degrees(math.atan2(r[2, 1], r[2, 2]))
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, -r[2, 0]))))
    roll = math.degrees(math.atan2(r[1, 0], r[0, 0]))
    return pitch, yaw, roll


def frame_cues(points: np.ndarray, width: int, height: int) -> dict[str, float] | None:
    """Every cue for one face (68 x 2 landmark array, image pixels); None if degenerate."""
    pts = np.asarray(points, dtype=np.float64)
    left_eye = pts[36:42].mean(axis=0)  # the eye on the image's left (the subject's right)
    right_eye = pts[42:48].mean(axis=0)
    iod = _dist(left_eye, right_eye)
    if not np.isfinite(iod) or iod < 1e-6:
        return None
    # Upright frame: origin between the eyes, x along the eye line, y down, unit = inter-ocular distance.
    ex, ey = (right_eye - left_eye) / iod
    rot = np.array([[ex, ey], [-ey, ex]])
    p = (pts - (left_eye + right_eye) / 2) @ rot.T / iod
    y = p[:, 1]
    eye_open = [(y[41] - y[37] + y[40] - y[38]) / 2, (y[47] - y[43] + y[46] - y[44]) / 2]
    # Eye aspect ratio (Soukupova & Cech 2016): (|p2-p6| + |p3-p5|) / (2 |p1-p4|), per eye.
    ear = [
        (_dist(p[37], p[41]) + _dist(p[38], p[40])) / (2 * _dist(p[36], p[39])),
        (_dist(p[43], p[47]) + _dist(p[44], p[46])) / (2 * _dist(p[42], p[45])),
    ]
    mouth_mid = (y[51] + y[57]) / 2
    pitch, yaw, roll = head_pose(pts, width, height)
    return {
        "inner_brow_raise": float(((y[39] - y[21]) + (y[42] - y[22])) / 2),
        "outer_brow_raise": float(((y[36] - y[17]) + (y[45] - y[26])) / 2),
        "brow_gap": _dist(p[21], p[22]),
        "eye_opening": float(np.mean(eye_open)),
        "eye_aspect_ratio": float(np.mean(ear)),
        "lip_corner_pull": float(mouth_mid - (y[48] + y[54]) / 2),
        "lip_stretch": _dist(p[48], p[54]),
        "mouth_opening": _dist(p[62], p[66]),
        "jaw_drop": _dist(p[33], p[8]),
        "head_pitch": pitch,
        "head_yaw": yaw,
        "head_roll": roll,
    }


def summarize_cues(per_frame: list[dict[str, float] | None], thresholds: dict[str, float]) -> Result:
    """Mean, standard deviation (ddof 0) and activation rate of each cue over the valid frames."""
    valid = [c for c in per_frame if c is not None]
    if not per_frame:
        return Empty("no frame sampled (segment shorter than one frame at this fps?)")
    if not valid:
        return Empty(f"no face found in {len(per_frame)} sampled frames")
    out: dict[str, Any] = {}
    for cue in CUES:
        v = np.array([c[cue.name] for c in valid], dtype=np.float64)
        v = v[np.isfinite(v)]
        if len(v) == 0:
            out[f"{cue.name}_mean"] = out[f"{cue.name}_std"] = out[cue.rate] = None
            continue
        out[f"{cue.name}_mean"] = float(v.mean())
        out[f"{cue.name}_std"] = float(v.std())
        x = np.abs(v) if cue.name in ABSOLUTE else v
        t = thresholds[cue.name]
        out[cue.rate] = float(np.mean(x > t) if cue.above else np.mean(x < t))
    out["frames_total"] = len(per_frame)
    out["frames_valid"] = len(valid)
    return out


@dataclass(frozen=True)
class LandmarksParams:
    #: Frames sampled per second of each segment.
    fps: float = 10.0
    #: Times the detector upsamples the image (finds smaller faces, about 4x slower each).
    upsample: int = 0
    #: Frames wider than this are shrunk for detection only (0: never); landmarks use full resolution.
    detect_width: int = 640
    #: Overrides of activation thresholds, "cue=value" (e.g. "eye_aspect_ratio=0.18").
    thresholds: tuple[str, ...] = ()


class Landmarks(Extractor):
    """dlib 68-point landmarks -> geometric cues per segment (mean, SD, activation rate)."""

    name = "landmarks"
    modality = "video"
    version = "1"
    Params = LandmarksParams
    requires = ("dlib", "cv2", "face_recognition_models")
    kind = "cpu"
    batch_size = 4

    def __init__(self, **params: Any):
        super().__init__(**params)
        self._detector: Any = None  # dlib objects, made in setup()
        self._predictor: Any = None

    def validate(self) -> None:
        p = self.params
        if not p.fps > 0:
            raise ExtractorError(f"landmarks: fps={p.fps} must be positive")
        if p.upsample < 0 or p.detect_width < 0:
            raise ExtractorError(f"landmarks: upsample={p.upsample} and detect_width={p.detect_width} must be >= 0")
        self.threshold_map()

    def threshold_map(self) -> dict[str, float]:
        """Default thresholds with the ``thresholds`` overrides applied."""
        out = {c.name: c.threshold for c in CUES}
        for item in self.params.thresholds:
            key, sep, value = str(item).partition("=")
            key = key.strip()
            if not sep or key not in out:
                raise ExtractorError(
                    f"landmarks: threshold {item!r}: use cue=value with a cue among {', '.join(CUE_NAMES)}"
                )
            try:
                out[key] = float(value)
            except ValueError:
                raise ExtractorError(f"landmarks: threshold {item!r}: {value!r} is not a number") from None
        return out

    @classmethod
    def unavailable_reason(cls) -> str | None:
        reason = super().unavailable_reason()
        if reason:
            return reason + " (pip install 'ambiguity[video]')"
        if predictor_path() is None:
            return "face-recognition-models has no shape_predictor_68_face_landmarks.dat: reinstall it"
        return None

    def columns(self) -> list[pa.Field]:
        cols = []
        for c in CUES:
            cols += [pa.field(f"{c.name}_mean", pa.float64()), pa.field(f"{c.name}_std", pa.float64())]
        cols += [pa.field(c.rate, pa.float64()) for c in CUES]
        return cols + [pa.field("frames_total", pa.int64()), pa.field("frames_valid", pa.int64())]

    def setup(self) -> None:
        import cv2
        import dlib

        cv2.setNumThreads(1)  # one frame at a time; parallelism comes from the process pool
        path = predictor_path()
        if path is None:
            raise UnavailableError(self.unavailable_reason() or "68-point predictor file not found")
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(path)

    def landmarks(self, rgb: np.ndarray) -> np.ndarray | None:
        """68 x 2 landmarks of the largest detected face, or None."""
        import cv2
        import dlib

        if self._detector is None:
            self.setup()
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        h, w = gray.shape
        scale = 1.0
        small = gray
        if self.params.detect_width and w > self.params.detect_width:
            scale = self.params.detect_width / w
            small = cv2.resize(gray, (self.params.detect_width, max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        found = self._detector(small, self.params.upsample)
        if len(found) == 0:
            return None
        best = max(found, key=lambda r: r.width() * r.height())
        rect = dlib.rectangle(
            round(best.left() / scale), round(best.top() / scale), round(best.right() / scale), round(best.bottom() / scale)
        )
        shape = self._predictor(gray, rect)
        return np.array([(shape.part(i).x, shape.part(i).y) for i in range(68)], dtype=np.float64)

    def process(self, batch: Sequence[SegmentInput]) -> list[Result]:
        from ambiguity.media import MediaError, MissingTrack

        thresholds = self.threshold_map()
        out: list[Result] = []
        for seg in batch:
            try:
                frames = seg.frames(fps=self.params.fps)
            except MissingTrack as exc:  # an audio-only segment: no face to look for
                out.append(Empty(str(exc).splitlines()[0]))
                continue
            except (MediaError, ExtractorError) as exc:
                out.append(Failure(str(exc).splitlines()[0]))
                continue
            per_frame = []
            for _t, img in frames:
                pts = self.landmarks(img)
                per_frame.append(None if pts is None else frame_cues(pts, img.shape[1], img.shape[0]))
            out.append(summarize_cues(per_frame, thresholds))
        return out
