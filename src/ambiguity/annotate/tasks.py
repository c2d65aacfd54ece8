"""Stratified, seeded samples of segments per quadrant per modality for the human study.

The paper's Experiment 2 draws the same number of examples from each of the four
quadrants (red, green, blue, yellow) of every unimodal-vs-fusion plot, and flags
each example with the modality its first annotation pass shows. A sample is an
*annotation task*: its items are saved in the store's ``tasks`` table (one row
per item, upserted on ``key = task|item``), so that the annotation app, the
importers and the agreement statistics all read the same items.

An item is one (modality flag, segment) pair: ``item = "<modality>:<segment_id>"``.
By default a segment is drawn at most once per task (``distinct=True``): an
annotator who has seen a segment's full clip in pass 2 can no longer judge it
from one modality alone, so a repeat under another flag would not be a unimodal
judgment. Modalities are filled in the order given; when a quadrant runs short
because its segments went to an earlier modality, the warning says so.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

import numpy as np
import polars as pl
import pyarrow as pa

from ambiguity.constants import MODALITIES, QUADRANTS
from ambiguity.errors import MissingGroupError, StatsError, StoreError
from ambiguity.models.predictions import model_summary
from ambiguity.stats.quadrant_tables import load_quadrants, resolve_model
from ambiguity.stats.stability import check_one_scheme, resolve_scheme
from ambiguity.stores import schema as S
from ambiguity.stores.tables import TASKS

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")

TASK_SCHEMA = S.table_schema(
    # choices: JSON list, the labels annotators choose from
    ["key", "task", "item", "segment_id", "modality", "quadrant", "position", "p_unimodal", "p_fusion", "label",
     "split", "unimodal_model", "fusion_model", "seed", "per_quadrant", "choices", "created_at"],
    {"position": pa.int64(), "p_unimodal": pa.float64(), "p_fusion": pa.float64(), "per_quadrant": pa.int64()},
    required=["task", "item", "segment_id", "modality", "quadrant"],
)


class ShortQuadrantWarning(UserWarning):
    """A quadrant held fewer segments than asked for; all of them were taken."""


@dataclass(frozen=True)
class Shortfall:
    modality: str
    quadrant: str
    available: int
    requested: int


@dataclass(frozen=True, eq=False)
class AnnotationTask:
    """A saved sample: the items one study annotates, in a fixed order.

    ``items`` has one row per item with columns item, segment_id, modality,
    quadrant, position, p_unimodal, p_fusion, label, split, unimodal_model,
    fusion_model. ``choices`` are the labels annotators pick from.
    """

    name: str
    items: pl.DataFrame = field(repr=False)
    seed: int = 0
    per_quadrant: int = 0
    choices: tuple[str, ...] = ()
    shortfalls: tuple[Shortfall, ...] = ()
    created_at: str = ""

    def to_polars(self) -> pl.DataFrame:
        """The items, one row each (a copy)."""
        return self.items.clone()

    def counts(self) -> pl.DataFrame:
        """Items per modality and quadrant (the sample's design table)."""
        return (
            self.items.group_by("modality", "quadrant")
            .len("n")
            .with_columns(
                pl.col("modality").replace_strict({m: i for i, m in enumerate(MODALITIES)}, default=99).alias("_m"),
                pl.col("quadrant").replace_strict({q: i for i, q in enumerate(QUADRANTS)}, default=99).alias("_q"),
            )
            .sort("_m", "_q")
            .drop("_m", "_q")
        )

    def with_segments(self, segments: pl.DataFrame | None) -> pl.DataFrame:
        """Items joined with media, times and transcript from the segments table."""
        if segments is None:
            return self.items
        cols = [c for c in ("segment_id", "media", "audio", "start_s", "end_s", "transcript") if c in segments.columns]
        return self.items.join(segments.select(cols), on="segment_id", how="left")

    def to_csv(self, path: str | Path, segments: pl.DataFrame | None = None) -> Path:
        """Write the items (with media and transcript when ``segments`` is given) as CSV.

        The CSV holds the quadrant and the model probabilities: drop those columns
        before handing it to annotators, or use :meth:`to_label_studio`.
        """
        path = Path(path)
        self.with_segments(segments).sort("position").write_csv(path)
        return path

    def to_label_studio(self, path: str | Path, segments: pl.DataFrame | None = None) -> Path:
        """Write Label Studio tasks (JSON): what annotators see goes in ``data``,
        the quadrant and model outputs in ``meta`` (not shown by the labelling view).

        Import the file in Label Studio with the view from :func:`label_studio_config`.
        """
        path = Path(path)
        rows = self.with_segments(segments).sort("position").to_dicts()
        tasks = []
        for r in rows:
            data = {"task": self.name, "item": r["item"], "segment_id": r["segment_id"], "modality": r["modality"]}
            for c in ("transcript", "media", "audio", "start_s", "end_s"):
                if c in r:
                    data[c] = r[c]
            meta = {c: r[c] for c in ("quadrant", "p_unimodal", "p_fusion", "label", "split", "unimodal_model", "fusion_model")}
            tasks.append({"data": data, "meta": meta})
        path.write_text(json.dumps(tasks, indent=1, ensure_ascii=False))
        return path


def label_studio_config(choices: Sequence[str]) -> str:
    """A Label Studio labelling view with the two rounds as two single-choice questions.

    Label Studio cannot hide the full clip until the first answer is given; the
    annotation app (``ambiguity annotate serve``) does. The importer reads the
    choices named ``unimodal`` and ``multimodal``.
    """
    opts = "\n".join(f"    <Choice value={quoteattr(c)}/>" for c in choices)
    return (
        "<View>\n"
        '  <Header value="First judge from the flagged modality only: $modality"/>\n'
        '  <Text name="transcript" value="$transcript"/>\n'
        '  <Choices name="unimodal" toName="transcript" choice="single" required="true">\n'
        f"{opts}\n  </Choices>\n"
        '  <Header value="Then watch the full clip ($media) and judge again"/>\n'
        '  <Choices name="multimodal" toName="transcript" choice="single" required="true">\n'
        f"{opts}\n  </Choices>\n"
        "</View>\n"
    )


def check_task_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise StoreError(f"invalid task name {name!r}: use 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit")
    return name


def _check_frame(modality: str, df: pl.DataFrame) -> pl.DataFrame:
    if modality not in MODALITIES:
        raise StatsError(f"unknown modality {modality!r}: use {', '.join(MODALITIES)}")
    if not isinstance(df, pl.DataFrame):
        raise StatsError(f"quadrants for {modality}: expected a polars DataFrame, got {type(df).__name__}")
    missing = [c for c in ("segment_id", "quadrant") if c not in df.columns]
    if missing:
        raise StatsError(f"quadrants for {modality}: missing column(s) {', '.join(missing)}")
    df = df.with_columns(pl.col("segment_id").cast(pl.String), pl.col("quadrant").cast(pl.String))
    if df["segment_id"].null_count():
        raise StatsError(f"quadrants for {modality}: {df['segment_id'].null_count()} rows have no segment_id")
    bad = sorted({q for q in df["quadrant"].to_list() if q not in QUADRANTS}, key=str)
    if bad:
        raise StatsError(f"quadrants for {modality}: unknown quadrant(s) {bad}; use {', '.join(QUADRANTS)}")
    dup = df.filter(pl.col("segment_id").is_duplicated())["segment_id"].unique().to_list()
    if dup:
        raise StatsError(f"quadrants for {modality}: segment_id(s) listed twice: {', '.join(sorted(dup)[:5])}")
    for c, dt in (("p_unimodal", pl.Float64), ("p_fusion", pl.Float64), ("label", pl.String), ("split", pl.String)):
        df = df.with_columns(pl.col(c).cast(dt)) if c in df.columns else df.with_columns(pl.lit(None, dt).alias(c))
    return df


def _rng(seed: int, *parts: str) -> np.random.Generator:
    # A generator per (modality, quadrant): one stratum's draw does not depend on another's size.
    digest = hashlib.sha256("|".join(parts).encode()).digest()
    return np.random.default_rng([int(seed), int.from_bytes(digest[:8], "little")])


def stratified_sample(
    quadrants: Mapping[str, pl.DataFrame],
    per_quadrant: int,
    seed: int,
    *,
    name: str = "study",
    distinct: bool = True,
    models: Mapping[str, str] | None = None,
    fusion: str | None = None,
    choices: Sequence[str] | None = None,
) -> AnnotationTask:
    """Draw ``per_quadrant`` segments from each quadrant of each modality, without replacement.

    Parameters
    ----------
    quadrants
        ``{modality: frame}``, one frame per unimodal-vs-fusion comparison with
        columns segment_id, quadrant (red|green|blue|yellow), and optionally
        p_unimodal, p_fusion, label, split (the output of ``load_quadrants``).
    per_quadrant
        Segments per quadrant (the paper: 17). A quadrant with fewer gives all of
        them and a :class:`ShortQuadrantWarning`; the task records the shortfall.
    seed
        The same seed and input give the same sample whatever the row order.
    distinct
        Draw a segment at most once in the whole task (modalities in the order
        given); with False a segment may appear under several modality flags.
    choices
        The labels annotators choose from; default: the gold labels seen in the frames.

    Returns
    -------
    AnnotationTask
        Items in a seeded random order (``position``), so no block of one
        quadrant or modality follows another.
    """
    check_task_name(name)
    if isinstance(per_quadrant, bool) or not isinstance(per_quadrant, (int, np.integer)) or per_quadrant < 1:
        raise StatsError(f"per_quadrant must be a positive integer, got {per_quadrant!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise StatsError(f"seed must be a non-negative integer, got {seed!r}")
    if not quadrants:
        raise StatsError("no quadrant frames given: pass one per modality, e.g. {'text': load_quadrants(...)}")

    models = dict(models or {})
    frames = {m: _check_frame(m, df) for m, df in quadrants.items()}
    check_one_scheme(frames.values())  # one study samples from one scheme
    taken: set[str] = set()
    parts: list[pl.DataFrame] = []
    shortfalls: list[Shortfall] = []
    for modality, df in frames.items():
        for q in QUADRANTS:
            pool = df.filter(pl.col("quadrant") == q)
            whole = pool.height
            if distinct and taken:
                pool = pool.filter(~pl.col("segment_id").is_in(list(taken)))
            pool = pool.sort("segment_id")  # the draw must not depend on the input's row order
            k = min(per_quadrant, pool.height)
            if k < per_quadrant:
                shortfalls.append(Shortfall(modality, q, pool.height, per_quadrant))
                reused = pool.height < whole
                warnings.warn(
                    f"{modality}/{q}: only {pool.height} segment(s) available"
                    f"{' (not already drawn for another modality)' if reused else ''}, "
                    f"{per_quadrant} asked for; taking all of them"
                    f"{' (sample from more splits, or allow repeats: --allow-repeats)' if reused else ''}",
                    ShortQuadrantWarning,
                    stacklevel=2,
                )
            if k == 0:
                continue
            idx = np.sort(_rng(seed, modality, q).choice(pool.height, size=k, replace=False))
            pick = pool[idx.tolist()]
            taken.update(pick["segment_id"].to_list())
            parts.append(
                pick.select("segment_id", "quadrant", "p_unimodal", "p_fusion", "label", "split").with_columns(
                    pl.lit(modality).alias("modality"),
                    pl.lit(models.get(modality), pl.String).alias("unimodal_model"),
                    pl.lit(fusion, pl.String).alias("fusion_model"),
                )
            )
    if not parts:
        raise StatsError("the quadrant frames hold no segments to sample")
    items = pl.concat(parts, how="vertical_relaxed")
    items = items.with_columns((pl.col("modality") + ":" + pl.col("segment_id")).alias("item"))
    order = _rng(seed, "order").permutation(items.height)
    items = items.with_columns(pl.Series("position", np.argsort(order), dtype=pl.Int64)).sort("position")
    items = items.select(
        "item", "segment_id", "modality", "quadrant", "position", "p_unimodal", "p_fusion",
        "label", "split", "unimodal_model", "fusion_model",
    )
    if choices is None:
        seen: set[str] = set()
        for df in frames.values():
            seen.update(v for v in df["label"].to_list() if v is not None)
        choices = sorted(seen)
    choices = tuple(str(c) for c in choices)
    if len(choices) < 2 or len(set(choices)) != len(choices):
        raise StatsError(
            f"annotators need at least two distinct labels to choose from, got {list(choices)}: "
            "pass choices a,b", param="choices"
        )
    return AnnotationTask(
        name=name, items=items, seed=int(seed), per_quadrant=int(per_quadrant), choices=choices,
        shortfalls=tuple(shortfalls), created_at=S.now(),
    )


# -- the store's "tasks" table ------------------------------------------------------

def task_names(store: FeatureStore) -> list[str]:
    if not TASKS.exists(store):
        return []
    return sorted(TASKS.read(store, ["task"])["task"].unique().to_list())


def save_task(store: FeatureStore, task: AnnotationTask, *, replace: bool = False) -> None:
    """Write a task's items to the ``tasks`` table; refuses to overwrite an existing task.

    ``replace=True`` deletes the old items first (annotations already given for the
    old task stay in the ``annotations`` table and no longer match its items).
    """
    check_task_name(task.name)
    if task.name in task_names(store):
        if not replace:
            raise StoreError(f"task {task.name!r} exists already: choose another name, or pass replace", param=("task", "replace"))
        TASKS.delete(store, task=task.name)
    it = task.items
    n = it.height
    data = pa.table(
        {
            "key": [f"{task.name}|{i}" for i in it["item"].to_list()],
            "task": [task.name] * n,
            "item": it["item"].to_list(),
            "segment_id": it["segment_id"].to_list(),
            "modality": it["modality"].to_list(),
            "quadrant": it["quadrant"].to_list(),
            "position": it["position"].to_list(),
            "p_unimodal": it["p_unimodal"].to_list(),
            "p_fusion": it["p_fusion"].to_list(),
            "label": it["label"].to_list(),
            "split": it["split"].to_list(),
            "unimodal_model": it["unimodal_model"].to_list(),
            "fusion_model": it["fusion_model"].to_list(),
            "seed": [task.seed] * n,
            "per_quadrant": [task.per_quadrant] * n,
            "choices": [json.dumps(list(task.choices))] * n,
            "created_at": [task.created_at] * n,
        },
        schema=TASK_SCHEMA,
    )
    store.upsert(TASKS, data, key="key", schema=TASK_SCHEMA)


def load_task(store: FeatureStore, name: str) -> AnnotationTask:
    """Read a saved task back (items in their saved order)."""
    check_task_name(name)
    if not TASKS.exists(store):
        raise MissingGroupError(f"the store at {store.uri} has no annotation tasks: run `ambiguity sample` first")
    df = TASKS.read(store, task=name)
    if df.height == 0:
        known = ", ".join(task_names(store)) or "none"
        raise MissingGroupError(f"no annotation task {name!r} in the store (tasks: {known})")
    df = df.sort("position")
    first: dict[str, Any] = df.row(0, named=True)
    items = df.select(
        "item", "segment_id", "modality", "quadrant", "position", "p_unimodal", "p_fusion",
        "label", "split", "unimodal_model", "fusion_model",
    )
    return AnnotationTask(
        name=name, items=items, seed=int(first["seed"]), per_quadrant=int(first["per_quadrant"]),
        choices=tuple(json.loads(first["choices"])), created_at=first["created_at"] or "",
    )


def sample_from_store(
    store: FeatureStore,
    models: Mapping[str, str],
    fusion: str,
    per_quadrant: int,
    seed: int,
    *,
    name: str = "study",
    splits: Sequence[str] | None = None,
    threshold: float = 0.5,
    distinct: bool = True,
    choices: Sequence[str] | None = None,
    scheme: str = "auto",
    min_stability: float | None = None,
) -> AnnotationTask:
    """Quadrants from the store's predictions, then :func:`stratified_sample`.

    ``models`` maps each modality to its unimodal model; a modality name as the
    model picks the store's one unimodal model of that modality. ``scheme``,
    ``splits`` and ``min_stability`` as in :func:`ambiguity.stats.quadrant_tables.quadrants`
    (crossfit: each segment's modal quadrant; the same scheme for every modality).
    """
    names = {m: resolve_model(store, model) for m, model in models.items()}
    fusion = resolve_model(store, fusion)

    scheme = resolve_scheme(model_summary(store), [*names.values(), fusion], scheme)
    frames = {m: load_quadrants(store, model, fusion, splits or None, threshold, scheme=scheme, min_stability=min_stability)
              for m, model in names.items()}
    return stratified_sample(frames, per_quadrant, seed, name=name, distinct=distinct, models=names, fusion=fusion, choices=choices)
