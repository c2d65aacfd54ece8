"""CLI: the project workflow, and user mistakes as one readable line with a non-zero exit."""

from __future__ import annotations

import subprocess
import sys

import polars as pl
import pytest
from click.testing import CliRunner

from ambiguity.cli import main


@pytest.fixture
def project(tmp_path, speech_dir, monkeypatch):
    monkeypatch.delenv("AMBIGUITY_STORE", raising=False)
    r = CliRunner().invoke(main, ["init", str(tmp_path / "proj")])
    assert r.exit_code == 0, r.output
    man = tmp_path / "proj" / "manifest.csv"
    lines = ["segment_id,media,start_s,end_s,label"]
    lines += [f"c{i},{speech_dir / f'0{i}.wav'},,,{i % 2}" for i in range(4)]
    lines.append(f"d0,{speech_dir / 'diarization-3speakers.wav'},0,6.3,1")
    man.write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(tmp_path / "proj")
    return tmp_path / "proj"


def invoke(args):
    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_workflow(project):
    r = invoke(["ingest", "manifest.csv"])
    assert r.exit_code == 0 and "ingested 5 segments" in r.output
    r = invoke(["extract", "--extractor", "prosody", "--param", "pitch_floor=70", "--workers", "1", "--quiet"])
    assert r.exit_code == 0 and "5 ok" in r.output, r.output
    r = invoke(["extract", "--extractor", "prosody", "--param", "pitch_floor=70", "--quiet"])
    assert "0 processed" in r.output and "5 already done" in r.output
    assert r.output.strip().splitlines()[-1] == "next: ambiguity train prosody"
    r = invoke(["status"])
    assert r.exit_code == 0 and "prosody" in r.output and "5" in r.output
    assert "leakage" not in r.output  # no group shared between splits: nothing to say
    r = invoke(["features", "prosody", "--out", "p.csv"])
    assert r.exit_code == 0
    df = pl.read_csv(project / "p.csv")
    assert df.height == 5 and "pitch_mean" in df.columns


def test_extractors_lists_availability():
    r = invoke(["extractors"])
    assert r.exit_code == 0
    assert "prosody" in r.output and "opensmile" in r.output and "audio" in r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["extract", "--extractor", "nope"], "unknown extractor 'nope'"),
        (["extract", "--extractor", "prosody", "--param", "pitch_floor=abc"], "is not a number"),
        (["extract", "--extractor", "prosody", "--param", "nonsense=1"], "has no parameter nonsense"),
        (["ingest", "missing.csv"], "file not found"),
        (["features", "nogroup", "--out", "x.csv"], "no feature group 'nogroup'"),
    ],
)
def test_user_errors_are_one_line(project, args, message):
    invoke(["ingest", "manifest.csv"])
    r = CliRunner().invoke(main, args)
    assert r.exit_code != 0
    out = r.output.strip()
    assert message in out
    assert "Traceback" not in out
    assert len(out.splitlines()) == 1, out


def test_bad_manifest_lists_every_problem(project, tmp_path):
    bad = project / "bad.csv"
    bad.write_text("segment_id,media,start_s,end_s\na,nothere.wav,0,1\na,nothere.wav,2,1\n")
    r = CliRunner().invoke(main, ["ingest", "bad.csv"])
    assert r.exit_code == 2
    assert "5 problems" in r.output  # 2 duplicates, 1 bad interval, 2 missing files
    assert "row 3: duplicate segment_id" in r.output and "Traceback" not in r.output


