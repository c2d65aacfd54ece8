"""Cross-fitting: fold properties, leakage from the saved folds, determinism, bad input, resume after SIGKILL."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from synth import synthetic, write_scalar_group, write_vector_group

from ambiguity import open_store
from ambiguity.errors import ConfigError, ModelError
from ambiguity.models.crossfit import (
    CrossfitConfig,
    assign_folds,
    check_design,
    crossfit,
    inner_validation,
    read_fits,
    read_folds,
)
from ambiguity.models.predictions import read_predictions
from ambiguity.models.spec import TrainConfig
from ambiguity.models.training import train
from ambiguity.stores import schema as S

FAST = TrainConfig(epochs=2, device="cpu")


def grouped_store(path, n=160, n_dialogs=20, seed=3, extra_label=None):
    """Synthetic segments with a dialog_id metadata key (n / n_dialogs segments per dialog)."""
    store = open_store(path)
    ids, labels, splits, info, noise = synthetic(n=n, seed=seed)
    if extra_label:
        labels[0] = extra_label
    meta = [json.dumps({"dialog_id": f"d{i % n_dialogs:02d}", "speaker": f"sp{i % 7}"}) for i in range(n)]
    store.upsert_segments(pa.table({
        "segment_id": ids, "media": [f"m{i % 11}.mp4" for i in range(n)], "audio": [None] * n, "start_s": [None] * n,
        "end_s": [None] * n, "transcript": [None] * n, "label": labels, "split": splits, "metadata": meta,
    }, schema=S.SEGMENTS_SCHEMA))
    write_vector_group(store, "text.syn", ids, info, modality="text")
    write_scalar_group(store, "noise", ids, noise, modality="audio")
    return store


@pytest.fixture(scope="module")
def run2(tmp_path_factory):
    store = grouped_store(tmp_path_factory.mktemp("cf") / "store")
    train(store, ["text.syn", "noise"], config=FAST)  # fixed rows too: crossfit must leave them alone
    rep = crossfit(store, ["text.syn", "noise"], cv=CrossfitConfig(folds=4, repeats=2, group_by="dialog_id", seed=5), config=FAST)
    return store, rep


# -- fold properties ------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(st.data())
def test_folds_keep_groups_whole_and_classes_balanced(data):
    n = data.draw(st.integers(12, 150))
    k = data.draw(st.integers(2, 6))
    n_groups = data.draw(st.integers(k, n))
    seed = data.draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    groups = rng.permutation(np.arange(n) % n_groups).astype(str)  # every group occurs
    folds = assign_folds(y, groups, k, seed)
    assert set(folds.tolist()) <= set(range(k)) and (folds >= 0).all()  # every row has a fold
    for g in set(groups.tolist()):  # no group in two folds
        assert len(set(folds[groups == g].tolist())) == 1
    # Ungrouped (each segment its own group) the groups allow exact stratification: each fold's class
    # count is within one segment of the class's overall share of that fold.
    solo = assign_folds(y, np.arange(n).astype(str), k, seed)
    if min(np.bincount(y, minlength=2)) >= k:
        for f in range(k):
            m = solo == f
            for c in (0, 1):
                assert abs((y[m] == c).sum() - (y == c).mean() * m.sum()) <= 1 + 1e-9


def test_inner_validation_is_grouped_and_inside_training():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 120)
    groups = (np.arange(120) // 4).astype(str)
    folds = assign_folds(y, groups, 5, 1)
    tr = np.flatnonzero(folds != 0)
    va = inner_validation(y, groups, tr, 5, 1)
    assert set(va.tolist()) < set(tr.tolist()) and len(va) > 0
    fit_rows = np.setdiff1d(tr, va)
    assert not set(groups[va].tolist()) & set(groups[fit_rows].tolist())


# -- a cross-fitted run in the store ----------------------------------------------------------------
def test_every_segment_once_per_model_and_repeat(run2):
    store, rep = run2
    p = read_predictions(store, scheme="crossfit")
    n = store.segments().height
    assert rep.models == ("text.syn", "noise", "fusion")
    for (m, r), d in p.group_by(["model", "repeat"]):
        assert d.height == n and d["segment_id"].n_unique() == n, (m, r)
    assert p.select(["model", "repeat"]).unique().height == 3 * 2
    fixed = read_predictions(store)  # the fixed scheme is untouched, and its rows have no fold or repeat
    assert fixed.height == 3 * n and fixed["fold"].is_null().all() and set(fixed["scheme"]) == {"fixed"}


def test_no_group_in_two_folds_and_no_leak_into_training(run2):
    store, rep = run2
    folds = read_folds(store, rep.run_id)
    assert folds.group_by(["repeat", "group"]).agg(pl.col("fold").n_unique())["fold"].max() == 1
    group_of = dict(zip(folds["segment_id"], folds["group"], strict=True))
    # the saved folds say which segments are held out; each prediction's fold agrees with them
    p = read_predictions(store, scheme="crossfit")
    fold_of = {(r, s): f for r, s, f in zip(folds["repeat"], folds["segment_id"], folds["fold"], strict=True)}
    assert all(fold_of[(r, s)] == f for r, s, f in zip(p["repeat"], p["segment_id"], p["fold"], strict=True))
    fits = read_fits(store, rep.run_id)
    assert fits.height == 4 * 2
    for f in fits.iter_rows(named=True):
        seen = {group_of[s] for s in f["train_ids"]} | {group_of[s] for s in f["val_ids"]}
        held = {group_of[s] for s in f["test_ids"]}
        assert not seen & held, (f["repeat"], f["fold"])
        assert not {group_of[s] for s in f["train_ids"]} & {group_of[s] for s in f["val_ids"]}  # inner split grouped too
        assert {fold_of[(f["repeat"], s)] for s in f["test_ids"]} == {f["fold"]}
        # every model of the fold predicted exactly the held-out ids
        sub = p.filter((pl.col("repeat") == f["repeat"]) & (pl.col("fold") == f["fold"]))
        for m in rep.models:
            assert sorted(sub.filter(pl.col("model") == m)["segment_id"]) == sorted(f["test_ids"])


def test_same_seeds_bit_identical_and_rerun_is_a_no_op(run2, tmp_path):
    store, rep = run2
    other = grouped_store(tmp_path / "again")
    crossfit(other, ["text.syn", "noise"], cv=CrossfitConfig(folds=4, repeats=2, group_by="dialog_id", seed=5), config=FAST)
    a = read_predictions(store, scheme="crossfit").sort("key")
    b = read_predictions(other, scheme="crossfit").sort("key")
    assert a["key"].to_list() == b["key"].to_list()
    assert a["probs"].to_list() == b["probs"].to_list()  # bit-identical float32
    again = crossfit(other, ["text.syn", "noise"], cv=CrossfitConfig(folds=4, repeats=2, group_by="dialog_id", seed=5), config=FAST)
    assert again.fitted == 0 and again.skipped == 8
    assert read_predictions(other, scheme="crossfit").height == a.height


def test_repeats_reshuffle_and_a_new_setting_replaces_the_run(tmp_path):
    store = grouped_store(tmp_path / "s", n=100)
    crossfit(store, ["text.syn", "noise"], cv=CrossfitConfig(folds=3, repeats=2), config=FAST)
    f = read_folds(store)
    a, b = (f.filter(pl.col("repeat") == r).sort("segment_id")["fold"].to_list() for r in (0, 1))
    assert a != b
    rep = crossfit(store, ["text.syn", "noise"], cv=CrossfitConfig(folds=2, repeats=1), config=FAST)
    p = read_predictions(store, scheme="crossfit")
    assert set(p["run_id"]) == {rep.run_id} and p.height == 3 * 100
    assert set(read_folds(store)["run_id"]) == {rep.run_id}


def test_pool_of_workers_gives_identical_predictions(tmp_path):
    cv = dict(folds=3, repeats=1, seed=2)
    one = grouped_store(tmp_path / "one", n=90)
    two = grouped_store(tmp_path / "two", n=90)
    crossfit(one, ["text.syn", "noise"], cv=CrossfitConfig(**cv, workers=1), config=FAST)
    crossfit(two, ["text.syn", "noise"], cv=CrossfitConfig(**cv, workers=2), config=FAST)
    a = read_predictions(one, scheme="crossfit").sort("key")
    b = read_predictions(two, scheme="crossfit").sort("key")
    assert a["probs"].to_list() == b["probs"].to_list()


def test_segments_without_split_are_cross_fitted(tmp_path):
    store = grouped_store(tmp_path / "s", n=80)
    segs = store.segments().to_arrow()
    store.upsert_segments(segs.set_column(segs.schema.get_field_index("split"), "split", pa.array([None] * 80, pa.string())))
    crossfit(store, ["text.syn"], fusion=False, cv=CrossfitConfig(folds=2), config=FAST)
    assert read_predictions(store, scheme="crossfit").height == 80


# -- bad input ------------------------------------------------------------------------------------
def test_bad_fold_settings():
    with pytest.raises(ConfigError, match="at least 2 folds"):
        CrossfitConfig(folds=1)
    with pytest.raises(ConfigError, match="at least 1 repeat"):
        CrossfitConfig(repeats=0)


def test_bad_designs_name_the_class_or_column():
    labels = ["a"] * 6 + ["b"] * 3
    with pytest.raises(ModelError, match=r"^folds 4: class 'b' has only 3 segment\(s\)"):
        check_design(labels, [str(i) for i in range(9)], 4)
    with pytest.raises(ModelError, match="^folds 5: only 4 groups in 'dialog_id'"):
        check_design(labels, ["g1", "g2", "g3", "g4"] * 2 + ["g1"], 5, "dialog_id")
    with pytest.raises(ModelError, match=r"label 'c' has a single segment \(s9\)"):
        check_design([*labels, "c"], [f"s{i}" for i in range(10)], 2)


def test_unknown_group_column_names_the_available_ones(tmp_path):
    store = grouped_store(tmp_path / "s", n=40)
    with pytest.raises(ConfigError, match="^group_by dialog: no such .*columns: segment_id, media.*metadata keys: dialog_id, speaker"):
        crossfit(store, ["text.syn", "noise"], cv=CrossfitConfig(folds=2, group_by="dialog"), config=FAST)


def test_single_segment_label_in_the_store(tmp_path):
    store = grouped_store(tmp_path / "s", n=40, extra_label="rare")
    with pytest.raises(ModelError, match="label 'rare' has a single segment"):
        crossfit(store, ["text.syn", "noise"], cv=CrossfitConfig(folds=2), config=FAST)


def test_cli_errors_are_one_line(tmp_path):
    from ambiguity.cli import main

    grouped_store(tmp_path / "s", n=40)
    cases = [
        (["--folds", "1"], "at least 2 folds"),
        (["--folds", "2", "--repeats", "0"], "at least 1 repeat"),
        (["--folds", "30"], "--folds 30: class"),
        (["--folds", "50"], "--folds 50: only 40 labelled segments"),
        (["--folds", "2", "--group-by", "nope"], "--group-by nope: no such"),
        (["--repeats", "2"], "need --folds"),
    ]
    for extra, msg in cases:
        res = CliRunner().invoke(main, ["--store", str(tmp_path / "s"), "train", "text.syn", "noise", "--epochs", "1", *extra])
        assert res.exit_code != 0, extra
        assert msg in res.output and "Traceback" not in res.output, (extra, res.output)
        assert len([ln for ln in res.output.splitlines() if ln.lower().startswith("error")]) == 1


def test_cli_cross_fits(tmp_path):
    from ambiguity.cli import main

    grouped_store(tmp_path / "s", n=60)
    res = CliRunner().invoke(main, ["--store", str(tmp_path / "s"), "train", "text.syn", "noise", "--epochs", "1",
                                    "--folds", "3", "--repeats", "2", "--group-by", "dialog_id"])
    assert res.exit_code == 0, res.output
    assert "3 folds x 2 repeat(s), grouped by dialog_id, 60 segments" in res.output
    assert read_predictions(open_store(tmp_path / "s"), scheme="crossfit").height == 60 * 3 * 2


# -- resume after SIGKILL ----------------------------------------------------------------------------
_CHILD = """
import sys
from ambiguity import open_store
from ambiguity.models.crossfit import CrossfitConfig, crossfit
from ambiguity.models.spec import TrainConfig
crossfit(open_store(sys.argv[1]), ["text.syn", "noise"], cv=CrossfitConfig(folds=3, repeats=2, group_by="dialog_id"),
         config=TrainConfig(epochs=3, device="cpu"), on_fit=lambda r, k, s: print(f"fit {r} {k}", flush=True))
