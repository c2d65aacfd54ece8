"""One SQL quoting helper: a value with quotes in it filters exactly itself in a real Lance table."""

from __future__ import annotations

import pyarrow as pa

from ambiguity.stores.sql import quote, quote_list


def test_quote_doubles_single_quotes():
    assert quote("a") == "'a'"
    assert quote("o'brien") == "'o''brien'"
    assert quote_list(["a", "b'c"]) == "('a', 'b''c')"


def test_quoted_values_filter_a_real_table(store):
    names = ["plain", "o'brien", "x' OR '1'='1", "semi;colon"]
    store.upsert("notes", pa.table({"segment_id": names, "n": list(range(len(names)))}))
    for name in names:
        got = store.read("notes", where=f"segment_id = {quote(name)}")
        assert got["segment_id"].to_list() == [name]
    got = store.read("notes", where="segment_id IN " + quote_list(names[1:3]))
    assert sorted(got["segment_id"].to_list()) == sorted(names[1:3])
