"""The store's ``annotations`` table: one row per (annotator, task, item, round).

Rows are upserted on ``key = annotator|task|item|round``, so answering again
replaces the earlier answer and an import run twice adds nothing. ``item`` is the
task's item id (``<modality flag>:<segment_id>``). This module has no web
dependencies: the app, the importers and the statistics all use it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from ambiguity.annotate.tasks import load_task
from ambiguity.errors import AmbiguityError, StatsError, StoreError
from ambiguity.stats.interrater import agreement
from ambiguity.stats.quadrant_tables import quadrants
from ambiguity.stores import schema as S
from ambiguity.stores.tables import ANNOTATIONS

if TYPE_CHECKING:
    from ambiguity.annotate.tasks import AnnotationTask
    from ambiguity.stats.interrater import AgreementResult
    from ambiguity.stores.lance import FeatureStore

ROUNDS = ("unimodal", "multimodal")
ROUND_ALIASES = {
    "1": "unimodal", "uni": "unimodal", "unimodal": "unimodal", "pass1": "unimodal", "first": "unimodal",
    "2": "multimodal", "multi": "multimodal", "multimodal": "multimodal", "pass2": "multimodal",
    "full": "multimodal", "second": "multimodal",
}
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,31}$")

SCHEMA = S.table_schema(
    # shown: what the annotator was shown, the flagged modality in round 1, "full" in round 2
    ["key", "task", "annotator", "item", "segment_id", "round", "shown", "judgment", "answered_at", "elapsed_s",
     "source"],
    {"elapsed_s": pa.float64()},
    required=["task", "annotator", "item", "segment_id", "round", "judgment"],
)


class AnnotationError(AmbiguityError, ValueError):
    """An annotation (or a file of them) is invalid; the message says what to fix."""


def check_annotator(name: Any) -> str:
    """Annotator names: 1-32 ASCII letters, digits, '_', '-', '.', starting with a letter."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise AnnotationError(
            f"invalid annotator name {name!r}: use 1-32 letters, digits, '_', '-' or '.', starting with a letter"
        )
    return name


def normalize_round(value: Any) -> str:
    r = ROUND_ALIASES.get(str(value).strip().lower())
    if r is None:
        raise AnnotationError(f"unknown round {value!r}: use unimodal (1) or multimodal (2)")
    return r


@dataclass(frozen=True)
class Answer:
    task: str
    annotator: str
    item: str
    segment_id: str
    round: str
    judgment: str
    shown: str | None = None
    elapsed_s: float | None = None
    source: str = "app"
    answered_at: str | None = None

    @property
    def key(self) -> str:
        return f"{self.annotator}|{self.task}|{self.item}|{self.round}"


def write_answers(store: FeatureStore, answers: Sequence[Answer]) -> int:
    """Upsert answers (one commit). Returns the number written."""
    if not answers:
        return 0
    now = S.now()
    seen: dict[str, Answer] = {a.key: a for a in answers}  # the last answer for a key wins
    rows = list(seen.values())
    data = pa.table(
        {
            "key": [a.key for a in rows],
            "task": [a.task for a in rows],
            "annotator": [a.annotator for a in rows],
            "item": [a.item for a in rows],
            "segment_id": [a.segment_id for a in rows],
            "round": [a.round for a in rows],
            "shown": [a.shown for a in rows],
            "judgment": [a.judgment for a in rows],
            "answered_at": [a.answered_at or now for a in rows],
            "elapsed_s": [a.elapsed_s for a in rows],
            "source": [a.source for a in rows],
        },
        schema=SCHEMA,
    )
    store.upsert(ANNOTATIONS, data, key="key", schema=SCHEMA)
    return len(rows)


def read_answers(store: FeatureStore, task: str, annotator: str | None = None) -> pl.DataFrame:
    """The answers of one task (and one annotator): an empty frame if there are none."""
    if not ANNOTATIONS.exists(store):
        return pl.DataFrame(schema={f.name: pl.String if f.type == pa.string() else pl.Float64 for f in SCHEMA})
    return ANNOTATIONS.read(store, task=task, annotator=None if annotator is None else check_annotator(annotator))


