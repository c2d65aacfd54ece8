"""stores.tables: filters as arguments, the filter strings they become (written out by hand below), and the rows
they select on a real store, compared with the same selection done in polars on the whole table."""

from __future__ import annotations

import pickle

import polars as pl
import pyarrow as pa
import pytest

from ambiguity.stores.schema import SEGMENTS_SCHEMA, SYSTEM_TABLES
from ambiguity.stores.sql import Not, where
from ambiguity.stores.tables import ANNOTATIONS, PREDICTIONS, TABLES, TASKS, Table


def test_filters_become_quoted_lance_filters():
    assert where() is None and where(model=None) is None
    assert where(model="text") == "model = 'text'"
    assert where(task="it's") == "task = 'it''s'"  # the apostrophe doubled, not closing the literal
    assert where(split=["test", "val"], repeat=2) == "split IN ('test', 'val') AND repeat = 2"
    assert where(split=[]) == "false"  # an empty list matches no row
    assert where(run_id=Not("r1"), model=Not(["a", "b"])) == "run_id != 'r1' AND model NOT IN ('a', 'b')"
    assert where(run_id=Not([])) is None and where(run_id=Not(None)) is None
    assert where(fold=[0, 1], ok=True) == "fold IN (0, 1) AND ok = true"
    with pytest.raises(TypeError, match="not float"):
        where(model=1.5)


def test_a_table_is_its_name_and_refuses_unknown_filters(store):
    assert PREDICTIONS == "predictions" and f"{TASKS}" == "tasks" and {"annotations": 1}[ANNOTATIONS] == 1
    back = pickle.loads(pickle.dumps(PREDICTIONS))
    assert back == PREDICTIONS and back.filters == PREDICTIONS.filters
    assert len(set(TABLES)) == len(TABLES)
    assert set(SYSTEM_TABLES) == set(TABLES)  # no feature group takes a table's name
    with pytest.raises(TypeError, match="cannot be filtered on modle"):
        PREDICTIONS.read(store, modle="x")
    with pytest.raises(TypeError, match="needs at least one filter"):
        PREDICTIONS.delete(store, model=None)


@pytest.fixture()
def answers(store):
    t = Table("answers_test", ("task", "annotator", "round"))
    rows = pl.DataFrame({
        "key": [f"k{i}" for i in range(8)],
        "task": ["pilot", "pilot", "it's", "it's", "o'neil; drop", "pilot", "it's", "main"],
        "annotator": ["ann", "bob", "ann", "bob", "ann", "cy", "cy", "ann"],
        "round": [1, 1, 1, 2, 2, 2, 1, 1],
    })
    store.upsert(t, rows.to_arrow(), key="key")
    return t, rows


@pytest.mark.parametrize("filters", [
    {"task": "it's"},
    {"task": "o'neil; drop"},
    {"task": ["pilot", "it's"], "annotator": Not("ann")},
    {"annotator": Not(["ann", "bob"])},
    {"round": 2, "task": None},
    {"task": []},
    {},
])
def test_reads_select_what_polars_selects(answers, store, filters):
    t, rows = answers
    expect = rows
    for col, v in filters.items():  # the reference: the same selection in polars, on the whole table
        neg = isinstance(v, Not)
        v = v.value if neg else v
        if v is None:
            continue
        cond = pl.col(col).is_in(v) if isinstance(v, list) else pl.col(col) == v
        expect = expect.filter(~cond if neg else cond)
    got = t.read(store, ["key"], **filters)
    assert sorted(got["key"].to_list()) == sorted(expect["key"].to_list())


def test_delete_removes_only_the_selected_rows(answers, store):
    t, rows = answers
    t.delete(store, task="it's", annotator=Not("cy"))
    assert sorted(t.read(store)["key"].to_list()) == ["k0", "k1", "k4", "k5", "k6", "k7"]


def test_segments_by_id_and_split(store):
    rows = [{"segment_id": s, "split": sp} for s, sp in (("a", "train"), ("b'c", "test"), ("d", "test"))]
    segs = pa.Table.from_pylist(rows, schema=SEGMENTS_SCHEMA)
    store.upsert_segments(segs)
    assert sorted(store.segments(["segment_id"], segment_id=["b'c", "d"])["segment_id"].to_list()) == ["b'c", "d"]
    assert store.segments(["segment_id"], split="train")["segment_id"].to_list() == ["a"]
    assert store.segments(["segment_id"], segment_id="d", split="train").height == 0


def test_limit_and_batches_read_what_a_whole_read_reads(answers, store):
    t, rows = answers
    whole = t.read(store, ["key", "task"], task=["pilot", "it's"]).sort("key")
    assert whole["key"].to_list() == sorted(rows.filter(pl.col("task").is_in(["pilot", "it's"]))["key"].to_list())
    one = t.read(store, ["key", "task"], task="it's", limit=1)
    assert one.height == 1 and one["task"][0] == "it's"
    parts = list(t.batches(store, ["key", "task"], batch_size=2, task=["pilot", "it's"]))
    assert all(p.height <= 2 for p in parts) and len(parts) >= 3
    assert pl.concat(parts).sort("key").equals(whole)


def test_ranges_read_every_row_in_scan_order_after_deletes_and_upserts(answers, store):
    """Row ranges (what a slow consumer reads: no read-ahead) give the rows a whole read gives, in its order,
    with deleted rows skipped and upserted ones present once."""
    t, rows = answers
    t.delete(store, task="main")
    store.upsert(t, pl.DataFrame({"key": ["k1", "k9"], "task": ["again", "new"], "annotator": ["bob", "dee"],
                                  "round": [3, 1]}).to_arrow(), key="key")
    whole = t.read(store, ["key", "task"])
    parts = list(t.ranges(store, ["key", "task"], batch_size=3))
    assert all(p.height <= 3 for p in parts) and len(parts) == -(-whole.height // 3)
    assert pl.concat(parts).equals(whole)
    assert sorted(whole["key"].to_list()) == ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k9"]
