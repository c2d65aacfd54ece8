"""Cross-fitted quadrants: Wilson interval, shares and stability from the definition, schemes, Tables 1-2, CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from synth import write_segments  # noqa: E402

from ambiguity.errors import StatsError  # noqa: E402
from ambiguity.models.predictions import prediction_table, write_crossfit_rows, write_predictions  # noqa: E402
from ambiguity.stats.quadrant_tables import load_quadrants, quadrant_stability, quadrants, table1, table2  # noqa: E402
from ambiguity.stats.stability import (  # noqa: E402
    check_one_scheme,
    resolve_scheme,
    stability_from_repeats,
    wilson_interval,
)

QUADS = ("red", "green", "blue", "yellow")


# -- Wilson --------------------------------------------------------------------------------------
@pytest.mark.parametrize("k,n,ci", [(0, 3, 0.95), (1, 3, 0.95), (2, 3, 0.9), (3, 3, 0.95), (7, 20, 0.99), (5, 5, 0.8)])
def test_wilson_matches_statsmodels(k, n, ci):
    from statsmodels.stats.proportion import proportion_confint

    # Reference: statsmodels.stats.proportion.proportion_confint(k, n, alpha=1 - ci, method="wilson")
    ref = proportion_confint(k, n, alpha=1 - ci, method="wilson")
    lo, hi = wilson_interval(k, n, ci)
    np.testing.assert_allclose([lo, hi], ref, atol=1e-12)


def test_wilson_published_value():
    # Brown, Cai & DasGupta (2001), and by hand: k=0, n=3, z=1.959964 -> upper = z^2 / (n + z^2) = 0.56150
    lo, hi = wilson_interval(0, 3)
    assert lo == 0.0 and abs(hi - 0.561497) < 1e-6


# -- shares and stability from the definition -----------------------------------------------------------
@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(st.sampled_from(QUADS), min_size=1, max_size=7), min_size=1, max_size=15))
def test_stability_from_its_definition(per_segment):
    rows = [{"segment_id": f"s{i:02d}", "repeat": r, "quadrant": q} for i, qs in enumerate(per_segment) for r, q in enumerate(qs)]
    out = stability_from_repeats(pl.DataFrame(rows))
    assert out.height == len(per_segment)
    for i, qs in enumerate(per_segment):
        row = out.row(i, named=True)
        n = len(qs)
        shares = {q: qs.count(q) / n for q in QUADS}
        for q in QUADS:
            assert row[f"share_{q}"] == pytest.approx(shares[q])
        top = max(shares.values())
        assert row["stability"] == pytest.approx(top)
        assert shares[row["quadrant"]] == pytest.approx(top)
        # without probabilities a tie goes to the first of red, green, blue, yellow
        assert row["quadrant"] == next(q for q in QUADS if shares[q] == top)
        assert row["disagreement_p"] == pytest.approx(shares["red"] + shares["green"])
        assert row["disagreement_lo"] <= row["disagreement_p"] <= row["disagreement_hi"]
        assert row["n_repeats"] == n


def test_a_tie_goes_to_the_quadrant_of_the_mean_probabilities():
    df = pl.DataFrame({"segment_id": ["a", "a"], "repeat": [0, 1], "quadrant": ["red", "blue"],
                       "p_unimodal": [0.7, 0.9], "p_fusion": [0.4, 0.7]})  # means 0.8, 0.55: blue
    assert stability_from_repeats(df)["quadrant"].to_list() == ["blue"]


def test_two_quadrants_for_one_segment_and_repeat_refused():
    with pytest.raises(StatsError, match="two quadrants in one repeat"):
        stability_from_repeats(pl.DataFrame({"segment_id": ["a", "a"], "repeat": [0, 0], "quadrant": ["red", "blue"]}))


# -- a store with known cross-fitted probabilities --------------------------------------------------------
IDS = ["a", "b", "c", "d"]
LAB = ["1", "0", "1", "0"]
# P(label "1") per model, repeat and segment
P1 = {
    "text.x": [[0.9, 0.2, 0.4, 0.6], [0.8, 0.3, 0.6, 0.4], [0.7, 0.6, 0.3, 0.7]],
    "fusion": [[0.3, 0.1, 0.8, 0.2], [0.2, 0.2, 0.9, 0.3], [0.8, 0.3, 0.7, 0.6]],
}
MODS = {"text.x": ["text"], "fusion": ["text", "audio"]}


def _rows(model, r, probs, run_id="cf-test"):
    p = np.array(probs)
    return prediction_table(
        model=model, kind="probe" if model != "fusion" else "fusion", arch="x", modalities=MODS[model], groups=[model],
        segment_ids=IDS, splits=["train", "test", "val", None], labels=LAB, classes=["0", "1"], probs=np.stack([1 - p, p], 1),
        config={"folds": 2, "repeats": 3, "group_by": "dialog_id"}, run_id=run_id, scheme="crossfit", fold=[0, 1, 0, 1], repeat=r)


@pytest.fixture
def cf_store(store):
    write_segments(store, IDS, LAB, ["train", "test", "val", None])
    for m, per in P1.items():
        for r, probs in enumerate(per):
            write_crossfit_rows(store, _rows(m, r, probs))
    return store


@pytest.fixture
def fixed_store(store):
    """The first repeat's probabilities as fixed-split predictions (every segment in test), no cross-fitted rows."""
    write_segments(store, IDS, LAB, ["test"] * 4)
    for m in P1:
        p = np.array(P1[m][0])
        write_predictions(store, prediction_table(model=m, kind="probe", arch="x", modalities=MODS[m], groups=[m], segment_ids=IDS,
                                                  splits=["test"] * 4, labels=LAB, classes=["0", "1"], probs=np.stack([1 - p, p], 1)))
    return store