# -- import from files ----------------------------------------------------------------

def _resolve_item(task: AnnotationTask, segment_id: str, modality: str | None, where: str) -> tuple[str, str]:
    items = task.items
    if modality:
        hit = items.filter((pl.col("segment_id") == segment_id) & (pl.col("modality") == modality))
    else:
        hit = items.filter(pl.col("segment_id") == segment_id)
    if hit.height == 0:
        raise AnnotationError(f"{where}: segment {segment_id!r}{f' ({modality})' if modality else ''} is not in task {task.name!r}")
    if hit.height > 1:
        raise AnnotationError(
            f"{where}: segment {segment_id!r} appears under several modality flags in task {task.name!r}: "
            "add a 'modality' column (or use the 'item' column)"
        )
    row = hit.row(0, named=True)
    return row["item"], row["segment_id"]


def _check_judgment(task: AnnotationTask, value: Any, where: str) -> str:
    if value is None or str(value).strip() == "":
        raise AnnotationError(f"{where}: empty judgment")
    v = str(value).strip()
    if v not in task.choices:
        raise AnnotationError(f"{where}: judgment {v!r} is not one of the task's labels {list(task.choices)}")
    return v


def parse_csv(path: Path, task: AnnotationTask, *, annotator: str | None = None) -> list[Answer]:
    """Rows with columns annotator, segment_id (or item), round, judgment (or label); optional modality.

    ``annotator`` fills a missing annotator column. Every problem is collected and
    reported at once.
    """
    try:
        df = pl.read_csv(path, infer_schema=False)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise AnnotationError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None
    if "judgment" not in df.columns and "label" in df.columns:
        df = df.rename({"label": "judgment"})
    need = ["round", "judgment"] + ([] if annotator else ["annotator"])
    missing = [c for c in need if c not in df.columns]
    if "segment_id" not in df.columns and "item" not in df.columns:
        missing.append("segment_id (or item)")
    if missing:
        raise AnnotationError(f"{path}: missing column(s) {', '.join(missing)}")
    problems: list[str] = []
    out: list[Answer] = []
    by_item = {r["item"]: r for r in task.items.iter_rows(named=True)}
    for i, r in enumerate(df.iter_rows(named=True)):
        where = f"{path.name} row {i + 2}"
        try:
            who = check_annotator((r.get("annotator") or annotator or "").strip())
            rnd = normalize_round(r["round"])
            if r.get("item"):
                if r["item"] not in by_item:
                    raise AnnotationError(f"{where}: item {r['item']!r} is not in task {task.name!r}")
                item, seg = r["item"], by_item[r["item"]]["segment_id"]
            else:
                item, seg = _resolve_item(task, str(r["segment_id"]).strip(), (r.get("modality") or "").strip() or None, where)
            judgment = _check_judgment(task, r["judgment"], where)
            shown = by_item[item]["modality"] if rnd == "unimodal" else "full"
            out.append(Answer(task.name, who, item, seg, rnd, judgment, shown=shown, source=f"import:{path.name}"))
        except AnnotationError as exc:
            problems.append(str(exc))
    if problems:
        raise AnnotationError(f"{len(problems)} problem(s) in {path}:\n  " + "\n  ".join(problems[:50]))
    return out


def _ls_annotator(ann: dict[str, Any], fallback: str | None) -> str:
    who = ann.get("completed_by")
    if isinstance(who, dict):
        who = who.get("email") or who.get("username") or who.get("id")
    if fallback:
        return check_annotator(fallback)
    if who is None:
        raise AnnotationError("a Label Studio annotation has no completed_by: pass annotator NAME", param="annotator")
    name = str(who).split("@")[0]
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", name)
    return check_annotator(name if name[:1].isalpha() else f"user{name}")


