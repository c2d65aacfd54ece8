"""Cross-fitted quadrants from (segment x repeat) arrays (stats.repeats) against a row-by-row definition."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from synth import write_segments  # noqa: E402

from ambiguity.errors import StatsError  # noqa: E402
from ambiguity.models.predictions import prediction_table, write_crossfit_rows  # noqa: E402
from ambiguity.stats.quadrant_tables import quadrants, table1, table2  # noqa: E402

CLASSES = ["a", "b", "c"]
N, R = 40, 3
IDS = [f"s{i:03d}" for i in range(N)]
LABELS = [CLASSES[i % 3] for i in range(N)]
NO_AUDIO = set(IDS[::8])  # the unimodal model never predicted these (no audio): left out, not an error


def _store(store, seed=0, drop_one_repeat=False):
    rng = np.random.default_rng(seed)
    write_segments(store, IDS, LABELS, ["train"] * N)
    probs = {m: rng.dirichlet([1, 1, 1], (R, N)) for m in ("audio.x", "fusion")}
    for m, p in probs.items():
        for r in range(R):
            keep = [i for i in range(N) if not (m == "audio.x" and IDS[i] in NO_AUDIO)]
            if drop_one_repeat and m == "audio.x" and r == 2:
                keep = keep[1:]  # one segment lacks its last repeat: the run is unfinished
            write_crossfit_rows(store, prediction_table(
                model=m, kind="probe" if m != "fusion" else "fusion", arch="x",
                modalities=["audio"] if m != "fusion" else ["audio", "text"], groups=[m],
                segment_ids=[IDS[i] for i in keep], splits=["train"] * len(keep), labels=[LABELS[i] for i in keep],
                classes=CLASSES, probs=p[r, keep], config={"folds": 2, "repeats": R}, run_id="cf", scheme="crossfit",
                fold=[i % 2 for i in keep], repeat=r))
    return probs


def test_three_class_crossfit_quadrants_match_the_definition(store):
    probs = _store(store)
    res = quadrants(store, "audio.x", "fusion", scheme="crossfit")
    frame = {r["segment_id"]: r for r in res.frame.iter_rows(named=True)}
    assert set(frame) == set(IDS) - NO_AUDIO
    order = ["red", "green", "blue", "yellow"]
    for i, sid in enumerate(IDS):
        if sid in NO_AUDIO:
            continue
        k = CLASSES.index(LABELS[i])
        qs = []
        for r in range(R):  # right = the argmax is the true label (three classes)
            u, f = probs["audio.x"][r, i].argmax() == k, probs["fusion"][r, i].argmax() == k
            qs.append("red" if u and not f else "green" if f and not u else "blue" if u and f else "yellow")
        c = Counter(qs)
        top = max(c.values())
        tied = [q for q in order if c[q] == top]
        row = frame[sid]
        if len(tied) == 1:
            assert row["quadrant"] == tied[0]
        assert row["quadrant"] in tied
        assert row["stability"] == pytest.approx(top / R)
        assert row["share_red"] == pytest.approx(c["red"] / R)
        assert row["disagreement_p"] == pytest.approx((c["red"] + c["green"]) / R)
        assert row["p_unimodal"] == pytest.approx(np.mean(probs["audio.x"][:, i, k]))
        assert row["p_fusion"] == pytest.approx(np.mean(probs["fusion"][:, i, k]))
        assert row["label"] == LABELS[i] and row["n_repeats"] == R


def test_tables_one_and_two_match_the_definition(store):
    probs = _store(store, seed=3)
    t1 = {r["model"]: r for r in table1(store, ["audio.x", "fusion"], scheme="crossfit").iter_rows(named=True)}
    for m in ("audio.x", "fusion"):
        acc, f1 = [], []
        for r in range(R):
            idx = [i for i in range(N) if not (m == "audio.x" and IDS[i] in NO_AUDIO)]
            y, p = [LABELS[i] for i in idx], [CLASSES[probs[m][r, i].argmax()] for i in idx]
            acc.append(np.mean([a == b for a, b in zip(y, p, strict=True)]))
            per_class = []  # macro F1 by its definition: 2 TP / (2 TP + FP + FN) per class, then the mean
            for c in sorted(set(y) | set(p)):
                tp = sum(a == c and b == c for a, b in zip(y, p, strict=True))
                fp = sum(a != c and b == c for a, b in zip(y, p, strict=True))
                fn = sum(a == c and b != c for a, b in zip(y, p, strict=True))
                per_class.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
            f1.append(np.mean(per_class))
        assert t1[m]["accuracy"] == pytest.approx(np.mean(acc))
        assert t1[m]["accuracy_sd"] == pytest.approx(np.std(acc, ddof=1))
        assert t1[m]["f1"] == pytest.approx(np.mean(f1))
        assert t1[m]["n"] == len(idx) and t1[m]["repeats"] == R
        assert t1[m]["modalities"] == ("audio" if m == "audio.x" else "audio+text")
    t2 = table2(store, ["audio.x", "fusion"], scheme="crossfit")
    rates = [np.mean([probs["audio.x"][r, i].argmax() != probs["fusion"][r, i].argmax()
                      for i in range(N) if IDS[i] not in NO_AUDIO]) for r in range(R)]
    assert t2.rate[0, 1] == pytest.approx(np.mean(rates))
    assert t2.n[0, 1] == N - len(NO_AUDIO)


def test_unfinished_run_is_refused(store):
    _store(store, drop_one_repeat=True)
    with pytest.raises(StatsError, match="unfinished"):
        quadrants(store, "audio.x", "fusion", scheme="crossfit")


def test_segment_index_positions_match_a_dict():
    import polars as pl

    from ambiguity.stats.repeats import SegmentIndex

    rng = np.random.default_rng(1)
    ids = [f"id-{i}-{rng.integers(1e9)}" for i in range(500)]
    index = SegmentIndex(pl.Series(ids))
    where = {s: i for i, s in enumerate(ids)}  # the definition: the position of each id
    asked = [ids[i] for i in rng.integers(0, 500, 300)] + ["nope", "", "id-0"]
    expect = [where.get(s, -1) for s in asked]
    assert index.positions(pl.Series(asked)).tolist() == expect
    index._enum = pl.Enum(index.ids)  # the fallback taken when two index ids share a hash
    assert index.positions(pl.Series(asked)).tolist() == expect