def _by_hand(model_u="text.x", model_f="fusion"):
    """Quadrant of each segment in each repeat, from p_correct > 0.5."""
    out = {}
    for i, lab in enumerate(LAB):
        qs = []
        for r in range(3):
            pu = P1[model_u][r][i] if lab == "1" else 1 - P1[model_u][r][i]
            pf = P1[model_f][r][i] if lab == "1" else 1 - P1[model_f][r][i]
            u, f = pu > 0.5, pf > 0.5
            qs.append("red" if u and not f else "green" if f and not u else "blue" if u else "yellow")
        out[IDS[i]] = qs
    return out


def test_crossfit_quadrants_cover_every_labelled_segment(cf_store):
    res = quadrants(cf_store, "text", "fusion")  # auto: both models have crossfit rows only
    assert res.scheme.name == "crossfit" and res.frame.height == 4  # a segment without a split is placed too
    hand = _by_hand()
    for row in res.frame.iter_rows(named=True):
        qs = hand[row["segment_id"]]
        for q in QUADS:
            assert row[f"share_{q}"] == pytest.approx(qs.count(q) / 3)
        assert row["disagreement_p"] == pytest.approx((qs.count("red") + qs.count("green")) / 3)
        assert row["n_repeats"] == 3
    cap = res.caption()
    assert "crossfit scheme (K=2 folds x R=3 repeats, grouped by dialog_id" in cap and "no stability cut" in cap
    st_ = quadrant_stability(cf_store, "text.x", "fusion")
    assert st_.columns == ["segment_id", "quadrant", "share_red", "share_green", "share_blue", "share_yellow", "stability",
                           "disagreement_p", "disagreement_lo", "disagreement_hi", "n_repeats"]


def test_min_stability_keeps_stable_segments_and_says_so(cf_store):
    full = load_quadrants(cf_store, "text.x", "fusion", scheme="crossfit")
    cut = quadrants(cf_store, "text.x", "fusion", scheme="crossfit", min_stability=0.9)
    assert cut.frame["segment_id"].to_list() == full.filter(pl.col("stability") >= 0.9)["segment_id"].to_list()
    assert "stability >= 0.9" in cut.caption()
    with pytest.raises(StatsError, match="stability cut needs cross-fitted"):
        load_quadrants(cf_store, "text.x", "fusion", scheme="fixed", min_stability=0.5)


