"""Manifest reading: formats, column mapping, path resolution, validation of every problem at once."""

from __future__ import annotations

import json

import polars as pl
import pytest

from ambiguity.errors import ManifestError
from ambiguity.segments import assign_splits, load_manifest


@pytest.fixture
def media(tmp_path):
    d = tmp_path / "media"
    d.mkdir()
    for name in ("a.wav", "b.wav", "dlg 1 ü.mp4"):
        (d / name).write_bytes(b"x")
    return d


def test_all_problems_reported_with_row_numbers(tmp_path, media):
    man = tmp_path / "m.csv"
    man.write_text(
        "segment_id,media,start_s,end_s,split,label\n"
        "s1,media/a.wav,0,1,train,1\n"
        "s1,media/b.wav,0,1,train,0\n"  # duplicate id
        "s3,media/a.wav,2,1,test,1\n"  # end <= start
        "s4,media/a.wav,-1,1,val,0\n"  # negative
        "s5,media/missing.wav,0,1,train,1\n"  # missing file
        "s6,media/a.wav,0,1,holdout,1\n"  # unknown split
        "s7,media/a.wav,abc,1,train,1\n"  # not a number
    )
    with pytest.raises(ManifestError) as err:
        load_manifest(man)
    problems = err.value.problems
    text = "\n".join(problems)
    assert "row 2: duplicate segment_id 's1'" in text and "row 3: duplicate segment_id 's1'" in text
    assert "row 4: end_s 1.0 <= start_s 2.0" in text
    assert "row 5: start_s -1.0 is negative" in text
    assert "row 6: media file not found" in text
    assert "row 7: unknown split 'holdout'" in text
    assert "row 8: start_s 'abc' is not a number" in text
    assert len(problems) == 7


def test_mapping_and_media_template(tmp_path, media):
    man = tmp_path / "dialogs.csv"
    man.write_text(
        "dialog_id,start_time,end_time,filename,transcript,label\n"
        'dlg 1 ü,0.5,2.0,seg_a,"hello, there",empathetic\n'
        "dlg 1 ü,2.0,3.5,seg_b,next,neutral\n"
    )
    t = load_manifest(
        man,
        columns={"filename": "segment_id", "start_time": "start_s", "end_time": "end_s"},
        media_template="media/{dialog_id}.mp4",
    )
    df = pl.from_arrow(t)
    assert df["segment_id"].to_list() == ["seg_a", "seg_b"]
    assert df["media"][0] == str((media / "dlg 1 ü.mp4").resolve())
    assert df["start_s"].to_list() == [0.5, 2.0]
    assert json.loads(df["metadata"][0]) == {"dialog_id": "dlg 1 ü"}
    assert set(df["split"]) <= {"train", "val", "test"}


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_parquet_and_jsonl(tmp_path, media, fmt):
    df = pl.DataFrame({"segment_id": ["x", "y"], "media": ["media/a.wav", "media/b.wav"], "label": ["1", "0"],
                       "split": ["train", "validation"], "speaker": ["A", "B"]})
    path = tmp_path / f"m.{fmt}"
    df.write_parquet(path) if fmt == "parquet" else df.write_ndjson(path)
    out = pl.from_arrow(load_manifest(path))
    assert out["split"].to_list() == ["train", "val"]
    assert out["start_s"].is_null().all()  # whole files
    assert json.loads(out["metadata"][1]) == {"speaker": "B"}


def test_empty_manifest_and_unknown_format(tmp_path):
    empty = tmp_path / "e.csv"
    empty.write_text("segment_id,media\n")
    with pytest.raises(ManifestError, match="no rows"):
        load_manifest(empty)
    with pytest.raises(ManifestError, match="unknown manifest format"):
        (tmp_path / "m.xlsx").write_text("x")
        load_manifest(tmp_path / "m.xlsx")


def test_reingest_upserts(store, tmp_path, media):
    man = tmp_path / "m.csv"
    man.write_text("segment_id,media,label\ns1,media/a.wav,0\ns2,media/b.wav,1\n")
    store.upsert_segments(load_manifest(man))
    man.write_text("segment_id,media,label\ns1,media/a.wav,1\ns3,media/b.wav,1\n")
    store.upsert_segments(load_manifest(man))
    seg = store.segments().sort("segment_id")
    assert seg["segment_id"].to_list() == ["s1", "s2", "s3"]
    assert seg["label"].to_list() == ["1", "1", "1"]


def test_split_assignment_is_stratified_and_seeded():
    labels = ["a"] * 50 + ["b"] * 30
    s1, s2 = assign_splits(labels, 3), assign_splits(labels, 3)
    assert s1 == s2 and s1 != assign_splits(labels, 4)
    a = [s for s, lab in zip(s1, labels, strict=True) if lab == "a"]
    assert (a.count("train"), a.count("val"), a.count("test")) == (40, 5, 5)


def test_split_option_is_checked_and_aliased(tmp_path, media):
    man = tmp_path / "m.csv"
    man.write_text(f"segment_id,media\na,{media / 'a.wav'}\n")
    assert load_manifest(man, split="Validation").column("split").to_pylist() == ["val"]
    with pytest.raises(ManifestError, match="m.csv: split 'nonsense': unknown split"):
        load_manifest(man, split="nonsense")


def test_an_unreadable_file_is_one_problem(tmp_path):
    bad = tmp_path / "m.parquet"
    bad.write_bytes(b"not a parquet file")
    with pytest.raises(ManifestError, match="cannot read the file: "):
        load_manifest(bad)


# -- mistakes a user makes with labels and --map (issue 24) ------------------------------------------
def test_map_onto_an_existing_column_and_label_lookalikes(tmp_path):
    from ambiguity.errors import ManifestError
    from ambiguity.segments import label_lookalikes, load_manifest

    p = tmp_path / "m.csv"
    p.write_text("segment_id,transcript,label,label3,Emotion\ns1,a,x,y,z\ns2,b,x,y,z\n")
    with pytest.raises(ManifestError, match=r"columns label3=label: the manifest already has a column 'label'"):
        load_manifest(p, columns={"label3": "label"})
    t = load_manifest(p, columns={"label": "label_orig", "label3": "label"})
    assert t.column("label").to_pylist() == ["y", "y"]
    with pytest.raises(ManifestError, match="all map onto 'label'"):
        load_manifest(p, columns={"label3": "label", "Emotion": "label", "label": "old"})
    assert label_lookalikes(["segment_id", "Label", "labels", "Emotion", "lable", "media"]) == ["Label", "labels", "Emotion", "lable"]
    q = tmp_path / "n.csv"
    q.write_text("segment_id,transcript,Label\ns1,a,x\n")
    with pytest.raises(ManifestError, match="'Label' looks like one: ingest with columns Label=label, or pass unlabelled"):
        load_manifest(q, unlabelled=False)
    assert load_manifest(q, unlabelled=True).column("label").null_count == 1  # on purpose
    assert load_manifest(q).column("label").null_count == 1  # the library does not check unless asked