"""


def _fits_done(store_dir: Path) -> int:
    try:
        return read_fits(open_store(store_dir)).height
    except Exception:
        return 0


def test_sigkill_at_a_random_fold_resumes_without_duplicates(tmp_path):
    ref = grouped_store(tmp_path / "ref", n=120)
    crossfit(ref, ["text.syn", "noise"], cv=CrossfitConfig(folds=3, repeats=2, group_by="dialog_id"), config=TrainConfig(epochs=3, device="cpu"))
    want = read_predictions(ref, scheme="crossfit").sort("key")

    grouped_store(tmp_path / "killed", n=120)
    target = random.Random().randint(1, 4)  # of 6 (repeat, fold) units
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "killed")], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    seen = 0
    for line in proc.stdout:
        if line.startswith("fit "):
            seen += 1
            if seen == target:
                time.sleep(random.Random().uniform(0, 0.3))  # inside the next fold's fit (or its write)
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL, f"the run ended before fold {target} (rc {proc.returncode})"
    store = open_store(tmp_path / "killed")
    before = _fits_done(tmp_path / "killed")
    # a quiet machine may finish a later unit within the sleep (seen in CI at target 5): the
    # resume must then skip exactly what was written, whatever that is
    assert target <= before <= 6, (target, before)
    rep = crossfit(store, ["text.syn", "noise"], cv=CrossfitConfig(folds=3, repeats=2, group_by="dialog_id"), config=TrainConfig(epochs=3, device="cpu"))
    assert rep.skipped == before and rep.fitted == 6 - before, f"killed after {target} units"
    got = read_predictions(store, scheme="crossfit").sort("key")
    assert got["key"].n_unique() == got.height == want.height
    assert got["key"].to_list() == want["key"].to_list()
    assert got["probs"].to_list() == want["probs"].to_list(), f"killed after {target} units"


# -- the fixed split warns of leaking groups; run configs cross-fit -----------------------------------------
def test_fixed_train_warns_once_of_groups_shared_across_splits(tmp_path):
    from ambiguity.cli import main

    grouped_store(tmp_path / "s", n=60)  # dialogs were split at random across train/val/test
    res = CliRunner().invoke(main, ["--store", str(tmp_path / "s"), "train", "text.syn", "noise", "--epochs", "1"])
    assert res.exit_code == 0, res.output
    warn = [ln for ln in res.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warn) == 1, res.stderr
    assert "dialog_id:" in warn[0] and "groups also occur in" in warn[0] and "--folds 5 --group-by dialog_id" in warn[0]
    cf = CliRunner().invoke(main, ["--store", str(tmp_path / "s"), "train", "text.syn", "noise", "--epochs", "1", "--folds", "2"])
    assert cf.exit_code == 0 and "warning:" not in cf.stderr


def test_run_config_train_keys_cross_fit(tmp_path):
    from ambiguity.pipeline import Pipeline, Runner

    grouped_store(tmp_path / "s", n=60)
    pipe = Pipeline(tmp_path, str(tmp_path / "s"), tmp_path / "m.csv", tmp_path / "rep", {}, [], {}, {})
    lines = []
    runner = Runner(pipe, echo=lines.append)
    runner._train({"groups": ["text.syn", "noise"], "epochs": 1, "folds": 2, "repeats": 2, "group_by": "dialog_id"})
    assert any("2 folds x 2 repeat(s), grouped by dialog_id" in ln for ln in lines)
    assert read_predictions(runner.store, scheme="crossfit").height == 60 * 3 * 2
    with pytest.raises(ConfigError, match="unknown key"):
        runner._train({"groups": ["text.syn"], "fold": 2})
    with pytest.raises(ConfigError, match="need folds"):
        runner._train({"groups": ["text.syn", "noise"], "repeats": 2})
    runner._train({"groups": ["text.syn", "noise"], "epochs": 1, "folds": 2, "also_fixed": True})  # both schemes
    assert read_predictions(runner.store).height == 60 * 3
    assert read_predictions(runner.store, scheme="crossfit").height == 60 * 3


# -- negative control: a feature that only identifies the group, labels random per group ------------------------
def identity_store(path, n_groups=40, per=6, seed=11):
    """Labels drawn once per group (half the groups each class); ``ident`` (text) encodes the group and nothing
    else; ``noise`` (audio) is pure noise. Out of the group, nothing predicts the label."""
    rng = np.random.default_rng(seed)
    n = n_groups * per
    group_label = rng.permutation(np.arange(n_groups) % 2)
    centres = rng.normal(size=(n_groups, 32)) * 3
    g = np.repeat(np.arange(n_groups), per)
    ids = [f"s{i:04d}" for i in range(n)]
    labels = [f"c{group_label[k]}" for k in g]
    store = open_store(path)
    store.upsert_segments(pa.table({
        "segment_id": ids, "media": [None] * n, "audio": [None] * n, "start_s": [None] * n, "end_s": [None] * n,
        "transcript": [None] * n, "label": labels, "split": ["train"] * n,
        "metadata": [json.dumps({"group": f"g{k:02d}"}) for k in g]}, schema=S.SEGMENTS_SCHEMA))
    write_vector_group(store, "ident", ids, centres[g] + rng.normal(size=(n, 32)) * 0.3, modality="text")
    write_scalar_group(store, "noise", ids, rng.normal(size=(n, 4)), modality="audio")
    return store, dict(zip(ids, (f"g{k:02d}" for k in g), strict=True))


@pytest.fixture(scope="module")
def control(tmp_path_factory):
    from ambiguity.models.attributions import attribute

    out = {}
    for name, by in (("grouped", "group"), ("ungrouped", None)):
        store, group_of = identity_store(tmp_path_factory.mktemp(name) / "store")
        crossfit(store, ["ident", "noise"], cv=CrossfitConfig(folds=5, repeats=1, group_by=by, seed=2),
                 config=TrainConfig(device="cpu"))  # default epochs: 20 for the probes, 10 for fusion
        out[name] = (store, group_of, attribute(store, "fusion", scheme="crossfit").wide())
    return out


def _per_group(values: dict[str, float], group_of: dict[str, str]) -> np.ndarray:
    """The mean per group: labels are independent between groups only, so the groups are the sample."""
    by: dict[str, list[float]] = {}
    for s, v in values.items():
        by.setdefault(group_of[s], []).append(v)
    return np.array([np.mean(v) for v in by.values()])


def test_negative_control_grouped_accuracy_is_chance_and_ungrouped_is_not(control):
    from scipy import stats

    for name, (store, group_of, _) in control.items():
        p = read_predictions(store, ["ident"], scheme="crossfit")
        acc = _per_group(dict(zip(p["segment_id"], (p["predicted"] == p["label"]).cast(float), strict=True)), group_of)
        n = len(acc)
        # chance: 95% binomial (Clopper-Pearson) interval of n_groups independent coin flips around 0.5
        lo, hi = stats.binom.ppf([0.025, 0.975], n, 0.5) / n
        if name == "grouped":
            assert lo <= acc.mean() <= hi, (acc.mean(), lo, hi)
        else:  # the same segments, grouped by nothing: the model recognises the group and "predicts" its label
            assert acc.mean() > hi + 0.15, (acc.mean(), hi)  # far above chance


def test_negative_control_attribution_of_the_identity_modality(control):
    from scipy import stats

    for name, (_, group_of, w) in control.items():
        phi = _per_group(dict(zip(w["segment_id"], w["phi_text"], strict=True)), group_of)
        half = stats.t.ppf(0.975, len(phi) - 1) * phi.std(ddof=1) / np.sqrt(len(phi))
        lo, hi = phi.mean() - half, phi.mean() + half
        if name == "grouped":
            assert lo <= 0 <= hi, (lo, hi)  # with grouping the identity feature earns nothing on p(correct)
        else:
            assert lo > 0.1, (lo, hi)  # without it, it carries the (leaked) label


# -- nothing shown on a cross-fitted store is computed in sample ---------------------------------------------------
def _oof_mean_probs(store, group_of):
    """Per (model, segment), the mean over repeats of the cross-fitted probs, after checking from the raw fits
    table that the (repeat, fold) fit behind every row trained (and validated) on no segment of its group."""
    fits = {(r["repeat"], r["fold"]): {group_of[s] for s in r["train_ids"] + r["val_ids"]}
            for r in store.read("fits").iter_rows(named=True)}
    rows = store.read("predictions", where="scheme = 'crossfit'")
    for r in rows.select("segment_id", "repeat", "fold").iter_rows(named=True):
        assert group_of[r["segment_id"]] not in fits[(r["repeat"], r["fold"])], r
    return {
        (r["model"], r["segment_id"]): np.mean(np.array(r["probs"]), axis=0)
        for r in rows.group_by(["model", "segment_id"]).agg(pl.col("probs")).iter_rows(named=True)}


def test_report_and_explorer_show_no_number_computed_in_sample(run2, tmp_path):
    from scipy.spatial.distance import jensenshannon

    from ambiguity.explore.data import load
    from ambiguity.report.build import build_report
    from ambiguity.report.context import ReportSettings

    store, rep = run2  # the store also holds fixed-split predictions: in sample on its train split
    segs = store.segments(["segment_id", "metadata"])
    group_of = {s: json.loads(m)["dialog_id"] for s, m in zip(segs["segment_id"], segs["metadata"], strict=True)}
    oof = _oof_mean_probs(store, group_of)

    def jsd(s):  # from the definition: two unimodal distributions, base 2, squared JS distance
        return jensenshannon(oof[("text.syn", s)], oof[("noise", s)], base=2) ** 2

    out = tmp_path / "report"
    build_report(store, out, ReportSettings())
    conflicts = pl.read_csv(out / "tables" / "conflict_summary.csv")
    assert conflicts["n"][0] == len(group_of)  # every labelled segment, not the fixed test split
    np.testing.assert_allclose(conflicts["mean_jsd"][0], np.mean([jsd(s) for s in group_of]), atol=1e-6)
    ranked = pl.read_csv(out / "tables" / "most_ambiguous.csv")
    assert ranked.height > 0
    for r in ranked.iter_rows(named=True):  # each ranked segment's components come from out-of-fold predictions
        assert r["conflict"] == pytest.approx(jsd(r["segment_id"]), abs=1e-3)
    # attribution: every segment attributed by its fold models (checked against fits in test_attribute), none by
    # the fixed-split model: the per-quadrant counts cover every labelled segment
    means = pl.read_csv(out / "tables" / "attribution_means.csv")
    per_uni = means.filter(pl.col("modality") == "text").group_by("unimodal").agg(pl.col("n").sum())
    assert per_uni["n"].to_list() == [len(group_of)] * per_uni.height
    data = load(store)
    sc = data.scores.frame.filter(pl.col("conflict").is_not_null())
    assert sc.height == len(group_of)
    for r in sc.iter_rows(named=True):
        assert r["conflict"] == pytest.approx(jsd(r["segment_id"]), abs=1e-6)  # probs are stored as float32