def test_no_project_and_unwritable_store_as_subprocess(tmp_path):
    env_cmd = [sys.executable, "-m", "ambiguity.cli.__main__"]
    r = subprocess.run([*env_cmd, "status"], cwd=tmp_path, capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no ambiguity.toml" in r.stderr
    r = subprocess.run([*env_cmd, "--store", "/proc/nope/store", "ingest", "x.csv"], cwd=tmp_path,
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_modality_with_a_model_runs_the_generic_embedder(project, tmp_path, speech_dir):
    # A tiny random RoBERTa saved to a folder, as a user's own model would be.
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("tiny_models", Path(__file__).parents[1] / "extractors" / "tiny_models.py")
    tiny = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tiny)
    path = tiny.text_model("roberta", tmp_path / "roberta")
    (project / "texts.csv").write_text(f"segment_id,media,transcript\nt1,{speech_dir / '00.wav'},so sorry\n")
    invoke(["ingest", "texts.csv"])
    r = invoke(["extract", "--modality", "text", "--model", str(path), "--quiet"])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("text.") and "text.minilm" not in r.output


EMPSPEECH_HEADER = "dialog_id,start_time,end_time,filename,transcript,label"


def test_empspeech_preset_three_files_and_leakage(project):
    # The EmpSpeech layout exactly as published: one CSV per split, many segments per video.
    (project / "videos").mkdir()
    for d in ("d1", "d2"):
        (project / "videos" / f"{d}.mp4").write_bytes(b"")  # ingest checks the file exists, nothing more
    files = {
        "train.csv": ["d1,0.0,1.5,d1_0.wav,I hear you,empathetic", "d1,1.5,3.0,d1_1.wav,ok,neutral",
                      "d2,0.0,2.0,d2_0.wav,that must hurt,empathetic"],
        "val.csv": ["d2,2.0,4.0,d2_1.wav,right,neutral"],
        "test.csv": ["d1,3.0,4.5,d1_2.wav,so sorry,empathetic", "d2,4.0,5.0,d2_2.wav,next,neutral"],
    }
    for name, rows in files.items():
        (project / name).write_text("\n".join([EMPSPEECH_HEADER, *rows]) + "\n")
    for name in files:
        r = invoke(["ingest", name, "--split", name.removesuffix(".csv"), "--preset", "empspeech"])
        assert r.exit_code == 0, r.output
    assert "dialog_id: 2 of 2 test groups also occur in train or val" in r.output
    assert "dialog_id: 1 of 1 val groups also occur in train or test" in r.output
    from ambiguity import open_store

    seg = open_store(project / "store").segments().sort("segment_id")
    assert seg["segment_id"].to_list() == ["d1_0.wav", "d1_1.wav", "d1_2.wav", "d2_0.wav", "d2_1.wav", "d2_2.wav"]
    assert seg["split"].to_list() == ["train", "train", "test", "train", "val", "test"]
    assert seg["start_s"].to_list() == [0.0, 1.5, 3.0, 0.0, 2.0, 4.0]
    assert seg["media"][0].endswith("videos/d1.mp4") and '"dialog_id": "d1"' in seg["metadata"][0]
    r = invoke(["status"])  # the report was printed by ingest: one line here
    assert [ln for ln in r.output.splitlines() if "leakage" in ln] == [
        "leakage: dialog_id, media shared between splits (`ambiguity status --leakage` for the report)"]
    r = invoke(["status", "--leakage"])
    assert "leakage: dialog_id: 2 of 2 test groups also occur in train or val" in r.output


def test_ingest_split_and_preset_mistakes_are_one_line(project):
    (project / "t.csv").write_text(EMPSPEECH_HEADER + "\nd1,0,1,a.wav,hi,neutral\n")
    for args, msg in ((["--split", "holdout"], "--split 'holdout': unknown split"), (["--preset", "nope"], "unknown preset"),
                      (["--split", "test", "--preset", "empspeech", "--group-by", "speaker"], "no column or metadata key 'speaker'")):
        (project / "videos").mkdir(exist_ok=True)
        (project / "videos" / "d1.mp4").write_bytes(b"")
        r = CliRunner().invoke(main, ["ingest", "t.csv", *args])
        assert r.exit_code == 2 and msg in r.output and len(r.output.strip().splitlines()) == 1, r.output
