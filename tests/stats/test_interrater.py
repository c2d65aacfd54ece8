"""Agreement statistics against independent references: scikit-learn, scipy, published tables
and the from-the-definition implementations of tests/stats/test_anchors.py (never statsmodels
or the krippendorff package, which the code wraps)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stats_refs import ref_alpha, ref_cohen, ref_fleiss

from ambiguity.errors import StatsError
from ambiguity.stats.interrater import (
    AgreementResult,
    agreement,
    cohen_kappa,
    fleiss,
    krippendorff_alpha,
)
from hypothesis_profiles import examples

# -- Cohen's kappa --------------------------------------------------------------------


@pytest.mark.parametrize("seed,k,n", [(0, 2, 30), (1, 2, 204), (2, 3, 50), (3, 5, 120), (4, 4, 7)])
def test_kappa_equals_sklearn(seed, k, n):
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(seed)
    labels = [f"class{i}" for i in range(k)]
    a = rng.choice(labels, n)
    # a correlated second rater, so kappa is not near 0 only
    b = np.where(rng.random(n) < 0.6, a, rng.choice(labels, n))
    ours = cohen_kappa(a.tolist(), b.tolist())
    # reference 1: sklearn.metrics.cohen_kappa_score(a, b)
    assert abs(ours - cohen_kappa_score(a, b)) < 1e-12
    # reference 2: Cohen's (1960) definition, written in the test
    assert abs(ours - ref_cohen(a, b)) < 1e-12


def test_kappa_reproduces_artstein_poesio_2008():
    # Published values as used by scikit-learn's own test:
    # scikit-learn/scikit-learn, sklearn/metrics/tests/test_classification.py::test_cohen_kappa
    # ("These label vectors reproduce the contingency matrix from Artstein and Poesio (2008), Table 1").
    y1 = [0] * 40 + [1] * 60
    y2 = [0] * 20 + [1] * 20 + [0] * 10 + [1] * 50
    assert round(cohen_kappa(y1, y2), 3) == 0.348  # Artstein & Poesio (2008), Table 1
    # "Multiclass example: Artstein and Poesio, Table 4."
    y1 = [0] * 46 + [1] * 44 + [2] * 10
    y2 = [0] * 52 + [1] * 32 + [2] * 16
    assert round(cohen_kappa(y1, y2), 4) == 0.8013
    # the unweighted case of the same test's "weighting example"
    y2 = [0] * 50 + [1] * 40 + [2] * 10
    assert round(cohen_kappa(y1, y2), 4) == 0.9315


def test_kappa_labels_argument_ignores_spurious_labels():
    from sklearn.metrics import cohen_kappa_score

    y1 = [0] * 40 + [1] * 60 + [2] * 4
    y2 = [0] * 20 + [1] * 20 + [0] * 10 + [1] * 50 + [2] * 4
    # sklearn: cohen_kappa_score(y1, y2, labels=[0, 1, 2]) keeps every class
    assert abs(cohen_kappa(y1, y2, labels=[0, 1, 2]) - cohen_kappa_score(y1, y2, labels=[0, 1, 2])) < 1e-12
    with pytest.raises(StatsError, match="not among the categories"):
        cohen_kappa(y1, y2, labels=[0, 1])


labels_st = st.lists(st.sampled_from(["emp", "neu", "other", "x"]), min_size=1, max_size=60)


@settings(max_examples=examples(150), deadline=None)
@given(labels_st)
def test_kappa_of_a_rater_with_itself_is_one(y):
    if len(set(y)) >= 2:
        assert cohen_kappa(y, y) == pytest.approx(1.0, abs=1e-12)
    else:
        assert math.isnan(cohen_kappa(y, y))  # one label only: kappa is undefined


@settings(max_examples=examples(150), deadline=None)
@given(st.data())
def test_kappa_symmetric_and_in_range(data):
    a = data.draw(labels_st)
    b = data.draw(st.lists(st.sampled_from(["emp", "neu", "other", "x"]), min_size=len(a), max_size=len(a)))
    k1, k2 = cohen_kappa(a, b), cohen_kappa(b, a)
    if math.isnan(k1):
        assert math.isnan(k2)
        assert len(set(a)) == 1 and set(a) == set(b)  # undefined only in this case
    else:
        assert abs(k1 - k2) < 1e-12
        assert -1.0 - 1e-12 <= k1 <= 1.0 + 1e-12


@pytest.mark.parametrize(
    "a,b,match",
    [
        ([], [], "no items"),
        (["a"], ["a", "b"], "different numbers"),
        (["a", None], ["a", "b"], "missing label"),
        ([1.0, float("nan")], [1.0, 2.0], "missing label"),
        ("ab", "ab", "sequence of labels"),
        (5, 5, "sequence of labels"),
    ],
)
def test_kappa_bad_input_raises_typed_error(a, b, match):
    with pytest.raises(StatsError, match=match):
        cohen_kappa(a, b)


def test_kappa_adversarial_inputs_return_numbers():
    # mixed types are compared as strings; a single disagreement among many classes is fine
    assert cohen_kappa([1, "1", 2], ["1", 1, 2]) == pytest.approx(1.0)
    many = [str(i) for i in range(500)]
    assert cohen_kappa(many, many) == pytest.approx(1.0)
    assert math.isnan(cohen_kappa(["a"] * 10, ["a"] * 10))
    # one rater constant, the other not: p_e < 1, kappa defined (0 here)
    assert cohen_kappa(["a"] * 4, ["a", "b", "a", "b"]) == pytest.approx(0.0)


# -- Fleiss' kappa, Krippendorff's alpha --------------------------------------------------

# Fleiss (1971): 30 patients, 6 psychiatrists, 5 diagnoses, as in statsmodels'
# statsmodels/stats/tests/test_inter_rater.py::test_fleiss_kappa_irr, where the
# reference comes from R: irr::kappam.fleiss(diagnoses) -> Kappa = 0.4302445.
DIAGNOSES = [
    [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5], [2, 2, 2, 4, 4, 4],
    [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4], [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5],
    [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4], [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5],
    [3, 3, 3, 3, 3, 5], [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
    [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4], [1, 4, 4, 4, 4, 5],
    [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4], [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
]


def test_fleiss_reproduces_r_irr_on_fleiss_1971():
    # R: irr::kappam.fleiss(diagnoses)$value == 0.4302445
    assert fleiss(DIAGNOSES) == pytest.approx(0.4302445, abs=1e-7)


def test_fleiss_of_random_raters_equals_its_definition():
    rng = np.random.default_rng(5)
    data = rng.integers(0, 3, size=(40, 4))
    # reference: Fleiss (1971), written in the test
    assert fleiss(data.tolist()) == pytest.approx(ref_fleiss(np.stack([np.bincount(r, minlength=3) for r in data])), abs=1e-12)
    with pytest.raises(StatsError, match="same number"):
        fleiss([["a", "b"], ["a"]])
    with pytest.raises(StatsError, match="no items"):
        fleiss([])


def test_krippendorff_reproduces_published_example():
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the 4 observers x 12 units
    # example with missing values: nominal alpha = 0.743 (also in the krippendorff package's docstring).
    n = None
    data = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
        [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n],
    ]
    assert round(krippendorff_alpha(data), 3) == 0.743


def test_krippendorff_bad_input():
    assert math.isnan(krippendorff_alpha([["a", "a"], ["a", "a"]]))
    with pytest.raises(StatsError, match="two raters"):
        krippendorff_alpha([["a", "b"]])
    with pytest.raises(StatsError, match="same"):
        krippendorff_alpha([["a", "b"], ["a"]])
    with pytest.raises(StatsError, match="rated by two"):
        krippendorff_alpha([["a", None], [None, "b"]])


# -- the per-quadrant table -----------------------------------------------------------------

QUADS = ["red", "green", "blue", "yellow"]


def _study(n_per=12, annotators=("ann", "bob"), seed=0, labels=("emp", "neu")):
    rng = np.random.default_rng(seed)
    items = pl.DataFrame(
        {
            "item": [f"text:s{i}" for i in range(4 * n_per)],
            "quadrant": [q for q in QUADS for _ in range(n_per)],
            "modality": ["text", "audio"] * (2 * n_per),
            "label": rng.choice(labels, 4 * n_per).tolist(),
        }
    )
    rows = []
    for it, gold in zip(items["item"], items["label"], strict=True):
        for a in annotators:
            for rnd, p in (("unimodal", 0.65), ("multimodal", 0.8)):
                j = gold if rng.random() < p else rng.choice(labels)
                rows.append((a, it, rnd, str(j)))
    ann = pl.DataFrame(rows, schema=["annotator", "item", "round", "judgment"], orient="row")
    return ann, items


def accuracy_rows(res, ann, items):
    """Each row of ``res.accuracy`` with the judgments it counts: (row, unimodal, multimodal), each sorted by item."""
    joined = ann.join(items, on="item")
    for row in res.accuracy.iter_rows(named=True):
        sub = joined.filter(pl.col("annotator") == row["annotator"])
        if row["quadrant"] != "all":
            sub = sub.filter(pl.col("quadrant") == row["quadrant"])
        yield row, sub.filter(pl.col("round") == "unimodal").sort("item"), sub.filter(pl.col("round") == "multimodal").sort("item")


def test_table_matches_sklearn_per_quadrant_and_round():
    from sklearn.metrics import cohen_kappa_score

    ann, items = _study()
    res = agreement(ann, items, n_boot=200, seed=1)
    assert isinstance(res, AgreementResult) and res.statistic == "cohen"
    assert res.table["quadrant"].to_list() == QUADS + ["all"]
    joined = ann.join(items, on="item")
    for row in res.table.iter_rows(named=True):
        sub = joined if row["quadrant"] == "all" else joined.filter(pl.col("quadrant") == row["quadrant"])
        ks = {}
        for rnd in ("unimodal", "multimodal"):
            w = sub.filter(pl.col("round") == rnd).pivot(on="annotator", index="item", values="judgment").sort("item")
            # reference: sklearn.metrics.cohen_kappa_score(ann's labels, bob's labels) on the quadrant's items
            ks[rnd] = cohen_kappa_score(w["ann"].to_list(), w["bob"].to_list())
            assert abs(row[f"kappa_{rnd}"] - ks[rnd]) < 1e-12
            lo, hi = row[f"kappa_{rnd}_low"], row[f"kappa_{rnd}_high"]
            assert lo <= hi and -1 <= lo and hi <= 1
        assert abs(row["delta"] - (ks["multimodal"] - ks["unimodal"])) < 1e-12
        assert row["delta_low"] <= row["delta_high"]
        assert row["n"] == (items.height if row["quadrant"] == "all" else 12)


def test_table_alpha_and_fleiss_with_three_annotators():

    ann, items = _study(annotators=("ann", "bob", "cy"), seed=3)
    res = agreement(ann, items, n_boot=50, seed=0)
    assert res.statistic == "fleiss"
    joined = ann.join(items, on="item")
    for row in res.table.iter_rows(named=True):
        sub = joined if row["quadrant"] == "all" else joined.filter(pl.col("quadrant") == row["quadrant"])
        w = sub.filter(pl.col("round") == "multimodal").pivot(on="annotator", index="item", values="judgment").sort("item")
        data = np.array([[{"emp": 0, "neu": 1}[v] for v in w[a].to_list()] for a in ("ann", "bob", "cy")])
        # reference: Fleiss (1971) and Krippendorff (2011) from their definitions (test_anchors.py)
        assert abs(row["kappa_multimodal"] - ref_fleiss(np.stack([np.bincount(r, minlength=2) for r in data.T]))) < 1e-12
        assert abs(row["alpha_multimodal"] - ref_alpha(data.tolist(), "nominal")) < 1e-12
    assert "α unimodal" in res.to_markdown()


def test_accuracy_against_scipy_and_sklearn():
    from scipy.stats import binomtest
    from sklearn.metrics import accuracy_score

    ann, items = _study(seed=7)
    res = agreement(ann, items, n_boot=0)
    for row, u, m in accuracy_rows(res, ann, items):
        # reference: sklearn.metrics.accuracy_score(gold, judgments)
        assert row["acc_unimodal"] == pytest.approx(accuracy_score(u["label"], u["judgment"]), abs=1e-12)
        assert row["acc_multimodal"] == pytest.approx(accuracy_score(m["label"], m["judgment"]), abs=1e-12)
        # reference: scipy.stats.binomtest(k, n).proportion_ci(method="wilson")
        k = int((u["label"] == u["judgment"]).sum())
        ci = binomtest(k, u.height).proportion_ci(confidence_level=0.95, method="wilson")
        assert row["acc_unimodal_low"] == pytest.approx(ci.low, abs=1e-9)
        assert row["acc_unimodal_high"] == pytest.approx(ci.high, abs=1e-9)
        # reference: exact McNemar = two-sided binomial test on the discordant pairs (scipy)
        cu = (u["label"] == u["judgment"]).to_numpy()
        cm = (m["label"] == m["judgment"]).to_numpy()
        b, c = int(np.sum(cu & ~cm)), int(np.sum(~cu & cm))
        p = 1.0 if b + c == 0 else binomtest(b, b + c, 0.5).pvalue
        assert row["mcnemar_p"] == pytest.approx(p, abs=1e-12)


def test_bootstrap_is_seeded_and_ci_shrinks_with_more_items():
    ann, items = _study(n_per=10, seed=2)
    r1 = agreement(ann, items, n_boot=300, seed=4)
    r2 = agreement(ann, items, n_boot=300, seed=4)
    assert r1.table.equals(r2.table)
    big_ann, big_items = _study(n_per=120, seed=2)
    wide = r1.table.filter(pl.col("quadrant") == "all").row(0, named=True)
    narrow = agreement(big_ann, big_items, n_boot=300, seed=4).table.filter(pl.col("quadrant") == "all").row(0, named=True)
    assert narrow["kappa_unimodal_high"] - narrow["kappa_unimodal_low"] < wide["kappa_unimodal_high"] - wide["kappa_unimodal_low"]


def test_incomplete_items_are_left_out_and_noted():
    ann, items = _study()
    first = items["item"][0]
    ann2 = ann.filter(~((pl.col("item") == first) & (pl.col("annotator") == "bob") & (pl.col("round") == "multimodal")))
    res = agreement(ann2, items, n_boot=0)
    assert res.n_complete == items.height - 1
    assert res.table.filter(pl.col("quadrant") == "red")["n"][0] == 11
    assert any("left out" in n for n in res.notes)


def test_by_modality_and_renderings():
    ann, items = _study()
    res = agreement(ann, items, by_modality=True, n_boot=20)
    keys = list(zip(res.table["modality"], res.table["quadrant"], strict=True))
    assert keys[:5] == [("text", q) for q in QUADS] + [("text", "all")]
    assert keys[-1] == ("all", "all")
    md = res.to_markdown()
    assert md.startswith("| Modality | Quadrant | n |") and "Accuracy against the gold label" in md
    tex = res.to_latex()
    assert "\\begin{tabular}" in tex and "Change" in tex and "Cohen's kappa" in tex
    assert set(res.to_polars().columns) >= {"kappa_unimodal", "kappa_multimodal", "delta", "alpha_unimodal"}


def test_undefined_kappa_is_nan_and_rendered_as_dash():
    items = pl.DataFrame({"item": ["a", "b", "c"], "quadrant": ["red"] * 3, "label": ["emp"] * 3})
    rows = [(w, i, r, "emp") for w in ("ann", "bob") for i in ("a", "b", "c") for r in ("unimodal", "multimodal")]
    ann = pl.DataFrame(rows, schema=["annotator", "item", "round", "judgment"], orient="row")
    res = agreement(ann, items, n_boot=10)
    assert math.isnan(res.table["kappa_unimodal"][0])
    assert "| Red | 3 | – | – | – |" in res.to_markdown()


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda a: a.filter(pl.col("annotator") == "ann"), "at least two annotators"),
        (lambda a: a.with_columns(pl.lit("pass3").alias("round")), "unknown round"),
        (lambda a: pl.concat([a, a.head(1)]), "answered twice"),
        (lambda a: a.drop("judgment"), "missing column"),
        (lambda a: a.with_columns(pl.lit(None, pl.String).alias("judgment")), "no judgment"),
    ],
)
def test_table_bad_input(mutate, match):
    ann, items = _study()
    with pytest.raises(StatsError, match=match):
        agreement(mutate(ann), items)


def test_table_bad_parameters():
    ann, items = _study()
    with pytest.raises(StatsError, match="n_boot"):
        agreement(ann, items, n_boot=-1)
    with pytest.raises(StatsError, match="ci"):
        agreement(ann, items, ci=95)
    with pytest.raises(StatsError, match="no annotations by"):
        agreement(ann, items, annotators=["ann", "zed"])
    with pytest.raises(StatsError, match="expected a polars"):
        agreement(ann.to_pandas(), items)


@settings(max_examples=examples(60), deadline=None)
@given(
    st.dictionaries(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from([f"i{i}" for i in range(6)]), st.sampled_from(["unimodal", "multimodal"])),
        st.sampled_from(["x", "y", "z"]),
        max_size=36,
    ),
    st.lists(st.sampled_from(QUADS), min_size=6, max_size=6),
)
def test_table_on_arbitrary_answers_returns_a_result_or_a_typed_error(answers, quads):
    ann = pl.DataFrame(
        [(a, i, r, j) for (a, i, r), j in answers.items()],
        schema={"annotator": pl.String, "item": pl.String, "round": pl.String, "judgment": pl.String},
        orient="row",
    )
    items = pl.DataFrame({"item": [f"i{i}" for i in range(6)], "quadrant": quads, "label": ["x", "y"] * 3})
    try:
        res = agreement(ann, items, n_boot=20, seed=0)
    except StatsError:
        return
    t = res.table
    assert t["n"].max() <= 6 and res.n_complete <= 6
    for c in ("kappa_unimodal", "kappa_multimodal", "alpha_unimodal", "alpha_multimodal"):
        vals = [v for v in t[c].to_list() if v is not None and not math.isnan(v)]
        assert all(-1.0 - 1e-9 <= v <= 1.0 + 1e-9 for v in vals), (c, vals)
    res.to_markdown()
    res.to_latex()


def test_latex_with_the_accuracy_table_labels_both():
    ann, items = _study(seed=4)
    tex = agreement(ann, items, n_boot=20).to_latex(accuracy=True, label="tab:t5")
    assert tex.count("\\begin{table}") == 2
    assert "\\label{tab:t5}" in tex and "\\label{tab:t5-accuracy}" in tex


@pytest.mark.parametrize("ci", [1.5, 0.0, 95, "0.9"])
def test_ci_must_be_a_float_in_the_open_unit_interval(ci):
    ann, items = _study(n_per=3)
    with pytest.raises(StatsError, match="ci must be a float between 0 and 1"):
        agreement(ann, items, n_boot=0, ci=ci)


def test_markdown_accuracy_table_only_when_asked_and_present():
    ann, items = _study(seed=4)
    res = agreement(ann, items, n_boot=20)
    assert "Accuracy against the gold label" in res.to_markdown()
    assert "Accuracy against the gold label" not in res.to_markdown(accuracy=False)
    no_gold = agreement(ann, items.drop("label"), n_boot=20)
    assert no_gold.accuracy.height == 0 and "Accuracy against the gold label" not in no_gold.to_markdown()


def test_caption_names_the_statistic():
    ann, items = _study(seed=4)
    assert agreement(ann, items, n_boot=0).caption().startswith("Cohen's kappa between ann and bob")
    ann3, items3 = _study(annotators=("ann", "bob", "cy"), seed=3)
    assert agreement(ann3, items3, n_boot=0).caption().startswith("Fleiss' kappa between ann and bob and cy")
