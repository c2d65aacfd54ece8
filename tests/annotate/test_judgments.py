"""Importing many raters' judgments (long, counts, CREMA-D) into a store, the human analysis from the CLI, and the
model-versus-human test on a synthetic store that holds both."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from click.testing import CliRunner

from ambiguity.cli import main
from ambiguity.stores.lance import FeatureStore

ROOT = Path(__file__).resolve().parents[2]
CREMA = ROOT / "examples" / "data" / "crema-d"


def run(store: str, *args):
    FeatureStore(store)  # an empty store, as `ambiguity init` makes
    return CliRunner().invoke(main, ["--store", store, *args])


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


COUNTS_OK = "item,condition,gold,a,b,c,n\nx1,voice,a,3,1,0,4\nx1,av,a,4,0,0,4\nx2,voice,b,1,2,1,4\nx2,av,b,0,4,0,4\n"
LONG_OK = ("item,rater,condition,label,gold\n" + "".join(
    f"x{i},r{r},{c},{lab},{g}\n" for i, g in ((1, "a"), (2, "b")) for c in ("voice", "av") for r, lab in
    enumerate(("a", "a", "b") if (i, c) == (1, "voice") else (g, g, g))))
MAP = ["--condition", "voice=audio", "--condition", "av=all"]

# each bad input: the file, the import options, and the words its one-line error must hold
BAD = {
    "counts_not_adding_up": (COUNTS_OK.replace("x2,av,b,0,4,0,4", "x2,av,b,0,4,0,5"), ["--layout", "counts", *MAP],
                             "counts add to 4, n says 5"),
    "unknown_class_column": (COUNTS_OK.replace(",n\n", ",z\n", 1), ["--layout", "counts", "--classes", "a,b,c", *MAP],
                             "unknown class column 'z'"),
    "condition_without_mapping": (COUNTS_OK, ["--layout", "counts", "--condition", "voice=audio"],
                                  "condition 'av' has no mapping"),
    "item_without_gold": (COUNTS_OK.replace("x2,voice,b,", "x2,voice,,").replace("x2,av,b,", "x2,av,,"),
                          ["--layout", "counts", *MAP], "item 'x2' has no gold label"),
    "negative_count": (COUNTS_OK.replace("x1,voice,a,3,1,0,4", "x1,voice,a,5,-1,0,4"), ["--layout", "counts", *MAP],
                       "count b='-1' is not a non-negative integer"),
    "non_integer_count": (COUNTS_OK.replace("x1,voice,a,3,1,0,4", "x1,voice,a,2.5,1.5,0,4"),
                          ["--layout", "counts", *MAP], "count a='2.5' is not a non-negative integer"),
    "rater_twice": (LONG_OK + "x1,r0,voice,b,a\n", ["--layout", "long", *MAP],
                    "rater 'r0' labels item 'x1' more than once in condition 'voice'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, case):
    text, opts, words = BAD[case]
    src = write(tmp_path / "j.csv", text)
    store = str(tmp_path / "store")
    res = run(store, "annotations", "import", str(src), *opts)
    assert res.exit_code != 0
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, res.output
    assert words in lines[0], res.output
    s = FeatureStore(store)
    assert not any(s.has_table(t) for t in ("segments", "judgments", "ratings", "predictions"))


def test_good_inputs_import(tmp_path):
    # the unchanged versions of the bad files import
    for text, layout in ((COUNTS_OK, "counts"), (LONG_OK, "long")):
        res = run(str(tmp_path / layout), "annotations", "import", str(write(tmp_path / f"{layout}.csv", text)),
                  "--layout", layout, *MAP)
        assert res.exit_code == 0, res.output


def test_long_table_is_counted_and_kept_vote_by_vote(tmp_path):
    from ambiguity.annotate.judgments import read_judgments, read_ratings

    store = str(tmp_path / "s")
    res = run(store, "annotations", "import", str(write(tmp_path / "l.csv", LONG_OK)), "--layout", "long", *MAP)
    assert res.exit_code == 0, res.output
    s = FeatureStore(store)
    votes, classes = read_judgments(s)
    assert classes == ("a", "b")  # the labels seen, sorted
    got = {(r["item"], r["condition"]): r["counts"] for r in votes.iter_rows(named=True)}
    assert got == {("x1", "voice"): [2, 1], ("x1", "av"): [3, 0], ("x2", "voice"): [0, 3], ("x2", "av"): [0, 3]}
    assert read_ratings(s).height == 12


def test_crema_d_import_makes_label_only_segments_and_human_predictors(tmp_path):
    from ambiguity.models.predictions import read_predictions

    store = str(tmp_path / "s")
    res = run(store, "annotations", "import", str(CREMA / "tabulatedVotes.csv"), "--preset", "crema-d")
    assert res.exit_code == 0, res.output
    assert "4901 items" in res.output
    s = FeatureStore(store)
    segs = s.segments()
    assert segs.height == 4901 and segs["media"].null_count() == 4901
    meta = json.loads(segs.filter(pl.col("segment_id") == "1001_IEO_HAP_LO")["metadata"][0])
    want = {"actor": "1001", "sentence": "IEO", "intensity": "LO", "sex": "Male", "age": 51}
    assert {k: meta.get(k) for k in want} == want
    assert segs.filter(pl.col("segment_id") == "1001_IEO_HAP_LO")["label"][0] == "H"
    preds = read_predictions(s, scheme="human")
    assert sorted(preds["model"].unique().to_list()) == ["human:all", "human:audio", "human:video"]
    assert preds.height == 3 * 4901 and set(preds["scheme"].to_list()) == {"human"}
    assert read_predictions(s).height == 0  # never among the fixed-scheme model predictions
    # row 100002: 1001_IEO_HAP_LO, voice: H 3, N 6 of 9
    row = preds.filter((pl.col("model") == "human:audio") & (pl.col("segment_id") == "1001_IEO_HAP_LO")).row(0, named=True)
    assert row["p_correct"] == pytest.approx(3 / 9) and row["predicted"] == "N"
    out = run(store, "annotations", "human", "--bootstrap", "20")
    assert out.exit_code == 0, out.output
    assert "Fleiss' kappa" in out.output and "| audio | green | 1637 |" in out.output


# -- model versus human on a store with both --------------------------------------------------------
def _store_with_both(tmp_path, planted: bool, n: int = 160, seed: int = 0) -> FeatureStore:
    """Segments with cross-fitted predictions of a unimodal and a fusion model (2 folds x 3 repeats) and human
    votes in two conditions. Planted: the segments where people disagree most are those where the audio model
    flips against fusion across repeats."""
    from ambiguity.annotate.judgments import Judgments, save_judgments
    from ambiguity.models.predictions import prediction_table, write_crossfit_rows
    from ambiguity.stores.schema import SEGMENTS_SCHEMA

    rng = np.random.default_rng(seed)
    s = FeatureStore(str(tmp_path / f"s{planted}"))
    ids = [f"seg{i:03d}" for i in range(n)]
    labels = [("pos", "neg")[i % 2] for i in range(n)]
    s.upsert_segments(pa.Table.from_pylist([{"segment_id": i, "media": None, "audio": None, "start_s": None,
                                             "end_s": None, "transcript": None, "label": lab, "split": "train",
                                             "metadata": "{}"} for i, lab in zip(ids, labels, strict=True)],
                                           schema=SEGMENTS_SCHEMA))
    hard = rng.random(n)  # how ambiguous each segment is for people
    model_hard = hard if planted else rng.random(n)
    fold = [i % 2 for i in range(n)]
    cfg = {"folds": 2, "repeats": 3}
    for model, mods in (("audio_probe", ["audio"]), ("fusion", ["text", "audio", "video"])):
        for rep in range(3):
            if model == "fusion":
                pc = np.full(n, 0.8)
            else:  # the unimodal model is wrong (so red/green against a right fusion) with probability model_hard
                pc = np.where(rng.random(n) < model_hard, 0.2, 0.8)
            probs = np.column_stack([np.where(np.array(labels) == "pos", pc, 1 - pc),
                                     np.where(np.array(labels) == "pos", 1 - pc, pc)])
            write_crossfit_rows(s, prediction_table(
                model=model, kind="probe", arch="logistic", modalities=mods, groups=[], segment_ids=ids,
                splits=["train"] * n, labels=labels, classes=["pos", "neg"], probs=probs, config=cfg, run_id="run1",
                scheme="crossfit", fold=fold, repeat=rep))
    rows = []
    for i, (sid, lab) in enumerate(zip(ids, labels, strict=True)):
        for cond, mod in (("voice", "audio"), ("av", "all")):
            k = 10
            p_gold = 0.95 - 0.5 * hard[i] if mod == "all" else 0.9 - 0.5 * hard[i]
            g = int(rng.binomial(k, p_gold))
            counts = [g, k - g] if lab == "pos" else [k - g, g]
            rows.append({"item": sid, "condition": cond, "modality": mod, "gold": lab, "counts": counts})
    votes = pl.DataFrame(rows)
    save_judgments(s, Judgments(votes, ("pos", "neg"), pl.DataFrame({"item": ids}), None, "synthetic"))
    return s


@pytest.mark.parametrize("planted", [True, False])
def test_model_vs_human_on_a_store_with_both(tmp_path, planted):
    from ambiguity.annotate.human import model_vs_human_store

    s = _store_with_both(tmp_path, planted)
    res = model_vs_human_store(s, "audio_probe", "fusion", "audio", n_boot=500)
    assert res["n"] == 160
    if planted:
        assert res["rho"] > 0.3 and res["low"] > 0.1 and res["p"] < 1e-4 and res["chi2_p"] < 1e-3
    else:
        assert res["low"] < 0 < res["high"] and res["chi2_p"] > 0.01
    assert int(res["table"].select(pl.exclude("model_quadrant")).to_numpy().sum()) == 160


def test_report_has_the_human_section_from_another_store(tmp_path):
    # the demo's layout: the report's store has no judgments; [report_settings] human_store names the one that has
    from ambiguity.report.build import ReportSettings, build_report

    res = run(str(tmp_path / "people"), "annotations", "import", str(write(tmp_path / "l.csv", LONG_OK)),
              "--layout", "long", *MAP)
    assert res.exit_code == 0, res.output
    main_store = FeatureStore(str(tmp_path / "store"))
    rep = build_report(main_store, tmp_path / "report", ReportSettings(human_store="people"))
    sec = next(s for s in rep.sections if s.key == "human")
    assert not sec.note, sec.note
    assert "Fleiss' kappa" in sec.markdown and "Dawid-Skene" in sec.markdown
    assert (tmp_path / "report" / "tables" / "human_accuracy.csv").exists()
    # without it, the section says what to run
    rep = build_report(main_store, tmp_path / "report2")
    sec = next(s for s in rep.sections if s.key == "human")
    assert "annotations import" in sec.note and not sec.error


def test_dawid_skene_on_an_annotation_tasks_answers(study, tmp_path):
    # four annotators answer the app's two rounds; the plurality accuracy of the comparison is checked by hand
    pytest.importorskip("crowdkit")
    gold = {"s1": "empathetic", "s2": "neutral", "s3": "empathetic", "w1": "neutral"}
    other = {"empathetic": "neutral", "neutral": "empathetic"}
    lines = ["annotator,segment_id,round,judgment"]
    for ann in ("ann", "bob", "cy", "dee"):
        for rnd in ("unimodal", "multimodal"):
            for sid, g in gold.items():
                wrong = ann == "dee" or (rnd == "unimodal" and ann == "cy" and sid == "s1")
                lines.append(f"{ann},{sid},{rnd},{other[g] if wrong else g}")
    f = write(tmp_path / "answers.csv", "\n".join(lines) + "\n")
    assert CliRunner().invoke(main, ["--store", study.uri, "annotations", "import", str(f), "--task", "pilot"]).exit_code == 0
    from ambiguity.annotate.human import task_raters

    rm = task_raters(study, "pilot")
    comp = {r["condition"]: r for r in rm.comparison.iter_rows(named=True)}
    assert set(comp) == {"unimodal", "multimodal"} and all(r["items"] == 4 and r["raters"] == 4 for r in comp.values())
    # unimodal: s1 gets 2 right (ann, bob) vs 2 wrong (cy, dee): a tie, so 3 of 4 items right by plurality
    assert comp["unimodal"]["plurality_accuracy"] == pytest.approx(3 / 4)
    assert comp["multimodal"]["plurality_accuracy"] == pytest.approx(1.0)
    assert set(rm.confusion["rater"].unique().to_list()) == {"ann", "bob", "cy", "dee"}
    out = CliRunner().invoke(main, ["--store", study.uri, "annotations", "human", "--task", "pilot"])
    assert out.exit_code == 0 and "Dawid-Skene" in out.output, out.output


def test_human_rows_are_right_by_the_models_rule_exactly_when_gold_alone_leads(tmp_path):
    # the predictions table's human rows, judged by the rule the quadrant machinery applies to models
    # (stats.assign.is_right: argmax == label with more than two classes), agree with the plurality rule
    # of stats.crowd (gold alone has the most votes): a tie stores no prediction, so it is wrong by both
    from ambiguity.annotate.judgments import read_judgments, read_judgments_file, save_judgments
    from ambiguity.models.predictions import read_predictions
    from ambiguity.stats.assign import is_right
    from ambiguity.stats.crowd import soft_labels

    s = FeatureStore(str(tmp_path / "s"))
    save_judgments(s, read_judgments_file(CREMA / "tabulatedVotes.csv", layout="counts", preset="crema-d"))
    preds = read_predictions(s, scheme="human")
    machinery = is_right(preds["p_correct"].to_numpy(), preds["predicted"].to_list(), preds["label"].to_list(), 6)
    votes, classes = read_judgments(s)
    soft = soft_labels(votes, classes).select(pl.col("item").alias("segment_id"), "modality", "right", "tie")
    got = preds.select("segment_id", pl.col("model").str.strip_prefix("human:").alias("modality")).with_columns(
        pl.Series("machinery", machinery.astype(bool))).join(soft, on=["segment_id", "modality"])
    assert got.height == 3 * 4901
    assert (got["machinery"] == got["right"]).all()
    assert got["tie"].sum() > 500  # the ties are many, and all wrong by both rules
