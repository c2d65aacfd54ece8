"""The annotations table, importing judgments (CSV, Label Studio), and the study's commands."""

from __future__ import annotations

import json

import polars as pl
import pytest
from click.testing import CliRunner

from ambiguity.annotate.records import (
    AnnotationError,
    check_annotator,
    import_file,
    normalize_round,
    progress,
    read_answers,
)
from ambiguity.annotate.tasks import load_task
from ambiguity.cli import main


@pytest.fixture
def task(study):
    return load_task(study, "pilot")


def run(store, *args):
    return CliRunner().invoke(main, ["--store", store.uri, *args])


def test_names_and_rounds():
    assert check_annotator("a.b-c_1") == "a.b-c_1"
    for bad in ("", "1a", "a b", "ä", "a/b", "a\n", "x" * 33):
        with pytest.raises(AnnotationError):
            check_annotator(bad)
    assert [normalize_round(r) for r in ("1", "UNI", " pass2 ", "full", 2)] == ["unimodal", "unimodal", "multimodal", "multimodal", "multimodal"]
    with pytest.raises(AnnotationError, match="unknown round"):
        normalize_round("3")


def test_csv_import_and_reimport_is_idempotent(study, task, tmp_path):
    f = tmp_path / "j.csv"
    f.write_text(
        "annotator,segment_id,round,label\n"
        "ann,s1,1,empathetic\nann,s1,2,neutral\nbob,s3,unimodal,neutral\n"
        "bob,s3,multimodal,neutral\n"
    )
    assert import_file(study, f, task) == 4
    assert import_file(study, f, task) == 4
    rows = read_answers(study, "pilot").sort("annotator", "round")
    assert rows.height == 4
    assert rows.select("annotator", "item", "round", "judgment", "shown").rows() == [
        ("ann", "text:s1", "multimodal", "neutral", "full"),
        ("ann", "text:s1", "unimodal", "empathetic", "text"),
        ("bob", "video:s3", "multimodal", "neutral", "full"),
        ("bob", "video:s3", "unimodal", "neutral", "video"),
    ]
    assert set(rows["source"]) == {"import:j.csv"}
    assert progress(study, task).rows() == [("ann", 1, 1, 4), ("bob", 1, 1, 4)]


