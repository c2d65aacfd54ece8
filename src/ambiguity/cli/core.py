"""Commands for projects, ingest and extraction: init, ingest, extractors, extract, status, features."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, cast

import click

from ambiguity.cli.app import get_store, main, parse_params, project
from ambiguity.cli.options import (
    device_option,
    emit,
    format_option,
    list_option,
    out_file_option,
    quiet_option,
    render,
    seed_option,
)
from ambiguity.errors import ExtractorError
from ambiguity.stores.tables import SEGMENTS

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore



@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> None:
    """Create a project in DIRECTORY: an ambiguity.toml and an empty store."""
    from ambiguity.config import init_project
    from ambiguity.stores.lance import open_store

    proj = init_project(directory)
    open_store(proj.store)
    click.echo(f"project in {proj.root}; store at {proj.store}")
    click.echo(f"next: cd {directory} && ambiguity ingest MANIFEST.csv")


@main.command()
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--split", help="Give every row of MANIFEST this split (train, val, test): one file per split.")
@click.option("--preset", help="A known layout: empspeech (filename -> segment_id, start_time/end_time, videos/{dialog_id}.mp4).")
@click.option("--map", "columns", multiple=True, metavar="THEIRS=OURS", help="Rename a manifest column, e.g. dialog_id=segment_id.")
@click.option("--media-template", help='Build the media path from columns, e.g. "videos/{dialog_id}.mp4".')
@list_option("--group-by", "group_by", metavar="COLUMN",
             help="A column or metadata key that groups segments (dialog, speaker) for the leakage report.")
@seed_option("Seed of the 80/10/10 split when the manifest has no split column.")
@click.option("--unlabelled", is_flag=True, help="The manifest has no labels on purpose (a set to annotate or to select from).")
@click.pass_context
def ingest(ctx: click.Context, manifest: Path, split: str | None, preset: str | None, columns: tuple[str, ...],
           media_template: str | None, group_by: tuple[str, ...], seed: int, unlabelled: bool) -> None:
    """Read MANIFEST (CSV, Parquet, JSONL) into the store's segments table (upsert).

    Then say how many groups (dialog_id, speaker, video, source, or --group-by)
    of each split also occur in another split: leakage between train and test.
    """
    from ambiguity.segments import get_preset, load_manifest

    proj = project()
    cfg = proj.ingest if proj else {}
    pre = get_preset(preset) if preset else None
    renames = dict(pre.columns) if pre else {}
    renames.update(cfg.get("columns", {}))
    renames.update(parse_params(columns))
    template = media_template or cfg.get("media_template") or (pre.media_template if pre else None)
    table = load_manifest(manifest, columns=renames, media_template=template, seed=seed, split=split, unlabelled=unlabelled)
    if not unlabelled and table.column("label").null_count == table.num_rows:
        click.echo(f"warning: {manifest} has no labels: train and quadrants need them; map a column with "
                   "--map THEIRS=label, or pass --unlabelled to say this set is unlabelled on purpose", err=True)
    groups = list(group_by) or ([pre.group] if pre and pre.group else None)
    if groups:
        import polars as pl

        from ambiguity.leakage import leakage_report

        leakage_report(cast(pl.DataFrame, pl.from_arrow(table)), groups)  # a group key the file lacks: refused before writing
    store = get_store(ctx, create=True)
    new_split = dict(zip(table.column("segment_id").to_pylist(), table.column("split").to_pylist(), strict=True))
    if store.has_table(SEGMENTS):
        old = store.segments(["segment_id", "split"])
        moved = [sid for sid, sp in old.iter_rows() if sid in new_split and new_split[sid] != sp]
        if moved:
            click.echo(f"note: {len(moved)} segment id(s) were already in the store with another split and now "
                       f"move to this file's (e.g. {moved[0]!r})", err=True)
    store.upsert_segments(table)
    splits: dict[str, int] = {}
    for s in new_split.values():
        splits[s] = splits.get(s, 0) + 1
    parts = ", ".join(f"{k} {v}" for k, v in sorted(splits.items()))
    click.echo(f"ingested {table.num_rows} segments ({parts}) into {store.uri}")
    _echo_leakage(store, groups)


def _echo_leakage(store: FeatureStore, groups: list[str] | None) -> None:
    """The leakage report over every segment in the store (all files ingested so far)."""
    from ambiguity.leakage import leakage_report

    rows = leakage_report(store.segments(), groups)
    for r in rows:
        click.echo(f"leakage: {r.line()}")
    if any(r.shared for r in rows):
        col = next(r.column for r in rows if r.shared)
        click.echo(f"         models trained and tested on the same {col} are flattered; "
                   f"`ambiguity train ... --folds K --group-by {col}` keeps groups apart")


def _echo_leakage_hint(store: FeatureStore) -> None:
    """One line where groups are shared between splits (ingest printed the report; --leakage repeats it)."""
    from ambiguity.leakage import leakage_report

    cols = sorted({r.column for r in leakage_report(store.segments(), None) if r.shared})
    if cols:
        click.echo(f"leakage: {', '.join(cols)} shared between splits (`ambiguity status --leakage` for the report)")


@main.command("extractors")
def list_extractors() -> None:
    """List every extractor: modality, columns, and whether it can run here."""
    from ambiguity.extractors.registry import entries

    for e in sorted(entries().values(), key=lambda e: (e.cls.modality if e.cls else "~", e.name)):
        if e.cls is None:
            click.echo(f"{e.name:<14} {'?':<6} unavailable: {e.reason}")
            continue
        params = ", ".join(f.name for f in dataclasses.fields(e.cls.Params)) or "-"
        state = "ok" if e.available else f"unavailable: {e.reason}"
        auto = "" if getattr(e.cls, "auto", True) else " (run by name)"
        click.echo(f"{e.name:<14} {e.cls.modality:<6} {state}{auto}")
        click.echo(f"{'':<14} params: {params}")
        try:
            cols = [f.name for f in e.cls().columns()] if e.available else []
        except Exception:  # needs parameters (a model) to know its columns
            cols = []
        if cols:
            shown = ", ".join(cols[:8]) + (f", ... ({len(cols)} in all)" if len(cols) > 8 else "")
            click.echo(f"{'':<14} columns: {shown}")


def _split_params(names: list[str], raw: dict[str, str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {n: {} for n in names}
    for k, v in raw.items():
        target = next((n for n in sorted(names, key=len, reverse=True) if k.startswith(n + ".")), None)
        if target is not None:
            out[target][k[len(target) + 1 :]] = v
        elif len(names) == 1:
            out[names[0]][k] = v
        else:
            raise ExtractorError(f"--param {k}: with several extractors, prefix the name (e.g. {names[0]}.{k})")
    return out


@main.command()
@click.option("--modality", type=click.Choice(["text", "audio", "video"]), help="Run the default extractors of a modality.")
@list_option("--extractor", "names", metavar="NAME", help="Run this extractor.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="An extractor parameter (NAME.KEY=VALUE with several).")
@click.option("--model", help="Model id or local directory, for model extractors.")
@device_option(default=None, help="Device for model extractors (default: the extractor's, usually auto).")
@click.option("--group", help="Feature-group name (default: the extractor's).")
@click.option("--recompute", is_flag=True, help="Replace the group and process every segment again.")
@click.option("--only-failed", is_flag=True, help="Process only segments whose last attempt failed.")
@click.option("--limit", type=click.IntRange(min=1), help="Process at most this many segments.")
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes: the pool of CPU extractors (default: cores); decode processes of model extractors (default: one thread); with --engine ray, Ray tasks or actors at once.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Segments per batch.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: process pool / in-process batches; ray: Ray Data on a cluster (pip install 'ambiguity[ray]').")
@click.option("--address", help="Ray cluster address (with --engine ray).")
@click.option("--strict", is_flag=True,
              help="Exit with status 3 if any segment failed (default: 0; failures are listed and kept as `failed` rows).")
@quiet_option("No progress bar (without a terminal, progress is a line per 10%).")
@click.pass_context
def extract(ctx: click.Context, modality, names, params, model, device, group, recompute, only_failed, limit, workers, batch_size, engine, address, strict, quiet) -> None:
    """Extract features into the store; resumes where an earlier run stopped.

    Exit status: 0 when the run finished, even if some segments failed (they are listed,
    stored as `failed` with a reason, and retried with --only-failed); 3 with --strict when
    any segment failed; 2 for a usage or configuration error; 1 for a bug; 130 when interrupted.
    """
    from ambiguity.extractors import registry

    names = list(names)
    skipped: list[str] = []
    if not names:
        if not modality:
            raise click.UsageError("name --modality or at least one --extractor")
        for e in registry.for_modality(modality):
            # With --model, the modality's generic embedder runs (`text`, `audio`, `video`);
            # without, the extractors that need no model (`vad` is run by name).
            if (e.name != modality) if model else not getattr(e.cls, "auto", True):
                continue
            if e.available:
                names.append(e.name)
            else:
                skipped.append(f"{e.name}: {e.reason}")
        for line in skipped:
            click.echo(f"skipped {line}", err=True)
        if not names:
            raise ExtractorError(f"no {modality} extractor can run here")
    if group and len(names) > 1:
        raise click.UsageError("--group names one feature group: use it with one extractor")
    per = _split_params(names, parse_params(params))
    proj = project()
    extractors = []
    for name in names:
        cls = registry.get(name)
        kw = {**(proj.extractor_params(name) if proj else {}), **per[name]}
        fields = {f.name for f in dataclasses.fields(cls.Params)}
        if model:
            if "model" not in fields:
                raise ExtractorError(f"extractor {name!r} takes no model")
            kw["model"] = model
        if device and "device" in fields:
            kw["device"] = device
        extractors.append(cls(**kw))
    if engine == "ray":
        from ambiguity.engines.ray import run as run_ray

        def run_one(ex):
            return run_ray(store, ex, group=group, recompute=recompute, only_failed=only_failed, limit=limit,
                           workers=workers, batch_size=batch_size, address=address)
    else:
        from ambiguity.extractors.runner import run

        def run_one(ex):
            return run(store, ex, group=group, recompute=recompute, only_failed=only_failed, limit=limit,
                       workers=workers, batch_size=batch_size, progress=not quiet)

    store = get_store(ctx)
    failed_total = 0
    groups: list[str] = []
    for ex in extractors:
        report = run_one(ex)
        groups.append(report.group)
        click.echo(report.summary())
        for sid, reason in report.failures[:10]:
            click.echo(f"  failed {sid}: {reason}", err=True)
        if len(report.failures) > 10:
            click.echo(f"  ... and {len(report.failures) - 10} more (see `ambiguity status --failed`)", err=True)
        if report.interrupted:
            raise KeyboardInterrupt
        failed_total += report.failed
        if ex.name == "transcript":  # ASR text stands in where the manifest gave none (issue 28)
            from ambiguity.extractors.transcript import fill_transcripts

            click.echo(f"{fill_transcripts(store, report.group)} segment(s) without a transcript now have the ASR text")
    if skipped and modality:
        click.echo(f"{len(skipped)} {modality} extractor(s) unavailable (listed above)")
    if strict and failed_total:
        click.echo(f"error: {failed_total} segment(s) failed (--strict); see `ambiguity status --failed`", err=True)
        ctx.exit(3)
    click.echo(f"next: ambiguity train {' '.join(groups)}")


@main.command()
@click.option("--failed", "show_failed", is_flag=True, help="Also list each failed segment with its reason.")
@click.option("--leakage", "show_leakage", is_flag=True,
              help="Also print the leakage report (groups shared between splits), as ingest does.")
@format_option()
@out_file_option()
@click.pass_context
def status(ctx: click.Context, show_failed: bool, show_leakage: bool, fmt: str, out: Path | None) -> None:
    """ok / failed / empty / missing counts per feature group (empty: nothing to measure, e.g. no
    video track or no transcript; never retried)."""
    store = get_store(ctx)
    n = store.segments(["segment_id"]).height
    table = store.status()
    if fmt == "md":
        click.echo(f"store {store.uri}: {n} segments")
        if n and show_leakage:
            _echo_leakage(store, None)
        elif n:
            _echo_leakage_hint(store)
        if table.height == 0:
            click.echo("no feature groups yet: run `ambiguity extract`")
            return
    table = table.select("group", "ok", "failed", "empty", "missing")
    if not show_failed:
        emit(render(table, fmt), out)
        return
    import polars as pl

    failed = [
        store.group_status(r["group"]).filter(pl.col("status") == "failed").select(pl.lit(r["group"]).alias("group"), "segment_id", "error")
        for r in table.iter_rows(named=True) if r["failed"]
    ]
    fails = pl.concat(failed) if failed else pl.DataFrame(schema={"group": pl.String, "segment_id": pl.String, "error": pl.String})
    from ambiguity.cli.options import render_many

    emit(render_many({"groups": table, "failed segments": fails}, fmt), out)


@main.command()
@click.argument("groups", nargs=-1, required=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Output .csv or .parquet.")
@click.option("--all-rows", is_flag=True, help="Include failed and empty rows (with status and error).")
@click.pass_context
def features(ctx: click.Context, groups: tuple[str, ...], out: Path, all_rows: bool) -> None:
    """Export feature GROUPS (joined on segment_id) to CSV or Parquet."""
    store = get_store(ctx)
    df = store.features(list(groups), status=None if all_rows else "ok")
    suffix = out.suffix.lower()
    if suffix == ".parquet":
        df.write_parquet(out)
    elif suffix == ".csv":
        import polars as pl

        vec = [c for c, t in df.schema.items() if isinstance(t, (pl.Array, pl.List))]
        if vec:
            df = df.with_columns([df[c].cast(pl.List(pl.Float32)).list.eval(pl.element().cast(pl.String)).list.join(" ") for c in vec])
        df.write_csv(out)
    else:
        raise click.BadParameter("use a .csv or .parquet file", param_hint="--out")
    click.echo(f"wrote {df.height} rows x {df.width} columns to {out}")
