"""The predictions table: round trip, and importing users' predictions with manifest-style validation."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from synth import write_segments

from ambiguity.errors import ManifestError, MissingGroupError, StoreError
from ambiguity.models.predictions import (
    import_predictions,
    model_summary,
    prediction_table,
    read_predictions,
    write_predictions,
)

IDS = [f"s{i}" for i in range(6)]
LABELS = ["pos", "neg", "pos", "neg", "neu", "pos"]


@pytest.fixture
def seg_store(store):
    write_segments(store, IDS, LABELS, ["train", "val", "test", "test", "test", "val"])
    return store


def test_round_trip_and_p_correct(seg_store):
    classes = ["neg", "neu", "pos"]
    probs = np.array([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25], [0.6, 0.1, 0.3], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3], [1 / 3, 1 / 3, 1 / 3]])
    t = prediction_table(model="m", kind="probe", arch="logistic", modalities=["text"], groups=["text.minilm"],
                         segment_ids=IDS, splits=["train", "val", "test", "test", "test", "val"], labels=LABELS,
                         classes=classes, probs=probs, config={"seed": 3}, seed=3)
    write_predictions(seg_store, t)
    back = read_predictions(seg_store).sort("segment_id")
    np.testing.assert_array_equal(np.array(back["probs"].to_list()), probs.astype(np.float32))
    # p_correct: the probability of each row's true label, read off by hand.
    np.testing.assert_allclose(back["p_correct"], [0.7, 0.5, 0.3, 0.2, 0.4, 1 / 3])
    assert back["predicted"].to_list() == ["pos", "neg", "neg", "pos", "neu", "neg"]  # ties: first class
    assert back["key"][0] == "m|s0"
    assert read_predictions(seg_store, splits=["test"]).height == 3
    assert model_summary(seg_store).row(0, named=True)["rows"] == 6


def test_labels_outside_classes_are_refused(seg_store):
    with pytest.raises(StoreError, match="not among its classes"):
        prediction_table(model="m", kind="probe", arch="x", modalities=[], groups=[], segment_ids=IDS[:1],
                         splits=["test"], labels=["other"], classes=["pos", "neg"], probs=np.array([[0.5, 0.5]]))


def test_no_predictions_says_what_to_run(store):
    with pytest.raises(MissingGroupError, match="ambiguity train"):
        read_predictions(store)


def _csv(tmp_path, text: str):
    p = tmp_path / "preds.csv"
    p.write_text(text)
    return p


def test_import_valid_csv_and_parquet(seg_store, tmp_path):
    p = _csv(tmp_path, "segment_id,model,modalities,p_pos,p_neg,p_neu\n"
                       "s0,mine,text,0.8,0.1,0.1\ns1,mine,text,0.3,0.6,0.1\ns4,mine,text,0.2,0.2,0.6\n"
                       "s0,theirs,text+audio,0.4,0.4,0.2\n")
    rep = import_predictions(seg_store, p)
    assert rep.models == {"mine": 3, "theirs": 1}
    assert rep.classes == ("pos", "neg", "neu")
    df = read_predictions(seg_store, ["mine"]).sort("segment_id")
    np.testing.assert_allclose(df["p_correct"], [0.8, 0.6, 0.6], rtol=1e-6)
    assert df["split"].to_list() == ["train", "val", "test"]  # from the store
    assert df["modalities"][0].to_list() == ["text"]
    assert read_predictions(seg_store, ["theirs"])["modalities"][0].to_list() == ["text", "audio"]
    pq = tmp_path / "p.parquet"
    pl.DataFrame({"segment_id": ["s2"], "model": ["pq"], "pos": [0.9], "neg": [0.05], "neu": [0.05]}).write_parquet(pq)
    assert import_predictions(seg_store, pq).models == {"pq": 1}


def test_import_reports_every_bad_row(seg_store, tmp_path):
    p = _csv(tmp_path, "segment_id,model,p_pos,p_neg,p_neu\n"
                       "s0,m,0.5,0.5,0\n"        # row 2: fine
                       "s1,m,nan,0.5,0.5\n"      # row 3: NaN
                       "s2,m,inf,0,0\n"          # row 4: Inf
                       "s3,m,0.5,0.2,0.2\n"      # row 5: sums to 0.9
                       "s4,m,-0.1,0.6,0.5\n"     # row 6: negative
                       "zz,m,0.5,0.5,0\n"        # row 7: unknown segment
                       "s0,m,0.5,0.5,0\n"        # row 8: duplicate of row 2
                       "s5,m,abc,0.5,0.5\n")     # row 9: not a number
    with pytest.raises(ManifestError) as err:
        import_predictions(seg_store, p)
    msg = str(err.value)
    for needle in ("row 3: p_pos not finite", "row 4: p_pos not finite", "row 5: probabilities sum to 0.9",
                   "row 6: probabilities must lie in [0, 1]", "row 7: segment_id 'zz' is not in the store",
                   "row 8: duplicate of row 2", "row 9: p_pos 'abc' is not a number"):
        assert needle in msg, needle
    assert "row 2" not in msg.replace("duplicate of row 2", "")
    assert not seg_store.has_table("predictions")  # nothing written


def test_import_structure_problems(seg_store, tmp_path):
    with pytest.raises(ManifestError, match="missing column 'model'"):
        import_predictions(seg_store, _csv(tmp_path, "segment_id,p_pos,p_neg\ns0,0.5,0.5\n"))
    with pytest.raises(ManifestError, match="not labels in the store"):
        import_predictions(seg_store, _csv(tmp_path, "segment_id,model,pos,neg,neu,maybe\ns0,m,0.5,0.5,0,0\n"))
    with pytest.raises(ManifestError, match="has no probability column"):
        import_predictions(seg_store, _csv(tmp_path, "segment_id,model,pos,neg\ns4,m,0.5,0.5\n"))


def test_cli_import_error_is_reported_and_exit_nonzero(seg_store, tmp_path):
    from ambiguity.cli import main

    bad = _csv(tmp_path, "segment_id,model,pos,neg,neu\ns0,m,nan,0.5,0.5\n")
    r = CliRunner().invoke(main, ["--store", seg_store.uri, "predictions", "import", str(bad)])
    assert r.exit_code == 2
    assert "row 2: pos not finite" in r.output
    good = _csv(tmp_path, "segment_id,model,pos,neg,neu\ns0,m,0.2,0.5,0.3\n")
    r = CliRunner().invoke(main, ["--store", seg_store.uri, "predictions", "import", str(good)])
    assert r.exit_code == 0 and "imported m (1 rows)" in r.output
    r = CliRunner().invoke(main, ["--store", seg_store.uri, "predictions", "list"])
    assert r.exit_code == 0 and "imported" in r.output and "| fixed |" in r.output


def test_a_store_from_before_schemes_reads_as_fixed_and_migrates_on_write(seg_store):
    import pyarrow as pa

    from ambiguity.models.predictions import PREDICTIONS_SCHEMA

    old_schema = pa.schema([f for f in PREDICTIONS_SCHEMA if f.name not in ("scheme", "fold", "repeat")])
    probs = np.full((6, 3), 1 / 3)
    t = prediction_table(model="m", kind="probe", arch="logistic", modalities=["text"], groups=["g"], segment_ids=IDS,
                         splits=["test"] * 6, labels=LABELS, classes=["neg", "neu", "pos"], probs=probs)
    seg_store.upsert("predictions", t.select(old_schema.names).cast(old_schema), key="key", schema=old_schema)
    old = read_predictions(seg_store)
    assert old.height == 6 and set(old["scheme"]) == {"fixed"} and old["repeat"].is_null().all()
    assert read_predictions(seg_store, scheme="crossfit").height == 0
    assert model_summary(seg_store)["schemes"].to_list() == [["fixed"]]
    t2 = prediction_table(model="other", kind="probe", arch="logistic", modalities=["audio"], groups=["h"], segment_ids=IDS,
                          splits=["test"] * 6, labels=LABELS, classes=["neg", "neu", "pos"], probs=probs)
    write_predictions(seg_store, t2)
    assert "scheme" in seg_store.schema("predictions").names
    both = read_predictions(seg_store)
    assert sorted(set(both["model"])) == ["m", "other"] and both.height == 12


def test_fixed_rewrite_keeps_crossfit_rows(seg_store):
    from ambiguity.models.predictions import write_crossfit_rows

    probs = np.full((6, 3), 1 / 3)
    kw = dict(model="m", kind="probe", arch="logistic", modalities=["text"], groups=["g"], segment_ids=IDS,
              splits=["test"] * 6, labels=LABELS, classes=["neg", "neu", "pos"], probs=probs)
    write_crossfit_rows(seg_store, prediction_table(**kw, scheme="crossfit", fold=[0, 1] * 3, repeat=0, run_id="cf"))
    write_predictions(seg_store, prediction_table(**kw))
    write_predictions(seg_store, prediction_table(**kw))  # a second fixed run replaces the first, not the crossfit rows
    assert read_predictions(seg_store).height == 6
    cf = read_predictions(seg_store, scheme="crossfit")
    assert cf.height == 6 and cf["key"][0].startswith("m|crossfit|0|")
    with pytest.raises(StoreError, match="need a repeat"):
        prediction_table(**kw, scheme="crossfit")
