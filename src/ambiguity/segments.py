"""Manifests: read CSV / Parquet / JSONL, map columns, validate, turn into the segments table."""

from __future__ import annotations

import difflib
import json
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from ambiguity.errors import ManifestError
from ambiguity.stores.schema import SEGMENTS_SCHEMA, SPLITS

CORE = ("segment_id", "media", "audio", "start_s", "end_s", "transcript", "label", "split")
SPLIT_ALIASES = {"validation": "val", "valid": "val", "dev": "val", "training": "train", "eval": "test"}


@dataclass(frozen=True)
class Preset:
    """A known manifest layout: how its columns map to ours, where its media are, what groups it."""

    columns: dict[str, str]
    media_template: str | None = None
    group: str | None = None
    doc: str = ""


PRESETS: dict[str, Preset] = {
    # EmpSpeech (Chen et al., 2024), as published with the Mixed Signals paper:
    # train.csv / val.csv / test.csv with dialog_id,start_time,end_time,filename,transcript,label;
    # many segments per long YouTube video, saved as videos/{dialog_id}.mp4.
    "empspeech": Preset(
        columns={"filename": "segment_id", "start_time": "start_s", "end_time": "end_s"},
        media_template="videos/{dialog_id}.mp4",
        group="dialog_id",
        doc="EmpSpeech CSVs: segment_id from filename, times from start_time/end_time, "
        "media videos/{dialog_id}.mp4, dialog_id kept as the group",
    ),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ManifestError(name, [f"unknown preset; known: {', '.join(sorted(PRESETS))}"]) from None


def read_table(path: Path) -> pl.DataFrame:
    """Read a manifest file; every column as text so that nothing is lost to type guessing."""
    suffix = path.suffix.lower()
    if not path.exists():
        raise ManifestError(str(path), ["file not found"])
    try:
        if suffix in (".csv", ".tsv"):
            # utf8-lossy: a transcript that is not UTF-8 must not abort the whole ingest;
            # such rows are flagged below and their text extraction fails with a reason.
            return pl.read_csv(
                path, separator="\t" if suffix == ".tsv" else ",", infer_schema=False, encoding="utf8-lossy"
            )
        if suffix == ".parquet":
            return pl.read_parquet(path)
        if suffix in (".jsonl", ".ndjson"):
            return pl.read_ndjson(path, infer_schema_length=None)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise ManifestError(str(path), [f"cannot read the file: {str(exc).splitlines()[0]}"]) from None
    raise ManifestError(str(path), [f"unknown manifest format {suffix!r}: use .csv, .tsv, .parquet or .jsonl"])


def _as_float(col: pl.Series) -> pl.Series:
    return col.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)


def _row_of(problem: str) -> int:
    return int(problem.split(":")[0].removeprefix("row ")) if problem.startswith("row ") else 0


#: Column names that usually hold the label under another name.
LABEL_NAMES = ("labels", "class", "classes", "emotion", "target", "category", "sentiment", "gold", "y")


def label_lookalikes(columns: Sequence[str]) -> list[str]:
    """Columns that look like a label column under another name (``Label``, ``labels``, ``emotion``)."""
    near = [c for c in columns if c.strip().lower() in ("label", *LABEL_NAMES)]
    near += [c for c in difflib.get_close_matches("label", list(columns), n=3, cutoff=0.7) if c not in near]
    return near


def assign_splits(labels: list[str | None], seed: int, fractions=(0.8, 0.1, 0.1)) -> list[str]:
    """Seeded, label-stratified train/val/test split (the paper's 80-10-10)."""
    rng = np.random.default_rng(seed)
    out = [""] * len(labels)
    by_label: dict[str | None, list[int]] = {}
    for i, lab in enumerate(labels):
        by_label.setdefault(lab, []).append(i)
    for idx in by_label.values():
        idx = list(rng.permutation(idx))
        n_val = int(round(fractions[1] * len(idx)))
        n_test = int(round(fractions[2] * len(idx)))
        for j, i in enumerate(idx):
            out[i] = "test" if j < n_test else "val" if j < n_test + n_val else "train"
    return out


