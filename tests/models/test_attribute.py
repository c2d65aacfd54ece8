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
    res = attribute(trained, "fusion", splits=["train", "val", "test"])
    w = res.wide()
    pred = trained.read("predictions", where="model = 'fusion'").select(["segment_id", "p_correct"])
    j = w.join(pred, on="segment_id")
    assert j.height == w.height == pred.height
    # The reloaded model with the saved standardisation reproduces training's predictions (stored as float32).
    np.testing.assert_allclose(j["v_all"].to_numpy(), j["p_correct"].to_numpy(), atol=1e-5)
    phi = w.select([f"phi_{m}" for m in ("text", "audio", "video")]).to_numpy()
    # an absent player (segments 1, 5, 9 have no "noise") is no player: NaN, left out of the sum
    np.testing.assert_allclose(np.nansum(phi, 1), (w["v_all"] - w["v_empty"]).to_numpy(), atol=1e-6)
    # v(∅) is the share of the segment's class among the training segments.
    segs = trained.segments(["segment_id", "label", "split"])
    ok = set(w["segment_id"].to_list())
    tr = segs.filter((pl.col("split") == "train") & pl.col("segment_id").is_in(list(ok)))
    share = tr["label"].value_counts(normalize=True)
    prior = dict(zip(share["label"].to_list(), share["proportion"].to_list(), strict=True))
    np.testing.assert_allclose(w["v_empty"].to_numpy(), [prior[lab] for lab in w["label"].to_list()])
    assert set(w["dominant"].to_list()) <= {"text", "audio", "video"}
    # The informative modality carries most of the decision.
    assert np.abs(phi[:, 0]).mean() > np.nanmean(np.abs(phi[:, 1]))
    # Segments failed in one modality keep their other players; the failed one is absent (no player).
    assert res.dropped == {}
    absent = w.filter(pl.col("phi_audio").is_null() | pl.col("phi_audio").is_nan())["segment_id"].to_list()
    assert len(absent) == 3


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
    with pytest.raises(MissingGroupError, match="no saved fixed-split weights for model .nope."):
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
    from ambiguity.report.sections import attribution

    segs = trained.segments()
    meta = [json.dumps({"planted": "text" if i % 4 == 0 else ""}) for i in range(segs.height)]
    trained.upsert_segments(segs.with_columns(pl.Series("metadata", meta)).to_arrow())
    rep = Report(trained, tmp_path / "r", ReportSettings(unimodal=["text.syn", "noise"], splits=("test", "val"), flag="planted"))
    sec = Section("attribution", "t")
    attribution.build(rep, sec)
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
    from ambiguity.report.sections import conflicts

    rep = Report(trained, tmp_path / "r", ReportSettings(unimodal=["text.syn", "noise"], splits=("test", "val")))
    sec = Section("conflicts", "t")
    conflicts.build(rep, sec)
    summary = pl.read_csv(tmp_path / "r" / "tables" / "conflict_summary.csv")
    assert summary["n"].to_list() == [trained.read("predictions", where="model = 'noise' AND split IN ('test', 'val')").height]
    corr = pl.read_csv(tmp_path / "r" / "tables" / "conflict_correlations.csv")
    assert "annotator disagreement" in corr["with"].to_list()


# -- the crossfit scheme: every number from the fold model that never saw the segment's group ---------------
def _grouped(path, n=150, n_dialogs=25, seed=4):
    """Synthetic segments with a dialog_id metadata key (n / n_dialogs segments per dialog)."""
    import json

    import pyarrow as pa

    from ambiguity.stores import schema as S

    store = open_store(path)
    ids, labels, splits, info, noise = synthetic(n=n, seed=seed)
    meta = [json.dumps({"dialog_id": f"d{i % n_dialogs:02d}"}) for i in range(n)]
    store.upsert_segments(pa.table({
        "segment_id": ids, "media": [None] * n, "audio": [None] * n, "start_s": [None] * n, "end_s": [None] * n,
        "transcript": [None] * n, "label": labels, "split": splits, "metadata": meta}, schema=S.SEGMENTS_SCHEMA))
    write_vector_group(store, "text.syn", ids, info, modality="text")
    write_scalar_group(store, "noise", ids, noise, modality="audio")
    return store


@pytest.fixture(scope="module")
def crossfitted(tmp_path_factory):
    """A store trained ONLY with --folds (no fixed-split model at all)."""
    from ambiguity.models.crossfit import CrossfitConfig, crossfit

    store = _grouped(tmp_path_factory.mktemp("cfattr") / "store")
    crossfit(store, ["text.syn", "noise"], cv=CrossfitConfig(folds=4, repeats=2, group_by="dialog_id", seed=1),
             config=TrainConfig(epochs=3, device="cpu"))
    return store


def _dialog_of(store) -> dict[str, str]:
    import json

    segs = store.segments(["segment_id", "metadata"])  # the group as ingested, not as the folds table wrote it
    return {s: json.loads(m)["dialog_id"] for s, m in zip(segs["segment_id"], segs["metadata"], strict=True)}


