"""The Lance store: round trips (property-tested), provenance, joins, vectors, conflicts."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ambiguity import open_store
from ambiguity.errors import MissingGroupError, StoreError
from ambiguity.extractors.runner import results_to_table
from ambiguity.stores import schema as S
from hypothesis_profiles import examples

ids_strategy = st.lists(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12),
    min_size=1, max_size=30, unique=True,
)
finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


def feature_schema(d: int) -> pa.Schema:
    return pa.schema([
        pa.field("segment_id", pa.string(), nullable=False), pa.field("status", pa.string(), nullable=False),
        pa.field("error", pa.string()), pa.field("f", pa.float32()), pa.field("g", pa.float64()),
        pa.field("vector", pa.list_(pa.float32(), d)),
    ])


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=ids_strategy, d=st.integers(1, 64), data=st.data())
def test_write_then_read_is_identical(tmp_path_factory, ids, d, data):
    store = open_store(tmp_path_factory.mktemp("s") / "store")
    n = len(ids)
    vecs = np.array(data.draw(st.lists(finite32, min_size=n * d, max_size=n * d)), dtype=np.float32).reshape(n, d)
    f = np.array(data.draw(st.lists(finite32, min_size=n, max_size=n)), dtype=np.float32)
    g = np.array(data.draw(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=n, max_size=n)))
    sch = feature_schema(d)
    rows = results_to_table(sch, ids, [{"f": f[i], "g": g[i], "vector": vecs[i]} for i in range(n)])
    store.write_features("grp", rows, sch, S.provenance("x", "1", {}, "k"))
    got_ids, got = store.vectors("grp")
    order = [got_ids.index(i) for i in ids]
    assert got.dtype == np.float32 and got.shape == (n, d)
    np.testing.assert_array_equal(got[order], vecs)
    df = store.features("grp").to_pandas().set_index("segment_id").loc[ids]
    np.testing.assert_array_equal(df["f"].to_numpy(np.float32), f)
    np.testing.assert_array_equal(df["g"].to_numpy(), g)


def test_provenance_join_and_filters(store):
    a = pa.schema([pa.field("segment_id", pa.string(), nullable=False), pa.field("status", pa.string(), nullable=False),
                   pa.field("error", pa.string()), pa.field("x", pa.float64()), pa.field("frames_total", pa.float64())])
    b = pa.schema([pa.field("segment_id", pa.string(), nullable=False), pa.field("status", pa.string(), nullable=False),
                   pa.field("error", pa.string()), pa.field("y", pa.float64()), pa.field("frames_total", pa.float64())])
    store.write_features("a", results_to_table(a, ["s1", "s2", "s3"], [{"x": 1.0, "frames_total": 5.0}, {"x": 2.0, "frames_total": 6.0}, {"x": 3.0}]), a, S.provenance("ea", "1", {"p": 1}, "ka", model="m"))
    from ambiguity.extractors.base import Failure

    store.write_features("b", results_to_table(b, ["s1", "s2", "s3"], [{"y": 10.0}, Failure("bad"), {"y": 30.0}]), b, S.provenance("eb", "2", {}, "kb"))
    prov = store.groups()
    assert prov["a"]["params"] == {"p": 1} and prov["a"]["model"] == "m" and prov["b"]["extractor_version"] == "2"
    assert "created_at" in prov["a"] and "package_version" in prov["a"]
    joined = store.features(["a", "b"]).sort("segment_id")
    assert joined["segment_id"].to_list() == ["s1", "s3"]  # s2 failed in b
    assert "a.frames_total" in joined.columns and "b.frames_total" in joined.columns
    assert store.features("a", columns=["x"], where="x > 1.5").sort("x")["x"].to_list() == [2.0, 3.0]
    assert store.features("a", segment_ids=["s3"])["x"].to_list() == [3.0]
    assert store.features("b", status=None).height == 3
    with pytest.raises(MissingGroupError, match="no feature group 'zzz'"):
        store.features("zzz")
    with pytest.raises(MissingGroupError, match="no column nope"):
        store.features("a", columns=["nope"])


def test_unwritable_store_is_a_clear_error():
    # /proc refuses new directories even for root, which CI runs as.
    with pytest.raises(StoreError, match="cannot create the store at /proc/"):
        open_store("/proc/ambiguity-store")


def test_store_under_a_file_is_a_clear_error(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(StoreError, match="cannot create the store"):
        open_store(f / "store")


def test_invalid_group_names_are_refused(store):
    with pytest.raises(StoreError, match="invalid feature group name"):
        S.check_group_name("segments")
    with pytest.raises(StoreError):
        S.check_group_name("../x")


def test_compact_named_tables_or_all(store):
    sch = feature_schema(2)
    for g in ("a", "b"):
        for k in range(3):  # three commits: three fragments
            rows = results_to_table(sch, [f"{g}{k}"], [{"f": 1.0, "g": 2.0, "vector": np.ones(2, np.float32)}])
            store.write_features(g, rows, sch, S.provenance("x", "1", {}, "k"))
    assert store.compact([S.table_name("a")]) == {S.table_name("a"): 1}  # only the named table
    assert len(store._open(S.table_name("b")).get_fragments()) == 3
    every = store.compact()  # no names: every table
    assert set(every) == set(store.table_names()) and every[S.table_name("b")] == 1


def test_parse_splits():
    from ambiguity.errors import ConfigError

    assert S.parse_splits("val, test") == ("val", "test")
    assert S.parse_splits(["train", "val,train"]) == ("train", "val")
    for bad in ("", " , ", "nope", ["test", "dev"]):
        with pytest.raises(ConfigError, match="choose from"):
            S.parse_splits(bad)


def test_a_table_that_cannot_be_created_is_a_store_error(store, monkeypatch):
    sch = feature_schema(2)
    rows = results_to_table(sch, ["a"], [{"f": 1.0, "g": 2.0, "vector": np.ones(2, np.float32)}])

    def refuse(*a, **k):
        raise OSError("disk full")

    import lance

    monkeypatch.setattr(lance, "write_dataset", refuse)
    with pytest.raises(StoreError, match="cannot create table 'features.grp': disk full"):
        store.write_features("grp", rows, sch, S.provenance("x", "1", {}, "k"))


def test_concurrent_upserts_all_land_and_other_errors_are_not_retried(store, monkeypatch):
    """Eight threads upsert into one table at once: their commits conflict (Lance refuses a commit on a stale
    version) and are rebased and retried, so every row lands once. With Lance's own retries off, the same
    race loses commits (checked first, so the test shows that there is a race to lose)."""
    import threading

    import lance

    sch = feature_schema(2)

    def rows(i, j):
        return results_to_table(sch, [f"s{i}_{j}", "shared"], [{"f": float(j), "g": 0.0, "vector": np.ones(2, np.float32)}] * 2)

    store.write_features("grp", rows(0, 0), sch, S.provenance("x", "1", {}, "k"))
    name = S.table_name("grp")

    def race(write) -> list[BaseException]:
        failed: list[BaseException] = []

        def work(i):
            for j in range(6):
                try:
                    write(i, j)
                except OSError as exc:
                    failed.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return failed

    def unretried(i, j):
        lance.dataset(store._uri(name)).merge_insert("segment_id").when_matched_update_all() \
            .when_not_matched_insert_all().conflict_retries(0).execute(rows(100 + i, j))

    assert race(unretried), "no commit conflicted: the race below proves nothing"
    assert race(lambda i, j: store.upsert(name, rows(i, j), schema=sch)) == []
    ids = store.read(name, ["segment_id"])["segment_id"].to_list()
    assert {f"s{i}_{j}" for i in range(8) for j in range(6)} <= set(ids) and ids.count("shared") == 1

    def full(*a, **k):
        raise OSError("No space left on device")

    monkeypatch.setattr(store, "_open", lambda n: type("T", (), {"merge_insert": full, "schema": sch})())
    with pytest.raises(OSError, match="No space left"):  # not a conflict: raised at once
        store.upsert(name, rows(0, 1), schema=sch)


def test_segment_ids_are_never_null():
    assert S.SEGMENTS_SCHEMA.field("segment_id").nullable is False
    assert feature_schema(2).field("segment_id").nullable is False


def test_two_writers_inserting_the_same_new_keys_leave_one_row_each(tmp_path):
    # lance's merge_insert lets two concurrent inserts of one new key both commit unless the key
    # is declared a primary key (lance-format/lance#4585); found by the concurrent-writers test.
    import threading

    import pyarrow as pa

    from ambiguity import open_store

    store = open_store(tmp_path / "s")
    store.upsert("t", pa.table({"segment_id": ["x"], "v": [0.0]}))
    ids = [f"s{i}" for i in range(50)]
    go = threading.Barrier(4)

    def write(v: float) -> None:
        go.wait()
        store.upsert("t", pa.table({"segment_id": ids, "v": [v] * 50}))

    threads = [threading.Thread(target=write, args=(float(i),)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = store.read("t")
    assert got.height == 51 and got["segment_id"].n_unique() == 51


def test_a_store_written_by_lancedb_opens_and_takes_upserts(tmp_path):
    """Stores made before the store talked to pylance directly were LanceDB databases: the same
    folders of ``<name>.lance`` datasets (here without the primary-key declaration, as before lance#4585)."""
    lancedb = pytest.importorskip("lancedb")

    sch = feature_schema(12)
    prov = S.provenance("x", "1", {}, "k")
    rows = results_to_table(sch, ["a", "b"], [{"f": 1.0, "g": 2.0, "vector": np.ones(12, np.float32)}, {"f": 3.0}])
    db = lancedb.connect(tmp_path / "old")
    db.create_table(S.table_name("grp"), data=rows, schema=S.with_provenance(sch, prov), on_bad_vectors="null")
    store = open_store(tmp_path / "old")
    assert store.table_names() == [S.table_name("grp")] and store.groups()["grp"]["extractor"] == "x"
    bad = np.ones(12, np.float32)
    bad[3] = np.nan
    store.write_features("grp", results_to_table(sch, ["b", "c"], [{"f": 4.0, "vector": bad}, {"f": 5.0}]), sch, prov)
    got = store.features("grp").sort("segment_id")
    assert got["segment_id"].to_list() == ["a", "b", "c"] and got["f"].to_list() == [1.0, 4.0, 5.0]
    ids, vec = store.vectors("grp")
    assert np.isnan(vec[ids.index("b")]).all()  # a vector holding a NaN is stored null, as LanceDB stored it
    store.compact()
    assert store.count(S.table_name("grp")) == 3
    assert sorted(db.open_table(S.table_name("grp")).to_arrow()["segment_id"].to_pylist()) == ["a", "b", "c"]
    store.drop_group("grp")
    assert store.table_names() == [] and not store.has_group("grp")
