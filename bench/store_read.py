"""Reading one feature group into polars vs polars.read_parquet of the same data, same run."""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import Row, emit, timed  # noqa: E402


def main(n: int = 200_000, d: int = 88) -> list[Row]:
    import polars as pl
    import pyarrow as pa

    from ambiguity import open_store
    from ambiguity.extractors.runner import results_to_table
    from ambiguity.stores import schema as S

    tmp = Path(tempfile.mkdtemp())
    store = open_store(tmp / "store")
    rng = np.random.default_rng(0)
    cols = [f"f{i:02d}" for i in range(d)]
    schema = pa.schema([pa.field("segment_id", pa.string(), nullable=False), pa.field("status", pa.string(), nullable=False),
                        pa.field("error", pa.string())] + [pa.field(c, pa.float32()) for c in cols])
    X = rng.standard_normal((n, d)).astype(np.float32)
    ids = [f"s{i:07d}" for i in range(n)]
    table = results_to_table(schema, ids, [dict(zip(cols, row, strict=True)) for row in X])
    store.write_features("grp", table, schema, S.provenance("bench", "1", {}, "k"))
    store.compact()
    pq = tmp / "grp.parquet"
    pl.from_arrow(table).write_parquet(pq)

    def ours():
        return store.features("grp")

    def base():
        return pl.read_parquet(pq).filter(pl.col("status") == "ok")

    import lance

    ds = lance.dataset(str(tmp / "store" / f"{S.table_name('grp')}.lance"))

    def lance_alone():  # the floor for ours: Lance's own scan, the fastest settings found, nothing else
        return pl.from_arrow(ds.to_table(batch_size=65_536, batch_readahead=4), rechunk=False).filter(pl.col("status") == "ok")

    ours(), base(), lance_alone()  # warm the page cache for all
    t_o, t_b, t_l = [], [], []
    for _ in range(9):  # alternating, medians: others share this machine
        t_o.append(timed(ours)[0])
        t_b.append(timed(base)[0])
        t_l.append(timed(lance_alone)[0])
    t_ours, t_base, t_lance = statistics.median(t_o), statistics.median(t_b), statistics.median(t_l)
    print(f"  ours {[round(x, 3) for x in t_o]}, read_parquet {[round(x, 3) for x in t_b]}, lance alone {[round(x, 3) for x in t_l]}")
    assert ours().shape == base().shape == lance_alone().shape
    return [Row("store_read", f"read {n:,} x {d} float32 group into polars vs read_parquet", t_ours, t_base,
                t_ours / t_base, "<= 1.2", peer="polars.read_parquet of the same rows + status filter"),
            Row("store_read", "floor: Lance's own scan of the same group (64k batches) vs read_parquet", t_lance, t_base,
                t_lance / t_base, "<= 1.2", peer="polars.read_parquet of the same rows + status filter"),
            Row("store_read", "ours vs Lance's own scan (what the store adds)", t_ours, t_lance,
                t_ours / t_lance, "<= 1.2", peer="lance.dataset(...).to_table() + the same status filter")]


if __name__ == "__main__":
    emit("store_read", main())
