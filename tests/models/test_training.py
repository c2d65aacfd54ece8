"""Training from the store: data loading and dropping, standardisation, best epoch, dynamics, CLI."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from synth import dataset, synthetic, synthetic_store, write_scalar_group, write_segments, write_vector_group

from ambiguity import open_store
from ambiguity.errors import ConfigError, ModelError
from ambiguity.models.dataset import load_dataset, standardise
from ambiguity.models.predictions import read_dynamics, read_predictions
from ambiguity.models.spec import TrainConfig
from ambiguity.models.training import fit, train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    store = synthetic_store(open_store(tmp_path_factory.mktemp("train") / "store"), n=300, seed=2)
    reports = train(store, ["text.syn", "noise"], config=TrainConfig(epochs=4, seed=0, device="cpu"))
    return store, reports


def test_standardise_uses_train_rows_only():
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    X = rng.normal(3, 2, size=(50, 4))
    X[40:] += 100  # val/test rows far away: must not move the train statistics
    tr = np.arange(40)
    Z, bad = standardise(X, tr)
    # Reference: sklearn.preprocessing.StandardScaler().fit(X[train]).transform(X)
    ref = StandardScaler().fit(X[tr]).transform(X)
    np.testing.assert_allclose(Z, ref, rtol=1e-5, atol=1e-5)
    assert bad == 0


def test_standardise_replaces_non_finite_and_constant_columns():
    X = np.array([[1.0, 5.0], [np.nan, 5.0], [3.0, 5.0], [np.inf, 5.0]])
    Z, bad = standardise(X, np.arange(4))
    assert bad == 2
    assert Z[1, 0] == 0 and Z[3, 0] == 0  # the train mean
    np.testing.assert_allclose(Z[[0, 2], 0], [-1, 1])  # mean 2, SD 1 over the finite train values
    np.testing.assert_array_equal(Z[:, 1], 0)  # constant: centred, not divided by 0


def test_load_dataset_drops_non_ok_and_unlabelled_segments(store):
    ids, labels, splits, info, noise = synthetic(n=40, seed=1)
    labels[0] = None
    write_segments(store, ids, labels, splits)
    status = ["ok"] * 40
    status[1], status[2] = "failed", "empty"
    write_vector_group(store, "vec", ids, info, status=status)
    write_scalar_group(store, "sca", ids[:-3], noise[:-3])  # the last three are missing
    ds = load_dataset(store, ["vec", "sca"])
    assert ds.dropped == {"no label or split": 1, "not ok in vec": 2, "not ok in sca": 3}
    assert len(ds.segment_ids) == 40 - 6
    assert ds.segment_ids == sorted(ds.segment_ids)
    assert ds.modalities == ("text", "audio")
    assert [x.shape[1] for x in ds.X] == [info.shape[1], noise.shape[1]]
    # Rows stay aligned with their segment in both groups.
    k = ds.segment_ids.index("s0010")
    np.testing.assert_allclose(ds.X[0][k], info[10].astype(np.float32))
    np.testing.assert_allclose(ds.X[1][k], noise[10].astype(np.float32))
    assert ds.feature_names[1] == [f"f{j}" for j in range(noise.shape[1])]


def test_train_writes_predictions_and_best_epoch_is_the_lowest_val_loss(trained):
    store, reports = trained
    assert [r.model for r in reports] == ["text.syn", "noise", "fusion"]
    preds = read_predictions(store)
    assert preds.height == 3 * 300
    for r in reports:
        p = preds.filter(pl.col("model") == r.model)
        probs = np.array(p["probs"].to_list())
        np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
        # p_correct is the probability of the true class; predicted the argmax.
        classes = p["classes"][0].to_list()
        true = [classes.index(lab) for lab in p["label"]]
        np.testing.assert_allclose(p["p_correct"], probs[np.arange(len(true)), true], rtol=1e-6)
        assert p["predicted"].to_list() == [classes[i] for i in probs.argmax(1)]
        # The stored predictions are those of the best epoch: their val loss is the history's minimum.
        val = p.filter(pl.col("split") == "val")["p_correct"].to_numpy()
        losses = [h["val_loss"] for h in r.history]
        assert np.isclose(-np.log(val).mean(), losses[r.best_epoch - 1], rtol=1e-4)
        assert losses[r.best_epoch - 1] == min(losses)
    fus = preds.filter(pl.col("model") == "fusion")
    assert fus["modalities"][0].to_list() == ["text", "audio"]
    att = np.array(fus["attention"].to_list())
    np.testing.assert_allclose(att.sum(1), 1, atol=1e-5)
    assert preds.filter(pl.col("model") == "noise")["attention"].null_count() == 300
    assert '"seed": 0' in fus["config"][0]


def test_dynamics_are_mean_sd_and_share_right_over_epochs(trained):
    store, _ = trained
    dyn = read_dynamics(store)
    n_train = read_predictions(store, ["fusion"], ["train"]).height
    for model in ("text.syn", "noise", "fusion"):
        d = dyn.filter(pl.col("model") == model)
        assert d.height == n_train
        assert set(d["split"].unique()) == {"train"}
        pce = np.array(d["p_correct_epochs"].to_list(), dtype=np.float64)
        assert pce.shape == (n_train, 4)
        np.testing.assert_allclose(d["confidence"], pce.mean(1), rtol=1e-6)
        np.testing.assert_allclose(d["variability"], pce.std(1), rtol=1e-5, atol=1e-7)
        assert d["correctness"].is_between(0, 1).all()


def test_retraining_replaces_a_models_rows(tmp_path):
    store = synthetic_store(open_store(tmp_path / "s"), n=120, seed=4)
    cfg = TrainConfig(epochs=2, device="cpu")
    train(store, ["text.syn", "noise"], fusion=False, config=cfg)
    st = store.group_status("noise")
    ids = st["segment_id"].to_list()[:5]
    write_scalar_group(store, "noise", ids, np.zeros((5, 7)), status=["failed"] * 5)
    reports = train(store, ["text.syn", "noise"], fusion=False, config=cfg)
    # missing is normal: each unimodal model keeps the segments that have its input
    assert reports[0].dropped == {} and reports[1].dropped == {"not ok in noise": 5}
    assert read_predictions(store, ["text.syn"]).height == 120
    preds = read_predictions(store, ["noise"])
    assert preds.height == 115
    assert not set(ids) & set(preds["segment_id"].to_list())
    assert preds["run_id"].n_unique() == 1


def test_multiclass(tmp_path):
    store = open_store(tmp_path / "s")
    ids, labels, splits, info, noise = synthetic(n=240, seed=5, n_classes=3)
    write_segments(store, ids, labels, splits)
    write_vector_group(store, "a", ids, info)
    write_scalar_group(store, "b", ids, noise)
    reports = train(store, ["a", "b"], config=TrainConfig(epochs=3, device="cpu"))
    preds = read_predictions(store, ["fusion"])
    assert preds["classes"][0].to_list() == ["c0", "c1", "c2"]
    assert len(preds["probs"][0]) == 3
    assert reports[-1].metrics["test"]["accuracy"] > 0.5  # chance is 1/3


def test_errors(store, tmp_path):
    ids, labels, splits, info, noise = synthetic(n=30, seed=0)
    write_segments(store, ids, labels, ["train"] * 30)
    write_vector_group(store, "v", ids, info)
    write_scalar_group(store, "w", ids, noise)
    with pytest.raises(ModelError, match="split 'val'"):
        fit(load_dataset(store, ["v"]), TrainConfig(epochs=1))
    with pytest.raises(ModelError, match="no feature group"):
        load_dataset(store, ["nope"])
    with pytest.raises(ConfigError, match="at least two feature groups"):
        train(store, ["v"])
    with pytest.raises(ConfigError, match="unknown architecture"):
        TrainConfig(arch="svm")
    with pytest.raises(TypeError, match="fusio"):
        train(store, ["v", "w"], fusio=False)  # type: ignore[call-arg]
    one = open_store(tmp_path / "one")
    write_segments(one, ids, ["x"] * 30, splits)
    write_vector_group(one, "v", ids, info)
    with pytest.raises(ModelError, match="one class"):
        load_dataset(one, ["v"])


def test_fit_refuses_to_leak_val_into_training():
    ds = dataset(n=200, seed=0)
    a = fit(ds, TrainConfig(epochs=2, device="cpu"))
    ds.X[0][ds.index("val")] += 1000.0  # val and test features change: training (train rows only) must not
    ds.X[1][ds.index("test")] *= -50.0
    b = fit(ds, TrainConfig(epochs=2, device="cpu"))
    # The per-epoch train predictions are the same (which epoch is kept may differ: val decides that).
    np.testing.assert_array_equal(a.p_correct_epochs, b.p_correct_epochs)


def test_cli_train_then_quadrants(tmp_path):
    from ambiguity.cli import main

    store = synthetic_store(open_store(tmp_path / "s"), n=200, seed=6)
    runner = CliRunner()
    r = runner.invoke(main, ["--store", store.uri, "train", "text.syn", "noise", "--epochs", "2", "--device", "cpu", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "fusion (fusion on text.syn, noise)" in r.output
    out = tmp_path / "out"
    r = runner.invoke(main, ["--store", store.uri, "quadrants", "--unimodal", "text", "--split", "test,val", "--bootstrap", "200", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "Quadrants: text.syn vs fusion" in r.output and "Table 1" in r.output and "Table 2" in r.output
    for name in ("table1.csv", "table2.tex", "figure2_quadrants.png", "figure2_quadrants.svg", "datamap.png", "quadrants_text.syn.csv"):
        assert (out / name).stat().st_size > 0
    r = runner.invoke(main, ["--store", store.uri, "quadrants", "--unimodal", "text", "--split", "test", "--split", "val",
                             "--bootstrap", "50", "--format", "json"])
    assert r.exit_code == 0, r.output
    tabs = json.loads(r.output)
    assert set(tabs) == {"quadrants text.syn vs fusion", "table1", "table2"}
    assert sum(row["n"] for row in tabs["quadrants text.syn vs fusion"]) == pl.read_csv(out / "quadrants_text.syn.csv").height
    r = runner.invoke(main, ["--store", store.uri, "train", "text.syn", "--device", "cpu"])
    assert r.exit_code == 2 and "at least two feature groups" in r.output


def test_batches_merge_a_last_single_sample_with_two_parts():
    import torch

    from ambiguity.models.training import _batches

    parts = _batches(torch.arange(33), 32)  # 32 + 1: batch norm cannot train on the 1, so it joins the 32
    assert [len(p) for p in parts] == [33]
    assert [len(p) for p in _batches(torch.arange(65), 32)] == [32, 33]


def test_plan_models():
    """train() and crossfit() make the models plan_models() lists: unimodal ones first, repeats dropped."""
    from ambiguity.models.spec import plan_models

    base = TrainConfig(epochs=2, seed=7)
    specs = plan_models(["a", "b", "a"], {"names": {"a": "A"}, "unimodal_arch": "mlp", "config": base})
    assert [(s.name, s.groups, s.cfg.arch, s.cfg.seed) for s in specs] == [
        ("A", ("a",), "mlp", 7), ("b", ("b",), "mlp", 7), ("fusion", ("a", "b"), "fusion", 7)]
    assert [s.name for s in plan_models(["a"], {"fusion": False})] == ["a"]
    assert [s.groups for s in plan_models(["a", "b"], {"unimodal": False, "fusion_name": "f"})] == [("a", "b")]
    with pytest.raises(ConfigError, match="nothing to train"):
        plan_models(["a", "b"], {"unimodal": False, "fusion": False})


def test_missing_inputs_fusion_predicts_every_segment_and_records_its_inputs(tmp_path):
    """A group absent on some segments (status empty): its unimodal model sees the others, fusion sees
    all, each fusion row lists the groups it saw and gives an absent group attention 0."""
    store = synthetic_store(open_store(tmp_path / "s"), n=160, seed=6)
    st = store.group_status("noise")
    ids = st["segment_id"].to_list()
    gone = set(ids[::4])
    write_scalar_group(store, "noise", ids, np.random.default_rng(0).normal(size=(len(ids), 7)),
                       status=["empty" if s in gone else "ok" for s in ids])
    ds = load_dataset(store, ["text.syn", "noise"], partial=True)
    assert len(ds.segment_ids) == 160 and int((~ds.mask[:, 1]).sum()) == len(gone)
    assert np.isnan(ds.X[1][~ds.mask[:, 1]]).all()  # an absent input is NaN, never a made-up value
    reports = train(store, ["text.syn", "noise"], config=TrainConfig(epochs=2, device="cpu"))
    assert {r.model: r.imputed for r in reports}["fusion"] == 0  # absent is not imputed
    preds = read_predictions(store)
    assert set(preds.filter(pl.col("model") == "noise")["segment_id"].to_list()) == set(ids) - gone
    fus = preds.filter(pl.col("model") == "fusion")
    assert fus.height == 160
    for r in fus.iter_rows(named=True):
        absent = r["segment_id"] in gone
        assert r["inputs"] == (["text.syn"] if absent else ["text.syn", "noise"])
        assert (r["attention"][1] == 0.0) == absent
