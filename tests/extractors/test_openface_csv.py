"""The OpenFace CSV parser against a direct pandas computation on the same real files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ambiguity.extractors.base import Empty
from ambiguity.extractors.openface_csv import (
    AU_C,
    AU_R,
    OpenFaceOutputError,
    feature_names,
    read_csv,
    summarize,
)

HERE = Path(__file__).resolve().parent
FIXTURE_22 = HERE.parent / "data" / "openface" / "openface-2.2-layout.csv"


def pandas_reference(path: Path, start: float | None, end: float | None, thr: float, face: int | None = None) -> dict:
    """What the extractor must return, computed with pandas alone on the raw file."""
    df = pd.read_csv(path, skipinitialspace=True)
    df.columns = [c.strip() for c in df.columns]
    win = pd.Series(True, index=df.index)
    if start is not None:
        win &= df["timestamp"] >= start
    if end is not None:
        win &= df["timestamp"] < end
    valid = win & (df["success"] == 1) & (df["confidence"] >= thr)
    if face is not None:
        valid &= df["face_id"] == face
    v = df[valid]
    out = {f"{au}_r_mean": v[f"{au}_r"].mean() for au in AU_R}
    out |= {f"{au}_c_rate": (v[f"{au}_c"] == 1).mean() for au in AU_C}
    out["frames_total"] = df.loc[win, "frame"].nunique()
    out["frames_valid"] = len(v)
    return out


def assert_matches(got: dict, ref: dict) -> None:
    assert set(got) == set(feature_names()) == set(ref)
    for k in ref:
        assert got[k] == pytest.approx(ref[k], rel=1e-12, abs=1e-12), k


@pytest.mark.parametrize(
    "start,end,thr",
    [(None, None, 0.8), (0.0, 0.05, 0.8), (0.021, 0.0645, 0.8), (0.0, 0.1, 0.9)],
)
def test_real_openface_20_csv_matches_pandas(faces_dir, start, end, thr):
    path = faces_dir / "openface-2.0-sample.csv"
    frames = read_csv(path)
    assert frames.layout == "2.0" and len(frames) == 100
    got = summarize(frames, start, end, thr)
    # reference: pandas.read_csv(skipinitialspace=True) + boolean masks, see pandas_reference
    assert_matches(got, pandas_reference(path, start, end, thr))


def test_real_20_csv_confidence_threshold_keeps_only_confident_frames(faces_dir):
    path = faces_dir / "openface-2.0-sample.csv"
    got = summarize(read_csv(path), None, None, 0.9)
    # the real file has one frame with confidence 0.983333, 99 with 0.883333
    assert got["frames_valid"] == 1 and got["frames_total"] == 100
    assert_matches(got, pandas_reference(path, None, None, 0.9))


def test_22_fixture_follows_openface_column_order():
    # Order from OpenFace 2.2 RecorderCSV::Open: 5 identity columns, 8 gaze, 5 x 56 eye landmarks,
    # 6 pose, 2 x 68 2-D, 3 x 68 3-D landmarks, 6 + 34 shape parameters, 17 AU_r, 18 AU_c.
    names = [c.strip() for c in FIXTURE_22.read_text().splitlines()[0].split(",")]
    assert names[:5] == ["frame", "face_id", "timestamp", "confidence", "success"]
    assert names[5:13] == ["gaze_0_x", "gaze_0_y", "gaze_0_z", "gaze_1_x", "gaze_1_y", "gaze_1_z", "gaze_angle_x", "gaze_angle_y"]
    assert names[13] == "eye_lmk_x_0" and names[13 + 5 * 56 - 1] == "eye_lmk_Z_55"
    i = 13 + 5 * 56
    assert names[i : i + 6] == ["pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz"]
    i += 6
    assert names[i] == "x_0" and names[i + 136] == "X_0" and names[i + 136 + 204] == "p_scale"
    i += 136 + 204 + 40
    assert names[i : i + 2] == ["AU01_r", "AU02_r"] and names[i + 17] == "AU01_c" and names[-2:] == ["AU28_c", "AU45_c"]
    assert len(names) == i + 35


@pytest.mark.parametrize("start,end", [(None, None), (0.5, 2.0), (1.0, 1.5)])
def test_22_layout_matches_pandas_and_drops_failed_and_weak_frames(start, end):
    frames = read_csv(FIXTURE_22)
    assert frames.layout == "2.2"
    got = summarize(frames, start, end, 0.8)
    assert_matches(got, pandas_reference(FIXTURE_22, start, end, 0.8))


def test_22_layout_excluded_frames_would_change_the_result():
    got = summarize(read_csv(FIXTURE_22), None, None, 0.8)
    # 100 frames; frames ending in 3 are failed (success 0), frames ending in 7 weak (confidence 0.55)
    assert (got["frames_total"], got["frames_valid"]) == (100, 80)
    everything = pandas_reference(FIXTURE_22, None, None, 0.0)  # no confidence filter ...
    df = pd.read_csv(FIXTURE_22, skipinitialspace=True)
    # ... and no success filter: the means of all 100 rows differ from ours for some AU
    all_means = np.array([df[f"{au}_r"].mean() for au in AU_R])
    ours = np.array([got[f"{au}_r_mean"] for au in AU_R])
    assert not np.allclose(all_means, ours)
    assert everything["frames_valid"] == 90


def test_several_faces_use_the_track_with_most_valid_frames(tmp_path):
    lines = FIXTURE_22.read_text().splitlines()
    header, rows = lines[0], lines[1:]
    # face 0: the first 30 rows; face 1: rows 31-100 re-stamped onto the same frames 1-70 (more frames)
    out = [header, *rows[:30]]
    for k, line in enumerate(rows[30:]):
        cells = line.split(", ")
        cells[0], cells[1], cells[2] = str(k + 1), "1", f"{k / 30:.3f}"
        out.append(", ".join(cells))
    path = tmp_path / "multi.csv"
    path.write_text("\n".join(out) + "\n")
    frames = read_csv(path)
    got = summarize(frames, None, None, 0.8)
    # reference: pandas on the rows of face_id 1 only; frames_total counts distinct frame numbers (70)
    ref = pandas_reference(path, None, None, 0.8, face=1)
    assert_matches(got, ref)
    assert got["frames_total"] == 70
    # on the first second both faces exist; face 1 (frames 1-30, 24 valid) ties face 0 (24 valid)
    # on frame count, and the tie goes to the higher mean confidence
    early = summarize(frames, 0.0, 1.0, 0.8)
    f0 = pandas_reference(path, 0.0, 1.0, 0.8, face=0)
    f1 = pandas_reference(path, 0.0, 1.0, 0.8, face=1)
    df = pd.read_csv(path, skipinitialspace=True)
    ok = (df["success"] == 1) & (df["confidence"] >= 0.8) & (df["timestamp"] < 1.0)
    conf = df[ok].groupby("face_id")["confidence"].mean()
    want = f1 if (f1["frames_valid"], conf[1]) > (f0["frames_valid"], conf[0]) else f0
    assert_matches(early, want)


def test_no_valid_frame_is_empty_with_the_reason():
    got = summarize(read_csv(FIXTURE_22), 0.0, 1.0, 0.99)
    assert isinstance(got, Empty) and "confidence >= 0.99" in got.reason and "30 frames" in got.reason
    past = summarize(read_csv(FIXTURE_22), 50.0, 60.0, 0.8)
    assert isinstance(past, Empty) and "no frame" in past.reason


def test_bad_files_raise_with_what_is_wrong(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(OpenFaceOutputError, match="is empty"):
        read_csv(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text(FIXTURE_22.read_text().splitlines()[0] + "\n")
    with pytest.raises(OpenFaceOutputError, match="no rows"):
        read_csv(header_only)
    with pytest.raises(OpenFaceOutputError, match="no CSV"):
        read_csv(tmp_path / "absent.csv")

    lines = FIXTURE_22.read_text().splitlines()
    names = [c.strip() for c in lines[0].split(",")]
    bad = lines[1].split(", ")
    bad[names.index("AU12_r")] = "abc"
    garbage = tmp_path / "garbage.csv"
    garbage.write_text("\n".join([lines[0], lines[2], ", ".join(bad)]) + "\n")
    with pytest.raises(OpenFaceOutputError, match=r"line 3, column 'AU12_r' holds 'abc'"):
        read_csv(garbage)

    short = tmp_path / "short.csv"
    short.write_text("\n".join([lines[0], ", ".join(lines[1].split(", ")[:20])]) + "\n")
    with pytest.raises(OpenFaceOutputError, match="blank"):
        read_csv(short)

    no_au12 = tmp_path / "no_au12.csv"
    keep = [i for i, n in enumerate(names) if n != "AU12_c"]
    no_au12.write_text("\n".join(", ".join(line.split(", ")[i] for i in keep) for line in lines) + "\n")
    with pytest.raises(OpenFaceOutputError, match="no column 'AU12_c'.*-aus"):
        read_csv(no_au12)
