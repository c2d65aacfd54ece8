"""What a run will do: its group and provenance, the segments left, their order, the batches;
and what it did (:class:`RunReport`).

Shared by the local runner and the Ray engine, so both skip and order segments alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ambiguity.stores import schema as S

if TYPE_CHECKING:
    from ambiguity.extractors.base import Extractor
    from ambiguity.stores.lance import FeatureStore

@dataclass
class RunReport:
    group: str
    pending: int = 0
    ok: int = 0
    failed: int = 0
    empty: int = 0
    skipped: int = 0
    writes: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def processed(self) -> int:
        return self.ok + self.failed + self.empty

    def summary(self) -> str:
        s = (
            f"{self.group}: {self.processed} processed ({self.ok} ok, {self.failed} failed, {self.empty} empty), "
            f"{self.skipped} already done, {self.seconds:.1f} s"
        )
        return s + (" — interrupted, rerun to resume" if self.interrupted else "")

    def count(self, ids: Sequence[str], results: Sequence[Any]) -> None:
        """Count a written batch: ``results`` are the extractor's (a Failure, an Empty or features)."""
        from ambiguity.extractors.base import Empty, Failure

        for sid, r in zip(ids, results, strict=True):
            if isinstance(r, Failure):
                self.failed += 1
                self.failures.append((sid, r.reason))
            elif isinstance(r, Empty):
                self.empty += 1
            else:
                self.ok += 1


#: Segments of one source file sit together (they share a decode), in time order.
ORDER = ("_src", "start_s", "segment_id")


def plan(
    store: FeatureStore,
    group: str,
    *,
    recompute: bool = False,
    only_failed: bool = False,
    limit: int | None = None,
    segment_ids: Sequence[str] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """The segments to process in :data:`ORDER`, and how many are already done."""
    segs = store.segments()
    if segment_ids is not None:
        segs = segs.filter(segs["segment_id"].is_in(list(segment_ids)))
    st = store.group_status(group) if not recompute else None
    if st is not None and st.height:
        if only_failed:
            todo = st.filter(st["status"] == "failed")["segment_id"]
            keep = segs["segment_id"].is_in(todo.implode())
        else:
            done = st.filter(st["status"].is_in(["ok", "empty"]))["segment_id"]
            keep = ~segs["segment_id"].is_in(done.implode())
        skipped = segs.height - int(keep.sum())
        segs = segs.filter(keep)
    else:
        skipped = 0
        if only_failed:
            segs = segs.head(0)
    segs = segs.with_columns(_src=segs["audio"].fill_null(segs["media"])).sort(list(ORDER), nulls_last=True)
    if limit is not None:
        segs = segs.head(limit)
    return segs.drop("_src").to_dicts(), skipped


def prepare_group(store: FeatureStore, extractor: Extractor, group: str | None, recompute: bool) -> tuple[str, dict[str, Any]]:
    """The group name and provenance of a run; refuses a second configuration in one group."""
    group = S.check_group_name(group or extractor.default_group())
    prov = S.provenance(
        extractor.name, extractor.version, extractor.param_dict(), extractor.config_key(), **extractor.extra_provenance()
    )
    if recompute:
        store.drop_group(group)
    store.check_group(group, prov)
    return group, prov


def batches(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]
