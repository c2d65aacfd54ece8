"""Leakage report: groups of one split that also occur in another, checked against set arithmetic done here."""

from __future__ import annotations

import json

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ambiguity.errors import ConfigError
from ambiguity.leakage import LeakageRow, leakage_report
from hypothesis_profiles import examples


def _segments(rows: list[tuple[str, str, dict]]) -> pl.DataFrame:
    return pl.DataFrame({
        "segment_id": [r[0] for r in rows],
        "split": [r[1] for r in rows],
        "metadata": [json.dumps(r[2]) for r in rows],
    })


def test_paper_like_splits_every_test_dialog_in_train():
    # Three dialogs, each cut into segments that land in all three splits (as in EmpSpeech's random split).
    rows = [(f"s{d}_{i}", sp, {"dialog_id": f"d{d}"}) for d in range(3) for i, sp in enumerate(["train", "train", "val", "test"])]
    rows.append(("lonely", "train", {"dialog_id": "d9"}))  # a train-only dialog
    out = leakage_report(_segments(rows))
    assert out == [
        LeakageRow("dialog_id", "train", 4, 3, ("val", "test")),
        LeakageRow("dialog_id", "val", 3, 3, ("train", "test")),
        LeakageRow("dialog_id", "test", 3, 3, ("train", "val")),
    ]
    assert out[2].line() == "dialog_id: 3 of 3 test groups also occur in train or val"


def test_no_leak_and_column_groups():
    df = _segments([("a", "train", {}), ("b", "test", {})]).with_columns(pl.Series("speaker", ["x", "y"]))
    out = leakage_report(df)
    assert [r.shared for r in out] == [0, 0]
    assert out[1].line() == "speaker: 0 of 1 test groups occur in another split"


def test_no_group_key_gives_nothing_and_named_missing_is_refused():
    df = _segments([("a", "train", {"topic": "x"})])
    assert leakage_report(df) == []
    with pytest.raises(ConfigError, match="no column or metadata key 'dialog'.*available: .*topic"):
        leakage_report(df, ["dialog"])


def test_named_group_column_and_missing_values_ignored():
    df = _segments([("a", "train", {"show": "1"}), ("b", "test", {"show": "1"}), ("c", "test", {})])
    out = leakage_report(df, ["show"])
    assert [(r.split, r.groups, r.shared) for r in out] == [("train", 1, 1), ("test", 1, 1)]


@settings(max_examples=examples(60), deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["train", "val", "test"]), st.integers(0, 6)), min_size=1, max_size=40))
def test_counts_match_set_arithmetic(pairs):
    df = _segments([(f"s{i}", sp, {"video": str(g)}) for i, (sp, g) in enumerate(pairs)])
    by = {}
    for sp, g in pairs:
        by.setdefault(sp, set()).add(str(g))
    for r in leakage_report(df):
        others = set().union(*(v for k, v in by.items() if k != r.split))
        assert r.groups == len(by[r.split])
        assert r.shared == len(by[r.split] & others)
        assert set(r.other_splits) == {k for k, v in by.items() if k != r.split and v & by[r.split]}


def test_media_and_audio_files_are_counted_beside_the_group_columns():
    df = _segments([("a", "train", {"dialog_id": "d1"}), ("b", "test", {"dialog_id": "d2"}), ("c", "test", {"dialog_id": "d3"})])
    df = df.with_columns(pl.Series("media", ["face1.mp4", "face1.mp4", "face2.mp4"]), pl.Series("audio", [None, None, None], pl.String))
    out = {(r.column, r.split): r for r in leakage_report(df)}
    assert out[("dialog_id", "test")].shared == 0  # the dialogs do not leak ...
    assert (out[("media", "test")].groups, out[("media", "test")].shared) == (2, 1)  # ... the face clip does
    assert not any(c == "audio" for c, _ in out)  # a column with no value is no group
    named = {(r.column, r.split) for r in leakage_report(df, ["dialog_id"])}
    assert ("media", "test") in named  # named columns do not turn the files off


@settings(max_examples=examples(60), deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1), st.integers(0, 5)), min_size=1, max_size=40))
def test_fold_leakage_matches_set_arithmetic(rows):
    from ambiguity.leakage import fold_leakage

    segs = pl.DataFrame({"segment_id": [f"s{i}" for i in range(len(rows))], "split": ["train"] * len(rows),
                         "metadata": ["{}"] * len(rows), "media": [f"m{m}" for _, _, m in rows]})
    folds = pl.DataFrame({"segment_id": [f"s{i}" for i in range(len(rows))], "repeat": [r for _, r, _ in rows],
                          "fold": [k for k, _, _ in rows]})
    got = {(r.column, r.repeat): (r.groups, r.shared) for r in fold_leakage(segs, folds)}
    for rep in {r for _, r, _ in rows}:
        where: dict[str, set[int]] = {}
        for k, r, m in rows:
            if r == rep:
                where.setdefault(f"m{m}", set()).add(k)
        assert got[("media", rep)] == (len(where), sum(len(v) > 1 for v in where.values()))