def test_crossfit_attribution_comes_from_the_fold_model_that_never_saw_the_group(crossfitted):
    res = attribute(crossfitted, "fusion")  # auto: the store has fold models only, so crossfit
    assert res.scheme == "crossfit" and "held-out fold" in res.caption()
    long = read_attributions(crossfitted, "fusion")
    n = crossfitted.segments().height
    # every segment once per repeat per player
    assert long.group_by(["repeat", "player"]).len()["len"].to_list() == [n] * 4
    dialog = _dialog_of(crossfitted)
    fits = crossfitted.read("fits")  # the training record as the crossfit run wrote it, read raw
    seen = {f"{r['run_id']}|{r['repeat']}|{r['fold']}": {dialog[s] for s in r["train_ids"] + r["val_ids"]}
            for r in fits.iter_rows(named=True)}
    for row in long.select("segment_id", "model_run_id").unique().iter_rows(named=True):
        assert dialog[row["segment_id"]] not in seen[row["model_run_id"]], row
    # efficiency for each fold model, per segment, to 1e-6
    per = long.group_by(["segment_id", "repeat"]).agg(pl.col("phi").sum(), pl.col("v_all").first(), pl.col("v_empty").first())
    np.testing.assert_allclose(per["phi"].to_numpy(), (per["v_all"] - per["v_empty"]).to_numpy(), atol=1e-6)
    # v_all is the fold model's own out-of-fold prediction (the predictions table), repeat by repeat
    pred = read_predictions_cf(crossfitted)
    j = long.filter(pl.col("player") == "text.syn").join(pred, on=["segment_id", "repeat"])
    assert j.height == 2 * n
    np.testing.assert_allclose(j["v_all"].to_numpy(), j["p_correct"].to_numpy(), atol=1e-5)
    # the reader averages over repeats, with the SD
    w = wide(long)
    assert w.height == n and set(w["n_repeats"].to_list()) == {2}
    mean_text = long.filter(pl.col("player") == "text.syn").group_by("segment_id").agg(pl.col("phi").mean()).sort("segment_id")
    np.testing.assert_allclose(w["phi_text"].to_numpy(), mean_text["phi"].to_numpy())
    assert w["sd_text"].is_not_null().all()
    # share: phi over the segment's sum of |phi|
    one = long.filter((pl.col("repeat") == 0) & (pl.col("segment_id") == long["segment_id"][0]))
    np.testing.assert_allclose(one["share"].to_numpy(), one["phi"].to_numpy() / np.abs(one["phi"].to_numpy()).sum())


def read_predictions_cf(store):
    from ambiguity.models.predictions import read_predictions

    return read_predictions(store, ["fusion"], scheme="crossfit").select("segment_id", "repeat", "p_correct")


def test_crossfit_attribution_cli_and_bad_input(crossfitted, tmp_path):
    r = CliRunner().invoke(main, ["--store", crossfitted.uri, "attribute", "--scheme", "crossfit"])
    assert r.exit_code == 0, r.output
    assert "crossfit scheme" in r.output and "no saved weights" not in r.output
    # the fixed scheme asked for on a store without a fixed-split model: one line saying what there is
    r = CliRunner().invoke(main, ["--store", crossfitted.uri, "attribute", "--scheme", "fixed"])
    assert r.exit_code != 0 and "cross-fitted weights only: use --scheme crossfit" in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_crossfit_scheme_without_crossfit_runs_says_what_to_run(trained):
    with pytest.raises(MissingGroupError, match=r"no cross-fitted fold models of 'fusion': run `ambiguity train GROUPS --folds 5`"):
        attribute(trained, "fusion", scheme="crossfit")
    r = CliRunner().invoke(main, ["--store", trained.uri, "attribute", "--scheme", "crossfit"])
    assert r.exit_code != 0 and "--folds 5" in r.output and len(r.output.strip().splitlines()) == 1


def test_fixed_scheme_defaults_to_the_test_split_and_says_so(trained):
    res = attribute(trained, "fusion", write=False)
    assert set(res.frame["split"].to_list()) == {"test"} and res.scheme == "fixed"
    assert res.caption().startswith("fixed scheme:") and "test segments" in res.caption()


def test_crossfit_quadrants_with_fixed_attributions_are_refused(crossfitted):
    from ambiguity.models.attributions import check_same_scheme

    attr = attribute(crossfitted, "fusion", write=False).frame
    fixed_like = attr.with_columns(pl.lit("fixed").alias("scheme"))
    quads = pl.DataFrame({"segment_id": ["s0000"], "quadrant": ["red"], "scheme": ["crossfit"]})
    with pytest.raises(ModelError, match="schemes cannot be mixed: the quadrants are crossfit, the attributions fixed"):
        check_same_scheme(fixed_like, quads)
    assert check_same_scheme(attr, quads) == "crossfit"
    with pytest.raises(ModelError, match="mixes the fixed and crossfit schemes"):
        wide(pl.concat([attr, fixed_like]))


