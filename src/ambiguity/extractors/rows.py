"""Between store rows and extractor I/O: segment rows in, result tables out."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ambiguity.extractors.base import Empty, Failure, Result
from ambiguity.inputs import SegmentInput


def segment_inputs(rows: Sequence[dict[str, Any]]) -> list[SegmentInput]:
    out = []
    for r in rows:
        meta = json.loads(r["metadata"]) if r.get("metadata") else {}
        out.append(
            SegmentInput(
                segment_id=r["segment_id"],
                media=r.get("media"),
                start_s=r.get("start_s"),
                end_s=r.get("end_s"),
                audio_path=r.get("audio"),
                transcript_value=r.get("transcript"),
                label=r.get("label"),
                metadata=meta,
            )
        )
    return out


def results_to_table(schema, ids: Sequence[str], results: Sequence[Result]):
    """Rows in the group's schema (a pyarrow.Schema); vectors become FixedSizeList columns, failures nulls."""
    import numpy as np
    import pyarrow as pa

    status: list[str] = []
    error: list[str | None] = []
    for r in results:
        if isinstance(r, Failure):
            status.append("failed")
            error.append(r.reason)
        elif isinstance(r, Empty):
            status.append("empty")
            error.append(r.reason)
        else:
            status.append("ok")
            error.append(None)
    cols: dict[str, pa.Array] = {
        "segment_id": pa.array(list(ids), pa.string()),
        "status": pa.array(status, pa.string()),
        "error": pa.array(error, pa.string()),
    }
    for f in schema:
        if f.name in cols:
            continue
        values = [r.get(f.name) if isinstance(r, dict) else None for r in results]
        if pa.types.is_fixed_size_list(f.type):
            d = f.type.list_size
            mask = np.array([v is None for v in values])
            flat = np.zeros((len(values), d), dtype=f.type.value_type.to_pandas_dtype())
            for i, v in enumerate(values):
                if v is not None:
                    flat[i] = np.asarray(v).reshape(d)
            cols[f.name] = pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), d, mask=pa.array(mask))
        else:
            cols[f.name] = pa.array([None if v is None else _scalar(v) for v in values], f.type)
    return pa.table(cols, schema=pa.schema([schema.field(n) for n in cols]))


def _scalar(v: Any) -> Any:
    import numpy as np

    return v.item() if isinstance(v, np.generic) else v
