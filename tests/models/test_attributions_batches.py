"""attribute() in batches of segments: the values do not depend on the batch size; the table holds one run;
export streams; a reader never mixes two runs."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from test_attribute import _grouped, _store

from ambiguity.models.attributions import WIDE_COLUMNS, attribute, export, read_attributions
from ambiguity.models.spec import TrainConfig
from ambiguity.models.training import train
from ambiguity.stores.tables import ATTRIBUTIONS

FLOATS = ["phi", "phi_se", "v_all", "v_empty"]
SAME = ["key", "model", "target", "scheme", "repeat", "fold", "segment_id", "split", "label", "player", "modality",
        "group", "present", "players", "method", "n_permutations", "seed", "model_run_id"]


@pytest.fixture(scope="module")
def fixed(tmp_path_factory):
    store = _store(tmp_path_factory.mktemp("batches") / "store", bad=(1, 5, 9))
    train(store, ["text.syn", "noise", "video.syn"], config=TrainConfig(epochs=3, seed=0))
    return store


@pytest.fixture(scope="module")
def crossfitted(tmp_path_factory):
    from ambiguity.models.crossfit import CrossfitConfig, crossfit

    store = _grouped(tmp_path_factory.mktemp("batches_cf") / "store")
    crossfit(store, ["text.syn", "noise"], cv=CrossfitConfig(folds=4, repeats=2, group_by="dialog_id", seed=1),
             config=TrainConfig(epochs=3, device="cpu"))
    return store


def _same_values(a: pl.DataFrame, b: pl.DataFrame) -> None:
    a, b = a.sort("key"), b.sort("key")
    assert a.select(SAME).equals(b.select(SAME))
    # The network runs in float32: a different number of rows per pass may round the last float32 bit differently.
    for c in FLOATS:
        np.testing.assert_allclose(a[c].to_numpy().astype(float), b[c].to_numpy().astype(float), rtol=0, atol=1e-6,
                                   err_msg=c)
    # share = phi / sum |phi| of the segment: a small sum amplifies that rounding, so relative
    np.testing.assert_allclose(a["share"].to_numpy().astype(float), b["share"].to_numpy().astype(float), rtol=1e-4,
                               atol=1e-6)
    ia = np.array([np.nan if v is None else v for r in a["interactions"].to_list() for v in (r or [])], dtype=float)
    ib = np.array([np.nan if v is None else v for r in b["interactions"].to_list() for v in (r or [])], dtype=float)
    np.testing.assert_allclose(ia, ib, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kw", [{"splits": ["train", "val", "test"]}, {"target": "logit", "pool": True},
                                {"method": "permutation", "n_permutations": 4, "splits": ["test", "val"]}])
def test_batch_size_does_not_change_the_values_fixed(fixed, kw):
    one = attribute(fixed, "fusion", batch=10**6, **kw)
    stored_one = read_attributions(fixed, "fusion", one.target, scheme="fixed")
    assert stored_one.height == one.frame.height and stored_one["run_id"].n_unique() == 1
    many = attribute(fixed, "fusion", batch=7, **kw)  # 7 segments a batch: many appends, then one compaction
    stored = read_attributions(fixed, "fusion", many.target, scheme="fixed")
    assert stored["run_id"].unique().to_list() == [many.run_id]  # the rerun replaced the first run's rows
    assert ATTRIBUTIONS.read(fixed, ["run_id"], model="fusion", target=many.target, scheme="fixed").height == stored.height
    _same_values(stored_one, stored)
    _same_values(one.frame, many.frame)
    assert many.tally.n == one.tally.n == stored["segment_id"].n_unique()
    assert many.tally.dominant == one.tally.dominant and many.dropped == one.dropped
    assert many.caption() == one.caption()


def test_batch_size_does_not_change_the_values_crossfit(crossfitted):
    one = attribute(crossfitted, "fusion", write=False, batch=10**6)
    many = attribute(crossfitted, "fusion", write=False, batch=5)  # a segment's repeats stay in one batch
    assert one.scheme == many.scheme == "crossfit" and one.frame["repeat"].n_unique() == 2
    _same_values(one.frame, many.frame)
    assert many.tally.dominant == one.tally.dominant and many.summary().splitlines()[0] == one.summary().splitlines()[0]
    # every segment attributed once per repeat, by the fold model of that repeat that held it out
    per = many.frame.group_by("segment_id", "player").agg(pl.col("repeat").n_unique(), pl.len())
    assert (per["repeat"] == 2).all() and (per["len"] == 2).all()
    # the summary's numbers, tallied batch by batch, are those of the whole frame
    w = many.wide()
    counts = dict(w["dominant"].value_counts().iter_rows())
    assert many.tally.dominant == counts and many.tally.n == w.height


def test_export_streams_the_stored_batches(fixed, tmp_path):
    res = attribute(fixed, "fusion", splits=["test", "val"], batch=11)
    parts = list(res.batches(size=40))  # from the store, before anything reads the whole run
    paths = {suffix: tmp_path / f"attr{suffix}" for suffix in (".parquet", ".jsonl", ".csv")}
    written = {suffix: export(res.batches(size=40), path) for suffix, path in paths.items()}
    whole = res.frame.sort("key")
    assert len(parts) > 1 and sum(p.height for p in parts) == whole.height
    for suffix, path in paths.items():
        assert written[suffix] == whole.height
        back = {".parquet": pl.read_parquet, ".jsonl": pl.read_ndjson, ".csv": pl.read_csv}[suffix](path)
        assert back.height == whole.height and back.columns == whole.columns
        back = back.sort("key")
        assert back["key"].to_list() == whole["key"].to_list()
        np.testing.assert_allclose(back["phi"].cast(pl.Float64).to_numpy(), whole["phi"].to_numpy(), atol=1e-12)


def test_a_reader_sees_one_run_while_a_rerun_is_being_written(fixed):
    first = attribute(fixed, "fusion", splits=["test"], target="p_correct")
    rows = read_attributions(fixed, "fusion", columns=WIDE_COLUMNS)
    assert rows.columns == list(WIDE_COLUMNS)
    # half of a rerun appended (as attribute() writes a batch), its old rows not yet deleted
    half = first.frame.head(first.frame.height // 2).with_columns(
        pl.lit("rerun").alias("run_id"), pl.lit("2999-01-01T00:00:00+00:00").alias("created_at"))
    fixed.append(ATTRIBUTIONS, half.to_arrow())
    assert ATTRIBUTIONS.read(fixed, ["key"], model="fusion", target="p_correct", scheme="fixed").height > rows.height
    seen = read_attributions(fixed, "fusion", columns=["segment_id", "run_id"])
    assert seen["run_id"].unique().to_list() == ["rerun"] and seen.height == half.height