def test_a_crossfit_only_store_scores_and_explores_out_of_sample(crossfitted):
    from ambiguity.explore.data import load
    from ambiguity.stats.score import ambiguity_scores

    res = ambiguity_scores(crossfitted)
    assert {"committee", "conflict", "disagreement"} <= set(res.available)  # no fixed rows needed
    assert res.complete().height == crossfitted.segments().height  # every segment has every component
    attribute(crossfitted, "fusion")
    sid = crossfitted.segments()["segment_id"][0]
    rows = load(crossfitted).detail(sid)["attributions"]
    long = read_attributions(crossfitted, "fusion").filter(pl.col("segment_id") == sid)
    # the explorer's page: the crossfit rows of this segment, averaged over the repeats like every reader
    assert {r["scheme"] for r in rows} == {"crossfit"} and {r["n_repeats"] for r in rows} == {2}
    want = long.group_by("modality").agg(pl.col("phi").mean())
    got = {r["modality"]: r["phi"] for r in rows}
    for m, phi in want.iter_rows():
        assert got[m] == pytest.approx(phi)
    preds = {r["model"]: r for r in load(crossfitted).detail(sid)["predictions"]}
    cf = read_predictions_cf(crossfitted).filter(pl.col("segment_id") == sid)
    assert set(preds) == {"text.syn", "noise", "fusion"}  # from the cross-fitted rows: the store has no fixed ones
    assert preds["fusion"]["p_correct"] == pytest.approx(cf["p_correct"].mean())


@pytest.fixture(scope="module")
def two_audio_groups(tmp_path_factory):
    """A fusion model over text, an informative audio group and a pure-noise audio group (two players of one
    modality); the noise group is absent for every fifth segment."""
    store = open_store(tmp_path_factory.mktemp("groups") / "store")
    n = 240
    ids, labels, splits, info, noise = synthetic(n=n, seed=5)
    write_segments(store, ids, labels, splits)
    rng = np.random.default_rng(5)
    write_vector_group(store, "text.syn", ids, info[:, :3] + rng.normal(scale=2.0, size=(n, 3)), modality="text")
    write_scalar_group(store, "audio.info", ids, info[:, 3:] + rng.normal(size=(n, info.shape[1] - 3)), modality="audio")
    write_scalar_group(store, "noise", ids, noise, status=["failed" if i % 5 == 0 else "ok" for i in range(n)], modality="audio")
    train(store, ["text.syn", "audio.info", "noise"], config=TrainConfig(epochs=4, seed=0))
    return store


def test_reliance_players_are_feature_groups(two_audio_groups):
    from ambiguity.models.reliance import counterfactual_swap, perceptual_score

    s = two_audio_groups
    ps = perceptual_score(s, "fusion", splits=["test", "val"], n_permutations=5, seed=1, n_boot=500)
    row = {r["player"]: r for r in ps.iter_rows(named=True)}
    # two audio groups are two players, each named by its group (keyed by modality they would collide)
    assert set(row) == {"text.syn", "audio.info", "noise"}
    assert {(r["player"], r["modality"], r["group"]) for r in row.values()} == {
        ("text.syn", "text", "text.syn"), ("audio.info", "audio", "audio.info"), ("noise", "audio", "noise")}
    assert row["audio.info"]["score"] > 0.05 and row["audio.info"]["ci_low"] > 0  # the informative audio group
    assert abs(row["noise"]["score"]) < row["audio.info"]["score"] / 3  # the noise group of the same modality
    # absent inputs are masked, not fed as NaN: the unpermuted accuracy is the stored predictions' accuracy on the
    # same segments (the fusion model predicted those with the absent noise group masked)
    pred = s.read("predictions", where="model = 'fusion'").filter(pl.col("split").is_in(["test", "val"]))
    assert pred.height == row["noise"]["n"]
    assert row["noise"]["accuracy"] == pytest.approx(float((pred["predicted"] == pred["label"]).mean()), abs=1e-12)

    pooled = perceptual_score(s, "fusion", splits=["test", "val"], n_permutations=5, seed=1, n_boot=500, pool=True)
    prow = {r["player"]: r for r in pooled.iter_rows(named=True)}
    assert set(prow) == {"text", "audio"} and prow["audio"]["group"] is None and prow["text"]["group"] is None
    assert prow["audio"]["score"] > 0.05  # both audio groups permuted together

    summary, pairs = counterfactual_swap(s, "fusion", splits=["test", "val"], seed=2)
    assert summary["player"].to_list() == ["text.syn", "audio.info", "noise"]
    assert set(pairs["player"].to_list()) == {"text.syn", "audio.info", "noise"}
    assert pairs.group_by("player").len().sort("player")["len"].to_list() == [summary["n"][0]] * 3
    assert (pairs["label"] != pairs["donor_label"]).all()