def _min_annotation(row: dict[str, Any]) -> dict[str, Any]:
    result = []
    for r in ROUNDS:
        v = row.get(r)
        if v is not None:
            result.append({"from_name": r, "type": "choices", "value": {"choices": v if isinstance(v, list) else [v]}})
    return {"completed_by": row.get("annotator"), "result": result}


def parse_label_studio(path: Path, task: AnnotationTask, *, annotator: str | None = None) -> list[Answer]:
    """A Label Studio export (JSON, or JSON-MIN) of tasks made by ``to_label_studio``
    (choices named ``unimodal`` and ``multimodal``). Annotators come from
    ``completed_by`` (the email before the @, or ``user<id>`` for a numeric id;
    JSON-MIN: ``annotator``) unless ``annotator`` is given."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise AnnotationError(f"cannot read {path} as JSON: {exc}") from None
    if not isinstance(data, list):
        raise AnnotationError(f"{path}: a Label Studio export is a JSON list of tasks")
    by_item = {r["item"]: r for r in task.items.iter_rows(named=True)}
    problems: list[str] = []
    out: list[Answer] = []
    raw: set[str] = set()
    for i, t in enumerate(data):
        where = f"{path.name} task {i}"
        try:
            if not isinstance(t, dict):
                raise AnnotationError(f"{where}: not a Label Studio task (a JSON object)")
            if not isinstance(t.get("data"), dict):
                if any(r in t for r in ROUNDS):  # the JSON-MIN export: one flat object per annotation
                    t = {"data": t, "annotations": [_min_annotation(t)]}
                else:
                    raise AnnotationError(f"{where}: not a Label Studio task (no 'data')")
            d = t["data"]
            if d.get("item") in by_item:
                item, seg = d["item"], by_item[d["item"]]["segment_id"]
            elif d.get("segment_id") is not None:
                item, seg = _resolve_item(task, str(d["segment_id"]), d.get("modality"), where)
            else:
                raise AnnotationError(f"{where}: data has neither 'item' nor 'segment_id'")
            for ann in t.get("annotations") or []:
                if ann.get("was_cancelled"):
                    continue
                raw.add(json.dumps(ann.get("completed_by"), sort_keys=True))
                who = _ls_annotator(ann, annotator)
                for res in ann.get("result") or []:
                    rnd = res.get("from_name")
                    if rnd not in ROUNDS:
                        continue
                    chosen = (res.get("value") or {}).get("choices") or []
                    if len(chosen) != 1:
                        raise AnnotationError(f"{where}: {rnd} needs exactly one choice, got {chosen}")
                    judgment = _check_judgment(task, chosen[0], where)
                    shown = by_item[item]["modality"] if rnd == "unimodal" else "full"
                    out.append(Answer(task.name, who, item, seg, rnd, judgment, shown=shown, source=f"import:{path.name}"))
        except AnnotationError as exc:
            problems.append(str(exc))
    if annotator and len(raw) > 1:
        problems.append(f"the file holds the answers of {len(raw)} annotators: drop annotator to keep them apart")
    if problems:  # the annotator a problem names is the CLI's --annotator
        raise AnnotationError(f"{len(problems)} problem(s) in {path}:\n  " + "\n  ".join(problems[:50]),
                              param="annotator")
    return out


def _check_conflicts(path: Path, answers: list[Answer]) -> None:
    seen: dict[str, str] = {}
    clashes = []
    for a in answers:
        if seen.setdefault(a.key, a.judgment) != a.judgment:
            clashes.append(f"{a.annotator} / {a.item} / {a.round}")
    if clashes:
        raise AnnotationError(f"{path}: {len(clashes)} judgment(s) given twice with different labels: {', '.join(clashes[:5])}")


def import_file(store: FeatureStore, path: str | Path, task: AnnotationTask, *, annotator: str | None = None, fmt: str | None = None) -> int:
    """Read judgments collected elsewhere (CSV or Label Studio JSON) into the annotations table."""
    path = Path(path)
    if not path.exists():
        raise AnnotationError(f"file not found: {path}")
    fmt = fmt or ("label-studio" if path.suffix.lower() == ".json" else "csv")
    if fmt == "csv":
        answers = parse_csv(path, task, annotator=annotator)
    elif fmt == "label-studio":
        answers = parse_label_studio(path, task, annotator=annotator)
    else:
        raise AnnotationError(f"unknown format {fmt!r}: use csv or label-studio")
    if not answers:
        raise AnnotationError(f"{path}: no judgments found")
    _check_conflicts(path, answers)
    try:
        return write_answers(store, answers)
    except StoreError:
        raise
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot write annotations: {exc}") from None


def progress(store: FeatureStore, task: AnnotationTask) -> pl.DataFrame:
    """Per annotator: items answered in each round, out of the task's items."""
    df = read_answers(store, task.name)
    total = task.items.height
    if df.height == 0:
        return pl.DataFrame(schema={"annotator": pl.String, "unimodal": pl.UInt32, "multimodal": pl.UInt32, "items": pl.Int64})
    out = (
        df.filter(pl.col("item").is_in(task.items["item"].to_list()))
        .group_by("annotator")
        .agg(
            (pl.col("round") == "unimodal").sum().alias("unimodal"),
            (pl.col("round") == "multimodal").sum().alias("multimodal"),
        )
        .with_columns(pl.lit(total, pl.Int64).alias("items"))
        .sort("annotator")
    )
    return out