def test_crossfit_asked_with_only_fixed_predictions(fixed_store):
    with pytest.raises(StatsError, match=r"no cross-fitted predictions for text.x, fusion .*run `ambiguity train GROUPS --folds 5`"):
        load_quadrants(fixed_store, "text.x", "fusion", scheme="crossfit")
    assert load_quadrants(fixed_store, "text.x", "fusion")["scheme"].unique().to_list() == ["fixed"]  # auto


def test_mixing_schemes_is_refused(cf_store):
    p = np.array(P1["fusion"][0])
    write_predictions(cf_store, prediction_table(model="other", kind="probe", arch="x", modalities=["audio"], groups=["o"],
                                                 segment_ids=IDS, splits=["test"] * 4, labels=LAB, classes=["0", "1"],
                                                 probs=np.stack([1 - p, p], 1)))
    with pytest.raises(StatsError, match="schemes cannot be mixed"):
        load_quadrants(cf_store, "other", "fusion")
    a = load_quadrants(cf_store, "text.x", "fusion")
    b = a.with_columns(pl.lit("fixed").alias("scheme"))
    with pytest.raises(StatsError, match="schemes cannot be mixed"):
        check_one_scheme([a, b])
    from ambiguity.models.predictions import model_summary

    with pytest.raises(StatsError, match="no fixed-split predictions for text.x"):
        resolve_scheme(model_summary(cf_store), ["text.x"], "fixed")


def test_an_unfinished_run_is_refused(cf_store):
    cf_store.delete("predictions", "model = 'fusion' AND repeat = 2")
    with pytest.raises(StatsError, match="unfinished"):
        load_quadrants(cf_store, "text.x", "fusion")


def test_tables_mean_and_sd_over_repeats(cf_store):
    t1 = table1(cf_store)
    for row in t1.iter_rows(named=True):
        acc = []
        for r in range(3):
            pred = ["1" if p > 0.5 else "0" for p in P1[row["model"]][r]]
            acc.append(np.mean([a == b for a, b in zip(pred, LAB, strict=True)]))
        assert row["accuracy"] == pytest.approx(np.mean(acc)) and row["accuracy_sd"] == pytest.approx(np.std(acc, ddof=1))
        assert row["repeats"] == 3 and row["n"] == 4
    t2 = table2(cf_store)
    rates = [np.mean([(a > 0.5) != (b > 0.5) for a, b in zip(P1["text.x"][r], P1["fusion"][r], strict=True)]) for r in range(3)]
    long = t2.to_polars().row(0, named=True)
    assert long["rate"] == pytest.approx(np.mean(rates)) and long["rate_sd"] == pytest.approx(np.std(rates, ddof=1))
    assert "±" in t2.matrix()["fusion"][0]


def test_crossfit_table2_gives_n_per_model(cf_store):
    # like the fixed Table 2: the segments each model predicted (per repeat), which differ when a model lacks inputs
    cf_store.delete("predictions", "model = 'fusion' AND segment_id = 'a'")
    wide = table2(cf_store).matrix()
    assert wide.columns == ["model", "text.x", "fusion", "n"]
    assert wide["n"].to_list() == [4, 3]
    assert table2(cf_store).to_polars()["n"].to_list() == [3]  # the pair's rate covers the segments both predicted