def test_csv_import_collects_every_problem(study, task, tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text(
        "annotator,segment_id,round,judgment\n"
        "ann,s1,1,maybe\n"            # not a label
        "ann,out1,1,neutral\n"        # not in the task
        "a b,s1,1,neutral\n"          # bad name
        "ann,s1,7,neutral\n"          # bad round
        "ann,s1,1,\n"                 # empty
    )
    with pytest.raises(AnnotationError) as err:
        import_file(study, f, task)
    msg = str(err.value)
    assert msg.startswith("5 problem(s)")
    for part in ("row 2: judgment 'maybe'", "row 3: segment 'out1'", "invalid annotator name 'a b'", "unknown round '7'", "row 6: empty judgment"):
        assert part in msg
    assert read_answers(study, "pilot").height == 0
    (tmp_path / "cols.csv").write_text("who,segment_id\nann,s1\n")
    with pytest.raises(AnnotationError, match="missing column"):
        import_file(study, tmp_path / "cols.csv", task)


def test_csv_needs_modality_when_a_segment_has_several_flags(store, helpers, tmp_path):
    helpers.add_segments(store)
    helpers.make_task(store, flags={"text": ["s1", "s2"], "audio": ["s1"]}, distinct=False)
    t = load_task(store, "pilot")
    f = tmp_path / "j.csv"
    f.write_text("annotator,segment_id,round,judgment\nann,s1,1,neutral\n")
    with pytest.raises(AnnotationError, match="several modality flags"):
        import_file(store, f, t)
    f.write_text("annotator,segment_id,modality,round,judgment\nann,s1,audio,1,neutral\nann,s1,text,1,empathetic\n")
    assert import_file(store, f, t) == 2
    f.write_text("round,judgment,item\n1,neutral,audio:s1\n")
    assert import_file(store, f, t, annotator="cy") == 1


def test_label_studio_import(study, task, tmp_path):
    exported = json.loads(task.to_label_studio(tmp_path / "tasks.json").read_text())
    out = []
    for i, t in enumerate(exported):
        t = {"id": i + 1, "project": 3, **t}
        t["annotations"] = [
            {"id": 10 + i, "completed_by": 7, "was_cancelled": False, "lead_time": 4.2, "result": [
                {"from_name": "unimodal", "to_name": "transcript", "type": "choices", "value": {"choices": ["neutral"]}},
                {"from_name": "multimodal", "to_name": "transcript", "type": "choices", "value": {"choices": ["empathetic"]}},
            ]},
            {"id": 20 + i, "completed_by": {"id": 8, "email": "bob@lab.org"}, "was_cancelled": False, "result": [
                {"from_name": "unimodal", "to_name": "transcript", "type": "choices", "value": {"choices": ["empathetic"]}},
            ]},
            {"id": 30 + i, "completed_by": 9, "was_cancelled": True, "result": [
                {"from_name": "unimodal", "to_name": "transcript", "type": "choices", "value": {"choices": ["neutral"]}},
            ]},
        ]
        out.append(t)
    f = tmp_path / "export.json"
    f.write_text(json.dumps(out))
    assert import_file(study, f, task) == 4 * 3
    rows = read_answers(study, "pilot")
    assert sorted(set(rows["annotator"])) == ["bob", "user7"]  # cancelled annotations are skipped
    assert rows.filter(rows["annotator"] == "bob").height == 4

    res = run(study, "annotations", "import", str(f), "--annotator", "carol")
    assert res.exit_code == 2 and "answers of 2 annotators: drop --annotator" in res.output
    single = [{**t, "annotations": t["annotations"][:1]} for t in out]
    (tmp_path / "one.json").write_text(json.dumps(single))
    res = run(study, "annotations", "import", str(tmp_path / "one.json"), "--annotator", "carol")
    assert res.exit_code == 0 and "imported 8 judgment(s)" in res.output
    assert "carol" in set(read_answers(study, "pilot")["annotator"])

    # the JSON-MIN export: one flat object per annotation
    mini = [{"item": r["item"], "annotator": "dora@lab.org", "unimodal": "neutral", "multimodal": "neutral"} for r in task.items.iter_rows(named=True)]
    (tmp_path / "min.json").write_text(json.dumps(mini))
    assert import_file(study, tmp_path / "min.json", task) == 8


def test_label_studio_bad_files(study, task, tmp_path):
    (tmp_path / "a.json").write_text("{oops")
    with pytest.raises(AnnotationError, match="as JSON"):
        import_file(study, tmp_path / "a.json", task)
    (tmp_path / "b.json").write_text(json.dumps({"data": {}}))
    with pytest.raises(AnnotationError, match="JSON list"):
        import_file(study, tmp_path / "b.json", task)
    two = [{"data": {"item": "text:s1"}, "annotations": [{"completed_by": 1, "result": [
        {"from_name": "unimodal", "value": {"choices": ["neutral", "empathetic"]}}]}]}]
    (tmp_path / "c.json").write_text(json.dumps(two))
    with pytest.raises(AnnotationError, match="exactly one choice"):
        import_file(study, tmp_path / "c.json", task)
    (tmp_path / "e.csv").write_text("annotator,item,round,judgment\nann,text:s1,1,neutral\nann,text:s1,1,empathetic\n")
    with pytest.raises(AnnotationError, match="given twice with different labels: ann / text:s1 / unimodal"):
        import_file(study, tmp_path / "e.csv", task)
    (tmp_path / "d.json").write_text("[]")
    with pytest.raises(AnnotationError, match="no judgments"):
        import_file(study, tmp_path / "d.json", task)


def test_commands_export_progress_agreement(study, task, tmp_path):
    res = run(study, "annotate", "export", "--csv", str(tmp_path / "t.csv"), "--label-studio", str(tmp_path / "t.json"))
    assert res.exit_code == 0, res.output
    assert (tmp_path / "t.xml").read_text().startswith("<View>")
    assert "task 'pilot': 4 items, no answers yet" in run(study, "annotate", "progress").output

    res = run(study, "agreement", "--task", "pilot")
    assert res.exit_code == 2 and res.output.startswith("error: task 'pilot' has no annotations yet")

    f = tmp_path / "j.csv"
    lines = ["annotator,item,round,judgment"]
    for i, item in enumerate(task.items["item"]):
        for who in ("ann", "bob"):
            for rnd in ("unimodal", "multimodal"):
                lines.append(f"{who},{item},{rnd},{'empathetic' if (i + (who == 'bob') * (rnd == 'unimodal')) % 2 else 'neutral'}")
    f.write_text("\n".join(lines) + "\n")
    assert run(study, "annotations", "import", str(f)).exit_code == 0
    assert "| ann | 4 | 4 | 4 |" in run(study, "annotate", "progress", "--task", "pilot").output
    prog = json.loads(run(study, "annotate", "progress", "--task", "pilot", "--format", "json").output)
    assert {r["annotator"]: r["pass 1 (unimodal)"] for r in prog} == {"ann": 4, "bob": 4}

    md = run(study, "agreement", "--bootstrap", "50")
    assert md.exit_code == 0 and "| All | 4 |" in md.output and "Accuracy against the gold label" in md.output
    tex = run(study, "agreement", "--format", "latex", "--out", str(tmp_path / "t5.tex"), "--by-modality", "--bootstrap", "50")
    assert tex.exit_code == 0 and "\\begin{table}" in (tmp_path / "t5.tex").read_text()
    csv = run(study, "agreement", "--format", "csv", "--bootstrap", "0")
    assert csv.exit_code == 0 and csv.output.startswith("quadrant,n,statistic,kappa_unimodal")
    bad = run(study, "agreement", "--annotator", "ann,zed")
    assert bad.exit_code == 2 and "no annotations by zed" in bad.output


def test_serve_command_binds_loopback_by_default(study, monkeypatch):
    import ambiguity.annotate.server as server

    calls = []
    monkeypatch.setattr(server, "serve", lambda store, task, **kw: calls.append((task, kw)))
    res = run(study, "annotate", "serve")
    assert res.exit_code == 0, res.output
    assert calls[0][0] == "pilot" and calls[0][1]["host"] == "127.0.0.1"
    assert "http://127.0.0.1:8765/" in res.output
    res = run(study, "annotate", "serve", "--host", "0.0.0.0", "--annotator", "ann,bob")
    assert "warning: binding 0.0.0.0" in res.output and calls[1][1]["annotators"] == ["ann", "bob"]


def test_task_agreement_reads_the_store(store):
    from ambiguity.annotate.records import Answer, task_agreement, write_answers
    from ambiguity.annotate.tasks import save_task, stratified_sample
    from ambiguity.errors import StatsError

    frames = {"text": pl.DataFrame({"segment_id": [f"s{i}" for i in range(8)], "quadrant": ["red", "green", "blue", "yellow"] * 2, "label": ["emp", "neu"] * 4})}
    task = stratified_sample(frames, 2, 0, name="t1")
    save_task(store, task)
    with pytest.raises(StatsError, match="no annotations"):
        task_agreement(store, "t1")
    answers = [
        Answer("t1", who, r["item"], r["segment_id"], rnd, r["label"] if (who == "ann" or i % 3) else "emp")
        for i, r in enumerate(task.items.iter_rows(named=True))
        for who in ("ann", "bob")
        for rnd in ("unimodal", "multimodal")
    ]
    write_answers(store, answers)
    res = task_agreement(store, "t1", n_boot=50)
    assert res.n_complete == 8 and res.annotators == ("ann", "bob")
    assert res.table.filter(pl.col("quadrant") == "all")["n"][0] == 8
