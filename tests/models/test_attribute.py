"""Attributions of a trained, saved fusion model over a store: loading, table, CLI, bad input."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from synth import synthetic, write_scalar_group, write_segments, write_vector_group

from ambiguity import open_store
from ambiguity.cli import main
from ambiguity.errors import ConfigError, MissingGroupError, ModelError
from ambiguity.models.attributions import attribute, interaction_frame, read_attributions, wide
from ambiguity.models.saved import load_model
from ambiguity.models.spec import TrainConfig
from ambiguity.models.training import train


def _store(path, n=240, seed=3, bad=()):
    store = open_store(path)
    ids, labels, splits, info, noise = synthetic(n=n, seed=seed)
    write_segments(store, ids, labels, splits)
    write_vector_group(store, "text.syn", ids, info, modality="text")
    status = ["failed" if i in bad else "ok" for i in range(n)]
    write_scalar_group(store, "noise", ids, noise, status=status, modality="audio")
    rng = np.random.default_rng(seed)
    write_scalar_group(store, "video.syn", ids, info[:, :4] + rng.normal(size=(n, 4)), modality="video")
    return store


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    store = _store(tmp_path_factory.mktemp("attr") / "store", bad=(1, 5, 9))
    train(store, ["text.syn", "noise", "video.syn"], config=TrainConfig(epochs=3, seed=0))
    return store


def test_v_all_is_the_stored_prediction_and_efficiency_holds(trained):
    res = attribute(trained, "fusion")
    w = res.wide()
    pred = trained.read("predictions", where="model = 'fusion'").select(["segment_id", "p_correct"])
    j = w.join(pred, on="segment_id")
    assert j.height == w.height == pred.height
    # The reloaded model with the saved standardisation reproduces training's predictions (stored as float32).
    np.testing.assert_allclose(j["v_all"].to_numpy(), j["p_correct"].to_numpy(), atol=1e-5)
    phi = w.select([f"phi_{m}" for m in ("text", "audio", "video")]).to_numpy()
    np.testing.assert_allclose(phi.sum(1), (w["v_all"] - w["v_empty"]).to_numpy(), atol=1e-6)
    # v(∅) is the share of the segment's class among the training segments.
    segs = trained.segments(["segment_id", "label", "split"])
    ok = set(w["segment_id"].to_list())
    tr = segs.filter((pl.col("split") == "train") & pl.col("segment_id").is_in(list(ok)))
    share = tr["label"].value_counts(normalize=True)
    prior = dict(zip(share["label"].to_list(), share["proportion"].to_list(), strict=True))
    np.testing.assert_allclose(w["v_empty"].to_numpy(), [prior[lab] for lab in w["label"].to_list()])
    assert set(w["dominant"].to_list()) <= {"text", "audio", "video"}
    # The informative modality carries most of the decision.
    assert np.abs(phi[:, 0]).mean() > np.abs(phi[:, 1]).mean()
    # Segments failed in one modality are left out and counted.
    assert res.dropped == {"not ok in noise": 3}


def test_table_in_store_with_provenance_and_reader(trained):
    res = attribute(trained, "fusion", splits=["test"], target="logit")
    df = read_attributions(trained, "fusion", "logit")
    assert df.height == res.frame.height and set(df["split"].to_list()) == {"test"}
    assert {"segment_id", "modality", "phi", "v_all", "v_empty", "method", "model_run_id", "run_id"} <= set(df.columns)
    assert df["method"].unique().to_list() == ["exact"]
    assert df["model_run_id"].unique().to_list() == [load_model(trained, "fusion").run_id]
    # A rerun replaces the rows of that (model, target) and leaves the other target alone.
    attribute(trained, "fusion", splits=["val"], target="logit")
    df2 = read_attributions(trained, "fusion", "logit")
    assert set(df2["split"].to_list()) == {"val"}
    inter = interaction_frame(df2)
    assert inter.height == df2["segment_id"].n_unique() * 3
    assert wide(df2).height == df2["segment_id"].n_unique()


def test_cli_attribute_writes_the_long_table(trained, tmp_path):
    out = tmp_path / "attr.csv"
    r = CliRunner().invoke(main, ["--store", trained.uri, "attribute", "--split", "test", "--out", str(out)])
    assert r.exit_code == 0, r.output
    df = pl.read_csv(out)
    assert {"segment_id", "modality", "phi", "v_all", "v_empty"} <= set(df.columns)
    assert "exact Shapley values of p_correct" in r.output
    r = CliRunner().invoke(main, ["--store", trained.uri, "attribute", "--split", "test", "--by-quadrant", "text.syn"])
    assert r.exit_code == 0, r.output
    assert "one correction family" in r.output and "Dominant modality" in r.output


def test_bad_input(trained, tmp_path):
    with pytest.raises(ModelError, match="cannot leave a modality out"):
        attribute(trained, "text.syn")
    r = CliRunner().invoke(main, ["--store", trained.uri, "attribute", "--fusion", "text.syn"])
    assert r.exit_code != 0 and r.output.startswith("error: ") and len(r.output.strip().splitlines()) == 1
    with pytest.raises(ConfigError, match="no output for class 'c9'"):
        attribute(trained, "fusion", target="p:c9")
    with pytest.raises(MissingGroupError, match="no saved weights for model 'nope'"):
        attribute(trained, "nope")
    with pytest.raises(ModelError, match="no usable segment in split"):
        attribute(trained, "fusion", splits=["holdout"])
    with pytest.raises(ConfigError, match="permutation sampling needs"):
        attribute(trained, "fusion", method="permutation")
    empty = open_store(tmp_path / "empty")
    with pytest.raises(MissingGroupError, match="no attributions"):
        read_attributions(empty)


def test_perceptual_score_and_counterfactual_swap(trained):
    from ambiguity.models.reliance import counterfactual_swap, perceptual_score

    ps = perceptual_score(trained, "fusion", splits=["test", "val"], n_permutations=5, seed=1, n_boot=500)
    again = perceptual_score(trained, "fusion", splits=["test", "val"], n_permutations=5, seed=1, n_boot=500)
    assert ps.equals(again)  # seeded
    row = {r["modality"]: r for r in ps.iter_rows(named=True)}
    # Permuting the informative modality costs accuracy; permuting pure noise costs (almost) none.
    assert row["text"]["score"] > 0.1 and row["text"]["ci_low"] > 0
    assert abs(row["audio"]["score"]) < row["text"]["score"] / 3
    assert row["text"]["ci_low"] <= row["text"]["score"] <= row["text"]["ci_high"]
    np.testing.assert_allclose(row["text"]["accuracy"] - row["text"]["permuted_accuracy"], row["text"]["score"], atol=1e-12)
    summary, pairs = counterfactual_swap(trained, "fusion", splits=["test", "val"], seed=2)
    s = {r["modality"]: r for r in summary.iter_rows(named=True)}
    assert s["text"]["follows"] > s["audio"]["follows"]
    assert (pairs["label"] != pairs["donor_label"]).all()
    assert pairs.height == summary["n"].sum()
    for r in s.values():
        assert 0 <= r["follows_low"] <= r["follows"] <= r["follows_high"] <= 1
        assert r["follows"] + r["keeps"] <= 1 + 1e-12


def test_cli_reliance_and_conflicts(trained, tmp_path):
    r = CliRunner().invoke(main, ["--store", trained.uri, "reliance", "--split", "test", "--permutations", "2",
                                  "--bootstrap", "100", "--format", "json"])
    assert r.exit_code == 0, r.output
    import json

    data = json.loads(r.output)
    assert len(data) == 2 and all(len(v) == 3 for v in data.values())
    out = tmp_path / "conflicts.csv"
    r = CliRunner().invoke(main, ["--store", trained.uri, "conflicts", "--out", str(out), "--split", "test,val",
                                  "--min-margin", "0.6", "--swap-pairs", str(tmp_path / "pairs.csv")])
    assert r.exit_code == 0, r.output
    man = pl.read_csv(out)
    assert {"segment_id", "media", "label", "jsd", "margin", "model_a", "model_b"} <= set(man.columns)
    assert (man["margin"] >= 0.6).all()
    assert json.loads((tmp_path / "conflicts.csv.json").read_text())["threshold"] == 0.6
    pairs = pl.read_csv(tmp_path / "pairs.csv")
    assert set(pairs["segment_id"].to_list()) <= set(man["segment_id"].to_list())


def test_report_section_figures_and_tables(trained, tmp_path):
    import json

    from ambiguity.report.build import Report, ReportSettings, Section

    segs = trained.segments()
    meta = [json.dumps({"planted": "text" if i % 4 == 0 else ""}) for i in range(segs.height)]
    trained.upsert_segments(segs.with_columns(pl.Series("metadata", meta)).to_arrow())
    rep = Report(trained, tmp_path / "r", ReportSettings(unimodal=["text.syn", "noise"], splits=("test", "val"), flag="planted"))
    sec = Section("attribution", "t")
    rep.attribution(sec)
    names = {f.name for f in sec.files}
    assert {"attribution_quadrants.png", "attribution_waterfall.png", "attribution_dominant.csv",
            "attribution_means.csv", "attribution_tests.csv", "attribution_flagged.csv"} <= names
    dom = pl.read_csv(tmp_path / "r" / "tables" / "attribution_dominant.csv")
    assert set(dom["unimodal"].to_list()) == {"text.syn", "noise"}
    # Every segment of a quadrant is dominated by exactly one modality.
    assert (dom.select(pl.sum_horizontal("text_n", "audio_n", "video_n")).to_series() == dom["n"]).all()
    tests = pl.read_csv(tmp_path / "r" / "tables" / "attribution_tests.csv")
    assert set(tests["pair"].to_list()) <= {"red vs blue", "green vs blue"}
    flagged = rep.cache["attribution_flagged"].row(0, named=True)
    assert flagged["phi_of"] == "text" and 0 <= flagged["auc_low"] <= flagged["auc"] <= flagged["auc_high"] <= 1


def test_report_conflict_section(trained, tmp_path):
    from ambiguity.report.build import Report, ReportSettings, Section

    rep = Report(trained, tmp_path / "r", ReportSettings(unimodal=["text.syn", "noise"], splits=("test", "val")))
    sec = Section("conflicts", "t")
    rep.conflicts(sec)
    summary = pl.read_csv(tmp_path / "r" / "tables" / "conflict_summary.csv")
    assert summary["n"].to_list() == [trained.read("predictions", where="model = 'noise' AND split IN ('test', 'val')").height]
    corr = pl.read_csv(tmp_path / "r" / "tables" / "conflict_correlations.csv")
    assert "annotator disagreement" in corr["with"].to_list()