def test_cli_crossfit_quadrants_out_csv(cf_store, tmp_path):
    from ambiguity.cli import main

    out = tmp_path / "q"
    res = CliRunner().invoke(main, ["--store", cf_store.uri, "quadrants", "--scheme", "crossfit", "--min-stability", "0.6", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "K=2 folds x R=3 repeats" in res.output and "stability >= 0.6" in res.output and "mean ± SD over the repeats" in res.output
    csv = pl.read_csv(out / "quadrants_text.x.csv")
    for c in ("segment_id", "quadrant", "share_red", "share_green", "share_blue", "share_yellow", "stability"):
        assert c in csv.columns
    assert (csv["stability"] >= 0.6).all()
    assert (out / "figure2_quadrants.png").exists()
    bad = CliRunner().invoke(main, ["--store", cf_store.uri, "quadrants", "--scheme", "fixed"])
    assert bad.exit_code != 0 and bad.output.startswith("error: no fixed-split predictions")


# -- every consumer takes the scheme ---------------------------------------------------------------------
@pytest.fixture
def cf_features(cf_store):
    from synth import write_scalar_group, write_vector_group

    rng = np.random.default_rng(0)
    write_scalar_group(cf_store, "prosody", IDS, rng.normal(size=(4, 2)))
    write_vector_group(cf_store, "text.vec", IDS, rng.normal(size=(4, 3)))
    return cf_store


def test_compare_uses_modal_quadrants_and_states_the_scheme(cf_features):
    from ambiguity.stats.comparisons import compare_quadrant_frame, compare_quadrants

    res = compare_quadrants(cf_features, "text.x", "fusion", "prosody", [("red", "blue")], scheme="crossfit")
    assert res.n_segments == 4
    assert "crossfit scheme (K=2 folds x R=3 repeats, grouped by dialog_id" in res.describe()
    cut = compare_quadrants(cf_features, "text.x", "fusion", "prosody", [("red", "blue")], min_stability=0.6)
    assert "stability >= 0.6" in cut.describe()
    assert cut.n_segments == load_quadrants(cf_features, "text.x", "fusion").filter(pl.col("stability") >= 0.6).height
    q = load_quadrants(cf_features, "text.x", "fusion")
    mixed = pl.concat([q.head(2), q.tail(2).with_columns(pl.lit("fixed").alias("scheme"))])
    with pytest.raises(StatsError, match="schemes cannot be mixed"):
        compare_quadrant_frame(cf_features.features("prosody"), mixed, [("red", "blue")])


def test_sample_refuses_mixed_schemes_and_takes_crossfit(cf_store):
    from ambiguity.annotate.tasks import sample_from_store, stratified_sample

    q = load_quadrants(cf_store, "text.x", "fusion")
    with pytest.raises(StatsError, match="schemes cannot be mixed"):
        stratified_sample({"text": q, "audio": q.with_columns(pl.lit("fixed").alias("scheme"))}, 1, 0)
    with pytest.warns(UserWarning):  # a few segments only: some quadrants are short
        t = sample_from_store(cf_store, {"text": "text.x"}, "fusion", 1, 0, scheme="crossfit")
    modal = dict(zip(q["segment_id"], q["quadrant"], strict=True))
    assert all(modal[s] == qq for s, qq in zip(t.items["segment_id"], t.items["quadrant"], strict=True))


def test_boundary_caption_states_the_scheme(cf_features):
    from ambiguity.stats.boundary_store import boundary

    res = quadrants(cf_features, "text.x", "fusion")
    b = boundary(cf_features, "text.vec", k=1, quadrants=res.frame, quadrants_note=res.scheme.caption(), n_permutations=10)
    assert "quadrants: crossfit scheme (K=2" in b.describe()


def test_agreement_requadrants_items_on_the_asked_scheme(cf_store):
    from ambiguity.annotate.records import Answer, write_answers
    from ambiguity.annotate.records import task_agreement as agreement
    from ambiguity.annotate.tasks import save_task, stratified_sample

    q = load_quadrants(cf_store, "text.x", "fusion")
    fake = q.with_columns(pl.lit("yellow").alias("quadrant"), pl.lit(None, pl.String).alias("scheme"))  # as if sampled otherwise
    with pytest.warns(UserWarning):
        t = stratified_sample({"text": fake.drop("scheme")}, 4, 0, models={"text": "text.x"}, fusion="fusion", name="t1")
    save_task(cf_store, t)
    answers = [Answer("t1", a, it, s, rnd, j) for it, s in zip(t.items["item"], t.items["segment_id"], strict=True)
               for a, j in (("ann1", "1"), ("ann2", "0")) for rnd in ("unimodal", "multimodal")]
    write_answers(cf_store, answers)
    as_saved = agreement(cf_store, "t1", n_boot=10)
    assert set(as_saved.table["quadrant"]) <= {"yellow", "all"}
    now = agreement(cf_store, "t1", n_boot=10, scheme="crossfit")
    assert set(now.table["quadrant"]) - {"all"} == set(q["quadrant"])
    assert any("crossfit scheme (K=2" in n for n in now.notes)


def test_report_says_crossfit_in_its_captions(cf_features, tmp_path):
    from ambiguity.report.build import ReportSettings, build_report

    rep = build_report(cf_features, tmp_path / "rep", ReportSettings(audio_groups=["prosody"], permutations=10))
    by_key = {s.key: s for s in rep.sections}
    assert "crossfit scheme (K=2 folds x R=3 repeats" in by_key["table1"].markdown
    assert "mean ± SD over the repeats" in by_key["table2"].markdown
    assert "crossfit scheme" in (tmp_path / "rep" / "index.html").read_text()


def test_report_quadrant_counts_give_modal_and_per_repeat_counts(cf_features, tmp_path):
    from ambiguity.report.build import ReportSettings, build_report

    build_report(cf_features, tmp_path / "rep", ReportSettings(audio_groups=["prosody"], permutations=10))
    table = pl.read_csv(tmp_path / "rep" / "tables" / "quadrant_counts.csv")
    row = table.filter(pl.col("unimodal") == "text.x").row(0, named=True)
    by_hand = _by_hand()
    for q in ("red", "green", "blue", "yellow"):
        # the mean over the 3 repeats of the number of segments in q in that repeat
        per_repeat = sum(qs.count(q) for qs in by_hand.values()) / 3
        assert row[f"{q}_per_repeat"] == pytest.approx(round(per_repeat, 1))
    modal = []
    for i, qs in enumerate(by_hand.values()):
        if max(map(qs.count, qs)) > 1:
            modal.append(max(qs, key=qs.count))
        else:  # a three-way tie goes to the quadrant of the mean p(correct) over the repeats
            pu, pf = (np.mean([p[i] if LAB[i] == "1" else 1 - p[i] for p in P1[m]]) for m in ("text.x", "fusion"))
            modal.append("red" if pu > 0.5 >= pf else "green" if pf > 0.5 >= pu else "blue" if pu > 0.5 else "yellow")
    assert {q: row[q] for q in ("red", "green", "blue", "yellow")} == {q: modal.count(q) for q in ("red", "green", "blue", "yellow")}
    assert row["n"] == len(by_hand)


def test_models_from_two_crossfit_runs_are_refused(store):
    # the fusion model's folds come from another `train --folds` call: its quadrants would pair
    # predictions made on different held-out folds
    write_segments(store, IDS, LAB, ["train", "test", "val", None])
    for m, per in P1.items():
        for r, probs in enumerate(per):
            write_crossfit_rows(store, _rows(m, r, probs, run_id="cf-a" if m == "text.x" else "cf-b"))
    with pytest.raises(StatsError, match="different cross-fitting runs"):
        load_quadrants(store, "text.x", "fusion")


def test_a_stability_cut_on_the_fixed_split_is_refused(fixed_store):
    with pytest.raises(StatsError, match="a stability cut needs cross-fitted quadrants"):
        load_quadrants(fixed_store, "text.x", "fusion", min_stability=0.5)


def test_wilson_at_the_bounds_k_0_and_k_n():
    from ambiguity.stats.stability import wilson_interval

    lo, hi = wilson_interval(np.array([0, 5]), np.array([5, 5]))
    assert lo[0] == 0 and hi[1] == 1 and 0 < hi[0] < 1 and 0 < lo[1] < 1
    with pytest.raises(StatsError, match="0 <= k <= n"):
        wilson_interval(6, 5)


def test_a_crossfit_caption_without_recorded_settings_says_so():
    # imported cross-fitted rows (or a benchmark's) may carry no folds / repeats in their config
    from ambiguity.stats.stability import SchemeUsed

    assert "K=5 folds x R=3 repeats" in SchemeUsed("crossfit", None, 5, 3).caption()
    text = SchemeUsed("crossfit", None).caption()
    assert "folds not recorded x repeats not recorded" in text and "None" not in text