def load_manifest(
    path: str | Path,
    *,
    columns: Mapping[str, str] | None = None,
    media_template: str | None = None,
    check_files: bool = True,
    seed: int = 0,
    split: str | None = None,
    unlabelled: bool | None = None,
) -> pa.Table:
    """Read, map and validate a manifest; return rows in the segments schema.

    ``columns`` maps the file's column names to ours (``{"dialog_id": ...}``);
    ``media_template`` builds the media path from other columns, e.g.
    ``"videos/{dialog_id}.mp4"``. Relative paths resolve against the manifest's
    folder. ``split`` gives every row that split (replacing a split column):
    one file per split, as datasets are often published. Every problem is
    collected and raised at once as a ManifestError. ``unlabelled=False`` (the CLI's default) refuses a
    manifest without a ``label`` column when a column looks like one (``Label``, ``emotion``, ...);
    ``True`` ingests a set without labels on purpose; None does not check.
    """
    path = Path(path)
    src = str(path)
    if split is not None:
        given, split = split, SPLIT_ALIASES.get(split.strip().lower(), split.strip().lower())
        if split not in SPLITS:
            raise ManifestError(src, [f"split {given!r}: unknown split (use {', '.join(SPLITS)})"], param="split")
    df = read_table(path)
    problems: list[str] = []
    columns = dict(columns or {})
    unknown = [c for c in columns if c not in df.columns]
    if unknown:
        raise ManifestError(src, [f"column mapping names {c!r}, which the file does not have" for c in unknown])
    targets = list(columns.values())
    for theirs, ours in columns.items():
        if targets.count(ours) > 1:
            raise ManifestError(src, [f"columns: {', '.join(k for k, v in columns.items() if v == ours)} all map onto {ours!r}; "
                                      "map one"], param="columns")
        if ours in df.columns and ours != theirs and ours not in columns:  # a column that stays and would be duplicated
            raise ManifestError(src, [f"columns {theirs}={ours}: the manifest already has a column {ours!r}; "
                                      f"rename it too (columns {ours}={ours}_orig, columns {theirs}={ours}) or drop it from the file"],
                                param="columns")
    df = df.rename(columns)
    if unlabelled is False and "label" not in df.columns:
        near = label_lookalikes(df.columns)
        if near:
            raise ManifestError(src, [f"no 'label' column, but {', '.join(map(repr, near))} looks like one: ingest with "
                                      f"columns {near[0]}=label, or pass unlabelled to ingest the set without labels on "
                                      "purpose"], param=("columns", "unlabelled"))
    if media_template:
        fields = [f for _, f, _, _ in string.Formatter().parse(media_template) if f]
        missing = [f for f in fields if f not in df.columns]
        if missing:
            raise ManifestError(src, [f"media template needs column(s) {', '.join(missing)}"])
        df = df.with_columns(
            pl.Series("media", [media_template.format(**r) for r in df.select(fields).iter_rows(named=True)])
        )
    if df.height == 0:
        raise ManifestError(src, ["the manifest has no rows"])
    # A text-only dataset needs no media: a transcript column stands in for it.
    required = ("segment_id",) if "transcript" in df.columns else ("segment_id", "media")
    for req in required:
        if req not in df.columns:
            problems.append(f"missing column {req!r} (map one with columns THEIRS={req}, or use media_template)")
    if problems:
        raise ManifestError(src, problems, param=("columns", "media_template"))

    n = df.height
    rownum = [i + 2 for i in range(n)]  # as a spreadsheet shows it: header is row 1
    ids = df["segment_id"].cast(pl.String)
    for i, sid in enumerate(ids):
        if sid is None or not sid.strip():
            problems.append(f"row {rownum[i]}: empty segment_id")
    dup = ids.is_duplicated()
    for j in np.flatnonzero(dup.to_numpy()):
        problems.append(f"row {rownum[int(j)]}: duplicate segment_id {ids[int(j)]!r}")

    start = _as_float(df["start_s"]) if "start_s" in df.columns else pl.Series([None] * n, dtype=pl.Float64)
    end = _as_float(df["end_s"]) if "end_s" in df.columns else pl.Series([None] * n, dtype=pl.Float64)
    for name, raw, val in (("start_s", df.get_column("start_s", default=None), start), ("end_s", df.get_column("end_s", default=None), end)):
        if raw is None:
            continue
        for i in range(n):
            r = raw[i]
            if r is not None and str(r).strip() != "" and val[i] is None:
                problems.append(f"row {rownum[i]}: {name} {r!r} is not a number")
            elif val[i] is not None and (val[i] < 0 or not np.isfinite(val[i])):
                problems.append(f"row {rownum[i]}: {name} {val[i]} is negative or not finite")
    for i in range(n):
        if start[i] is not None and end[i] is not None and end[i] <= start[i]:
            problems.append(f"row {rownum[i]}: end_s {end[i]} <= start_s {start[i]}")

    base = path.resolve().parent

    seen: dict[str, tuple[str, bool]] = {}  # manifests repeat one long file in many rows

    def resolve(col: str) -> list[str | None]:
        if col not in df.columns:
            return [None] * n
        out: list[str | None] = []
        for i, v in enumerate(df[col].cast(pl.String)):
            if v is None or not v.strip():
                out.append(None)
                continue
            if v not in seen:
                p = Path(v)
                p = p if p.is_absolute() else base / p
                exists = p.exists()
                seen[v] = (str(p.resolve() if exists else p), exists)
            resolved, exists = seen[v]
            if check_files and not exists:
                problems.append(f"row {rownum[i]}: {col} file not found: {resolved}")
            out.append(resolved)
        return out

    media = resolve("media")
    audio = resolve("audio")
    texts = df["transcript"].cast(pl.String).to_list() if "transcript" in df.columns else [None] * n
    for i, m in enumerate(media):
        if m is None and not (texts[i] or "").strip():
            problems.append(f"row {rownum[i]}: empty media path (and no transcript)")

    labels = df["label"].cast(pl.String).to_list() if "label" in df.columns else [None] * n
    if split is not None:
        splits = [split] * n
    elif "split" in df.columns:
        splits = []
        for i, s in enumerate(df["split"].cast(pl.String)):
            s2 = SPLIT_ALIASES.get((s or "").strip().lower(), (s or "").strip().lower())
            if s2 not in SPLITS:
                problems.append(f"row {rownum[i]}: unknown split {s!r} (use {', '.join(SPLITS)})")
            splits.append(s2)
    else:
        splits = assign_splits(labels, seed)

    if problems:
        raise ManifestError(src, sorted(problems, key=_row_of))

    transcripts = df["transcript"].cast(pl.String).to_list() if "transcript" in df.columns else [None] * n
    extra = [c for c in df.columns if c not in CORE]
    meta_rows: list[dict[str, Any]] = df.select(extra).cast(pl.String).to_dicts() if extra else [{} for _ in range(n)]
    for meta, t in zip(meta_rows, transcripts, strict=True):
        if t is not None and "\ufffd" in t:
            meta["_transcript_error"] = "transcript is not valid UTF-8 (invalid bytes were replaced at ingest)"
    return pa.table(
        {
            "segment_id": ids.to_list(),
            "media": media,
            "audio": audio,
            "start_s": start.to_list(),
            "end_s": end.to_list(),
            "transcript": transcripts,
            "label": labels,
            "split": splits,
            "metadata": [json.dumps(m, ensure_ascii=False, sort_keys=True) for m in meta_rows],
        },
        schema=SEGMENTS_SCHEMA,
    )
