"""A messy store, as real corpora are: audio-only clips (no video track), clips whose audio is digital
silence (video and text only), a clip without a transcript, two audio feature groups, a speaker column and
three classes. It goes through ingest, extract (text, audio, video), train (fixed and cross-fitted by
speaker), quadrants, attribution, compare and report through the CLI, as a user runs it (issue 24).

Media: examples/data (speech-emotion WAVs have no video; WolfgangLanger_Pexels.mp4's audio track is
digital silence; face_noface.mov loses the face after 2.4 s). The text model is a tiny randomly
initialised RoBERTa saved to tmp (tests/extractors/tiny_models.py), never a hub download.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from ambiguity import open_store
from ambiguity.cli import main

sys.path.insert(0, str(Path(__file__).parent / "extractors"))

CLASSES = ["neg", "neu", "pos"]
WORDS = ["no", "well", "yes", "maybe", "fine", "great", "bad", "okay"]
AUDIO = ("opensmile.egemaps", "prosody")  # two audio groups: two players
GROUPS = ("text.textmodel", *AUDIO, "landmarks")


def manifest_rows(data: Path) -> list[tuple]:
    rows = []
    for i in range(24):  # audio only: no video track
        rows.append((f"a{i:02d}", str(data / "speech-emotion" / f"{i:02d}.wav"), "", "", f"spk{i % 4}", CLASSES[i % 3],
                     f"{WORDS[i % 8]} {WORDS[(i * 3) % 8]}"))
    wolf = data / "faces" / "WolfgangLanger_Pexels.mp4"  # its audio is digital silence: video and text only
    for k in range(12):
        rows.append((f"w{k:02d}", str(wolf), f"{1.5 * k:.2f}", f"{1.5 * k + 1.5:.2f}", f"wolf{k % 4}", CLASSES[k % 3],
                     f"{WORDS[k % 8]} here"))
    face = data / "faces" / "single_face.mp4"
    rows += [("f00", str(face), "0", "1.2", "single", "pos", "smile"), ("f01", str(face), "1.2", "2.4", "single", "neg", "again")]
    mixed = data / "faces" / "face_noface.mov"  # the face leaves at 2.4 s: the last segments have none
    for k in range(1, 4):
        rows.append((f"m{k}", str(mixed), f"{1.5 * k:.2f}", f"{1.5 * k + 1.5:.2f}", "mixed", CLASSES[k % 3],
                     "" if k == 3 else "look"))  # m3: no transcript
    return rows


def cli(store: Path, *args: str, ok: bool = True):
    r = CliRunner().invoke(main, ["--store", str(store), *args])
    if ok:
        assert r.exit_code == 0, f"{args}: {r.output}"
    return r


@pytest.fixture(scope="module")
def messy(tmp_path_factory, data_dir):
    import tiny_models

    tmp = tmp_path_factory.mktemp("messy")
    man = tmp / "manifest.csv"
    with man.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["segment_id", "media", "start_s", "end_s", "speaker", "label", "transcript"])
        w.writerows(manifest_rows(data_dir))
    tiny_models.text_model("roberta", tmp / "textmodel")
    store = tmp / "store"
    cli(store, "ingest", str(man))
    cli(store, "extract", "--extractor", "text", "--model", str(tmp / "textmodel"), "--device", "cpu", "--workers", "1", "--quiet")
    cli(store, "extract", "--extractor", "opensmile,prosody", "--workers", "2", "--quiet")
    cli(store, "extract", "--extractor", "landmarks", "--workers", "2", "--quiet")
    return tmp, store


@pytest.mark.slow
def test_a_messy_store_goes_from_ingest_to_report(messy):
    tmp, uri = messy
    store = open_store(uri)
    # extract: a missing modality is `empty` with its reason, never `failed`
    for g in GROUPS:
        st = store.group_status(g)
        assert st.filter(pl.col("status") == "failed").height == 0, st.filter(pl.col("status") == "failed")
    lm = store.group_status("landmarks")
    audio_only = lm.filter(pl.col("segment_id").str.starts_with("a"))
    assert set(audio_only["status"].to_list()) == {"empty"} and audio_only["error"].str.contains("video track").all()
    assert store.group_status("text.textmodel").filter(pl.col("segment_id") == "m3")["status"].item() == "empty"
    ok = {g: set(store.group_status(g).filter(pl.col("status") == "ok")["segment_id"].to_list()) for g in GROUPS}
    assert len(ok["landmarks"]) < 20 and len(ok["opensmile.egemaps"]) < 35  # the store really is missing things

    # train, fixed split: a unimodal model predicts the segments that have its group; fusion predicts all of
    # them. The seeded 80/10/10 split leaves no val segment with landmarks: that model is skipped, saying so.
    r = cli(uri, "train", *GROUPS, "--epochs", "2")
    assert "skipped landmarks: too few segments in split 'val' of the" in r.output
    preds = store.read("predictions", where="scheme = 'fixed'")
    for g in GROUPS[:-1]:
        assert set(preds.filter(pl.col("model") == g)["segment_id"].to_list()) == ok[g]
    fus = preds.filter(pl.col("model") == "fusion")
    assert fus.height == len(manifest_rows(Path(".")))
    for r in fus.iter_rows(named=True):  # each prediction records the groups it saw
        assert r["inputs"] == [g for g in GROUPS if r["segment_id"] in ok[g]]

    # quadrants: a unimodal model's quadrants cover the segments it predicted; 3 classes: right = argmax
    r = cli(uri, "quadrants", "--unimodal", "prosody", "--split", "train,val,test", "--out", str(tmp / "q"))
    assert "predicted label (argmax of 3 classes)" in r.output
    assert f"n = {len(ok['prosody'])}" in r.output
    assert "next:" in r.output

    # cross-fitting grouped by speaker: every segment out of fold by the fusion model, each unimodal model
    # on the segments that have its group (folds stratified by label and missingness)
    cli(uri, "train", *GROUPS, "--epochs", "2", "--folds", "3", "--group-by", "speaker")
    cf = store.read("predictions", where="scheme = 'crossfit'")
    assert set(cf.filter(pl.col("model") == "fusion")["segment_id"].to_list()) == {row[0] for row in manifest_rows(Path("."))}
    assert set(cf.filter(pl.col("model") == "landmarks")["segment_id"].to_list()) == ok["landmarks"]
    r = cli(uri, "quadrants", "--unimodal", "landmarks", "--scheme", "crossfit", "--out", str(tmp / "qc"))
    assert f"n = {len(ok['landmarks'])}" in r.output

    # attribution: the players are the four feature groups; an absent one is no player; efficiency per segment
    cli(uri, "attribute", "--scheme", "crossfit")
    att = store.read("attributions")
    assert set(att["player"].to_list()) == set(GROUPS)
    seg = att.group_by("segment_id").agg(
        pl.col("phi").filter(pl.col("present")).sum().alias("sum_phi"), pl.first("v_all"), pl.first("v_empty"),
        pl.col("phi").filter(~pl.col("present")).is_null().all().alias("absent_null"))
    assert seg.height == len(manifest_rows(Path("."))) and seg["absent_null"].all()
    err = np.abs(seg["sum_phi"].to_numpy() - (seg["v_all"] - seg["v_empty"]).to_numpy())
    assert err.max() <= 1e-6
    absent = att.filter(~pl.col("present"))
    assert set(absent.filter(pl.col("player") == "landmarks")["segment_id"].to_list()) == set(
        att["segment_id"].unique().to_list()) - ok["landmarks"]

    # compare and report: no section fails for a missing modality
    r = cli(uri, "compare", "prosody", "--unimodal", "prosody", "--out", str(tmp / "cmp"))
    r = cli(uri, "report", "--out", str(tmp / "report"))
    assert "ERROR" not in r.output, r.output


# -- user mistakes are one line, and nothing is written (fast) ------------------------------------------
def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _one_error_line(r, *parts: str) -> None:
    lines = r.output.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), r.output
    for p in parts:
        assert p in lines[0], lines[0]


@pytest.mark.parametrize("header, argv, says", [
    (["segment_id", "transcript", "label", "label3"], ["--map", "label3=label"],
     ["--map label3=label: the manifest already has a column 'label'", "rename it too (--map label=label_orig, --map label3=label)"]),
    (["segment_id", "transcript", "Label"], [], ["no 'label' column, but 'Label' looks like one", "--map Label=label", "--unlabelled"]),
    (["segment_id", "transcript", "emotion"], [], ["'emotion' looks like one"]),
    (["segment_id", "transcript", "a", "b"], ["--map", "a=label", "--map", "b=label"], ["a, b all map onto 'label'"]),
])
def test_ingest_mistakes_are_one_line_and_write_nothing(tmp_path, header, argv, says):
    rows = [[f"s{i}", f"text {i}", *(["x", "y"][: len(header) - 2])] for i in range(4)]
    man = _write(tmp_path / "m.csv", header, rows)
    store = tmp_path / "store"
    r = CliRunner().invoke(main, ["--store", str(store), "ingest", str(man), *argv])
    _one_error_line(r, *says)
    assert not store.exists() or not open_store(store).has_table("segments")


def test_an_unlabelled_set_is_ingested_on_purpose_or_with_a_warning(tmp_path):
    man = _write(tmp_path / "m.csv", ["segment_id", "transcript"], [[f"s{i}", f"t {i}"] for i in range(4)])
    r = CliRunner().invoke(main, ["--store", str(tmp_path / "a"), "ingest", str(man)])
    assert r.exit_code == 0 and "warning: " in r.output and "--unlabelled" in r.output
    r = CliRunner().invoke(main, ["--store", str(tmp_path / "b"), "ingest", str(man), "--unlabelled"])
    assert r.exit_code == 0 and "warning" not in r.output
    # a look-alike column with --unlabelled: the user said so
    man2 = _write(tmp_path / "m2.csv", ["segment_id", "transcript", "Label"], [[f"s{i}", f"t {i}", "a"] for i in range(4)])
    r = CliRunner().invoke(main, ["--store", str(tmp_path / "c"), "ingest", str(man2), "--unlabelled"])
    assert r.exit_code == 0
    # renaming the old column out of the way makes room for the mapped one
    man3 = _write(tmp_path / "m3.csv", ["segment_id", "transcript", "label", "label3"], [[f"s{i}", "t", "a", "b"] for i in range(4)])
    r = CliRunner().invoke(main, ["--store", str(tmp_path / "d"), "ingest", str(man3), "--map", "label=label_orig", "--map", "label3=label"])
    assert r.exit_code == 0, r.output
    assert set(open_store(tmp_path / "d").segments(["label"])["label"].to_list()) == {"b"}


def test_a_fold_without_a_class_is_named_and_nothing_is_written(tmp_path):
    """Cross-fitting refuses, naming the fold, when a model's fitting part lacks a class (here the video
    group exists for two speakers only, one class each), before any prediction, fold or fit is written."""
    import json

    import pyarrow as pa

    sys.path.insert(0, str(Path(__file__).parent / "models"))
    from synth import write_scalar_group

    from ambiguity.stores.schema import SEGMENTS_SCHEMA

    store = open_store(tmp_path / "s")
    n = 48
    ids = [f"s{i:02d}" for i in range(n)]
    labels = [["a", "b"][i % 2] for i in range(n)]
    store.upsert_segments(pa.table({
        "segment_id": ids, "media": [None] * n, "audio": [None] * n, "start_s": [None] * n, "end_s": [None] * n,
        "transcript": [None] * n, "label": labels, "split": ["train"] * n,
        "metadata": [json.dumps({"speaker": f"p{i % 12}"}) for i in range(n)]}, schema=SEGMENTS_SCHEMA))
    rng = np.random.default_rng(0)
    write_scalar_group(store, "audio.syn", ids, rng.normal(size=(n, 3)))
    # video only for speakers p0 (class a) and p1 (class b)
    status = ["ok" if i % 12 in (0, 1) else "empty" for i in range(n)]
    write_scalar_group(store, "video.syn", ids, rng.normal(size=(n, 3)), status=status)
    r = CliRunner().invoke(main, ["--store", store.uri, "train", "audio.syn", "video.syn", "--folds", "2",
                                  "--group-by", "speaker", "--epochs", "1"])
    _one_error_line(r, "error: --folds 2: fold ", "model 'video.syn' would be fitted on", "leave that group out")
    assert not any(store.has_table(t) for t in ("predictions", "folds", "fits", "models"))


# -- many classes: right means the argmax is the true label ---------------------------------------------
@pytest.mark.parametrize("n_classes", [3, 6])
def test_many_classes_go_through_every_step(tmp_path, n_classes):
    """A 3- and a 6-class store through train, quadrants, compare, attribute, sample, agreement and report;
    each quadrant checked against the argmax rule written here from the definition."""
    sys.path.insert(0, str(Path(__file__).parent / "models"))
    from synth import synthetic, write_scalar_group, write_segments, write_vector_group

    store = open_store(tmp_path / "s")
    ids, labels, splits, info, noise = synthetic(n=240, seed=3, n_classes=n_classes)
    write_segments(store, ids, labels, splits)
    write_vector_group(store, "text.syn", ids, info, modality="text")
    write_scalar_group(store, "noise", ids, noise, modality="audio")
    uri = store.uri
    cli(uri, "train", "text.syn", "noise", "--epochs", "3")
    r = cli(uri, "quadrants", "--unimodal", "text.syn", "--out", str(tmp_path / "q"))
    assert f"right means the predicted label (argmax of {n_classes} classes) is the true one" in r.output
    q = pl.read_csv(tmp_path / "q" / "quadrants_text.syn.csv")
    preds = store.read("predictions", where="scheme = 'fixed' AND split = 'test'")

    def right(model: str) -> dict[str, bool]:  # the definition: the argmax of the probabilities is the gold label
        d = preds.filter(pl.col("model") == model)
        return {s: c[int(np.argmax(p))] == lab for s, p, c, lab in
                zip(d["segment_id"], d["probs"].to_list(), d["classes"].to_list(), d["label"], strict=True)}

    u, f = right("text.syn"), right("fusion")
    want = {s: {(True, False): "red", (False, True): "green", (True, True): "blue", (False, False): "yellow"}[(u[s], f[s])] for s in u}
    assert dict(zip(q["segment_id"], q["quadrant"], strict=True)) == want
    # the threshold keeps its meaning for two classes only
    r = cli(uri, "quadrants", "--unimodal", "text.syn", "--threshold", "0.3", ok=False)
    _one_error_line(r, "threshold=0.3 applies to two classes")
    cli(uri, "compare", "noise", "--unimodal", "text.syn", "--split", "train,val,test")
    cli(uri, "attribute")
    att = store.read("attributions")
    seg = att.group_by("segment_id").agg(pl.col("phi").sum(), pl.first("v_all"), pl.first("v_empty"))
    assert np.abs(seg["phi"].to_numpy() - (seg["v_all"] - seg["v_empty"]).to_numpy()).max() <= 1e-6
    cli(uri, "sample", "--modality", "text", "--per-quadrant", "2", "--task", "t")
    items = store.read("tasks") if store.has_table("tasks") else None
    assert items is not None and items.height
    from ambiguity.annotate.tasks import load_task

    task = load_task(store, "t")
    classes = sorted(set(labels))
    lines = ["annotator,item,round,judgment"]
    for i, item in enumerate(task.items["item"]):
        for who in ("ann", "bob"):
            for rnd in ("unimodal", "multimodal"):
                lines.append(f"{who},{item},{rnd},{classes[(i + (who == 'bob') * (rnd == 'unimodal')) % n_classes]}")
    (tmp_path / "j.csv").write_text("\n".join(lines) + "\n")
    cli(uri, "annotations", "import", str(tmp_path / "j.csv"))
    r = cli(uri, "agreement", "--bootstrap", "0")
    assert "Accuracy against the gold label" in r.output
    r = cli(uri, "report", "--out", str(tmp_path / "report"))
    assert "ERROR" not in r.output, r.output


def test_pooled_players_one_per_modality(tmp_path):
    """attribute --pool: one player per modality holding its feature groups (two audio groups, one player);
    efficiency over the present players; group null on pooled rows."""
    sys.path.insert(0, str(Path(__file__).parent / "models"))
    from synth import synthetic, write_scalar_group, write_segments, write_vector_group

    store = open_store(tmp_path / "s")
    ids, labels, splits, info, noise = synthetic(n=160, seed=2, n_classes=3)
    write_segments(store, ids, labels, splits)
    write_vector_group(store, "text.syn", ids, info, modality="text")
    write_scalar_group(store, "noise", ids, noise, modality="audio")
    status = ["empty" if i % 5 == 0 else "ok" for i in range(len(ids))]  # a fifth lack the second audio group
    write_scalar_group(store, "noise2", ids, noise[:, ::-1].copy(), status=status, modality="audio")
    cli(store.uri, "train", "text.syn", "noise", "noise2", "--epochs", "2", "--no-unimodal")
    cli(store.uri, "attribute", "--pool", "--split", "train,val,test")
    att = store.read("attributions")
    assert set(att["player"].to_list()) == {"text", "audio"} and att["group"].is_null().all()
    assert att.filter(pl.col("player") == "audio")["present"].all()  # noise is there when noise2 is not
    seg = att.group_by("segment_id").agg(pl.col("phi").sum(), pl.first("v_all"), pl.first("v_empty"))
    assert np.abs(seg["phi"].to_numpy() - (seg["v_all"] - seg["v_empty"]).to_numpy()).max() <= 1e-6
    cli(store.uri, "attribute", "--split", "train,val,test")  # unpooled: three players, noise2 absent on a fifth
    att = store.read("attributions")
    assert set(att["player"].to_list()) == {"text.syn", "noise", "noise2"}
    absent = att.filter(~pl.col("present"))
    assert set(absent["player"].to_list()) == {"noise2"} and absent["phi"].is_null().all()