def task_agreement(
    store: FeatureStore,
    task: str,
    *,
    annotators: Sequence[str] | None = None,
    by_modality: bool = False,
    n_boot: int = 2000,
    ci: float = 0.95,
    seed: int = 0,
    scheme: str | None = None,
    min_stability: float | None = None,
) -> AgreementResult:
    """:func:`ambiguity.stats.interrater` for a task saved in the store and the answers given to it.

    ``scheme`` None keeps the quadrant each item had when the task was sampled; ``fixed``
    or ``crossfit`` places each item's segment anew from the store's predictions of the
    task's models (crossfit: its modal quadrant; ``min_stability`` drops items below the
    cut), and the caption says so.
    """

    t = load_task(store, task)
    answers = read_answers(store, task)
    if answers.height == 0:
        raise StatsError(f"task {task!r} has no annotations yet: run `ambiguity annotate serve --task {task}` or `ambiguity annotations import`")
    items, note = t.items, None
    if scheme is not None:
        items, note = _requadrant(store, items, scheme, min_stability)
    res = agreement(
        answers.select("annotator", "item", "round", "judgment"), items, annotators=annotators,
        by_modality=by_modality, n_boot=n_boot, ci=ci, seed=seed,
    )
    return dataclasses.replace(res, notes=(*res.notes, f"quadrants: {note}")) if note else res


def _requadrant(store: FeatureStore, items: pl.DataFrame, scheme: str, min_stability: float | None) -> tuple[pl.DataFrame, str]:
    """The task's items with each segment's quadrant under ``scheme`` (items without one are dropped)."""
    parts, note = [], ""
    for (uni, fus), part in items.group_by(["unimodal_model", "fusion_model"], maintain_order=True):
        res = quadrants(store, uni, fus, scheme=scheme, min_stability=min_stability,
                        splits=None if scheme == "crossfit" else ("train", "val", "test"))
        note = res.scheme.caption()
        q = res.frame.select("segment_id", pl.col("quadrant").alias("_q"))
        parts.append(part.join(q, on="segment_id", how="inner").with_columns(pl.col("_q").alias("quadrant")).drop("_q"))
    out = pl.concat(parts) if parts else items.head(0)
    if out.height == 0:
        raise StatsError(f"no item of the task has a quadrant on the {scheme} scheme")
    return out.sort("position"), note
