"""Commands to look at ambiguous segments: explore (the web app), rank (the ambiguity score), select."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ambiguity.cli.app import get_store, main, parse_params
from ambiguity.cli.options import (
    emit,
    format_option,
    out_file_option,
    render,
    seed_option,
    task_option,
    threshold_option,
)
from ambiguity.constants import Scheme

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore



def _weights(pairs: tuple[str, ...]) -> dict[str, str]:
    return parse_params(pairs, form="COMPONENT=WEIGHT, e.g. knn=2", option="--weight")


def _write(df, fmt: str, out: Path | None) -> None:
    emit(render(df, fmt, digits=3), out)


def _auto_embedding(store: FeatureStore, embedding: str | None) -> str | None:
    """--embedding, 'none', or by default the store's text embedding group (if any)."""
    from ambiguity.stats.score import default_embedding

    if embedding == "none":
        return None
    if embedding:
        if not store.has_group(embedding):
            raise click.BadParameter(f"no feature group {embedding!r} (the store has: {', '.join(store.groups()) or 'none'})", param_hint="--embedding")
        return embedding
    return default_embedding(store)


_score_options = [
    click.option("--weight", "weights", multiple=True, metavar="COMPONENT=W", help="Weight of a score component (default 1 each; 0 leaves it out)."),
    click.option("--embedding", help="Vector group for the kNN component ('none': leave it out; default: the text embedding)."),
    click.option("--k", "k", default=10, show_default=True, type=click.IntRange(min=1), help="Neighbours of the kNN component."),
    click.option("--fusion", help="The fusion model (default: the store's one multimodal model)."),
    click.option("--unimodal", help="The unimodal model of the cross-fitted and conflict components (default: the first)."),
]


def score_options(f):
    for opt in reversed(_score_options):
        f = opt(f)
    return f


@main.command()
@click.option("--port", default=8766, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; anything but loopback exposes the store's media to the network.")
@click.option("--scheme", type=click.Choice(Scheme.WITH_HUMAN), default="auto", show_default=True,
              help="Quadrants of the one train/test split (fixed: its test segments), the modal quadrant over cross-fitting repeats, opacity by stability (crossfit), or people (human: human:audio, human:video against human:all); auto: crossfit when every model has it.")
@threshold_option()
@click.option("--clips", type=click.Path(file_okay=False, path_type=Path), help="Folder that caches the cut clips (default: a temp folder).")
@score_options
@click.pass_context
def explore(ctx, port, host, scheme, threshold, clips, weights, embedding, k, fusion, unimodal) -> None:
    """Open the store in a local web app: Figure 2 per unimodal model, filters, a table, segment pages."""
    from ambiguity.explore.app import serve
    from ambiguity.explore.data import load
    from ambiguity.web.http import is_loopback

    store = get_store(ctx)
    data = load(store, scheme=scheme, fusion=fusion, threshold=threshold, embedding=_auto_embedding(store, embedding), weights=_weights(weights))
    if data.problem:
        click.echo(f"warning: {data.problem}", err=True)
    if data.cached:
        click.echo("points and scores from the explorer's cache (nothing they depend on changed)", err=True)
    if not is_loopback(host):
        click.echo(f"warning: binding {host}: anyone who can reach this address can see the store's segments", err=True)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    click.echo(f"exploring {data.n} segments: open http://{shown}:{port}/ (Ctrl+C stops)")
    serve(data, host=host, port=port, clip_dir=str(clips) if clips else None)


@main.command()
@click.option("--top", default=50, show_default=True, type=click.IntRange(min=1), help="How many segments to list.")
@out_file_option()
@format_option()
@score_options
@click.pass_context
def rank(ctx, top, out, fmt, weights, embedding, k, fusion, unimodal) -> None:
    """The most ambiguous segments by the ambiguity score (see docs/explore.md)."""
    from ambiguity.stats.score import ambiguity_scores

    store = get_store(ctx)
    emb = _auto_embedding(store, embedding)
    res = ambiguity_scores(store, unimodal=unimodal, fusion=fusion, embedding=emb, k=k, weights=_weights(weights))
    for c, why in res.missing.items():
        click.echo(f"note: component {c} unavailable: {why}", err=True)
    from ambiguity.stats.score import ranked

    df = ranked(store, res, top)
    if fmt in ("md", "latex"):  # a table cell: one line, shortened (csv and json keep the whole transcript)
        import polars as pl

        df = df.with_columns(pl.col("transcript").str.replace_all(r"[|\s]+", " ").str.slice(0, 100))
    _write(df, fmt, out)


@main.command("select")
@click.option("--budget", required=True, type=click.IntRange(min=1), help="How many segments to pick.")
@click.option("--strategy", type=click.Choice(["disagreement", "uncertainty", "margin", "random"]), default="disagreement", show_default=True,
              help="Committee disagreement (vote entropy, then mean KL to the consensus), least confidence, smallest margin, or random.")
@seed_option(help="Seed of the random strategy.")
@task_option(help="Also save the picks as an annotation task of this name (for `ambiguity annotate serve`).")
@click.option("--modality", type=click.Choice(["text", "audio", "video"]), default="text", show_default=True, help="Pass-1 modality of the task's items.")
@out_file_option()
@format_option()
@click.pass_context
def select_cmd(ctx, budget, strategy, seed, task, modality, out, fmt) -> None:
    """Pick segments without labels to annotate next, by committee disagreement (McCallum & Nigam 1998) or another strategy."""
    from ambiguity.stats.committee import unlabelled_committee
    from ambiguity.stats.select import select

    store = get_store(ctx)
    ids, probs, members, classes = unlabelled_committee(store)
    click.echo(f"committee: {', '.join(m.name for m in members)} (refitted on the labelled segments); {len(ids)} unlabelled segments", err=True)
    df = select(ids, probs, budget, strategy, seed=seed)
    if task:
        _save_task(store, df["segment_id"].to_list(), task, modality, classes)
        click.echo(f"saved task {task!r} ({df.height} items): ambiguity annotate serve --task {task}", err=True)
    _write(df, fmt, out)


def _save_task(store: FeatureStore, ids: list[str], name: str, modality: str, classes: list[str]) -> None:
    """Unlabelled segments have no quadrant; their items say so with quadrant 'unlabelled'."""
    from datetime import UTC, datetime

    import polars as pl

    from ambiguity.annotate.tasks import AnnotationTask, check_task_name, save_task

    check_task_name(name)
    n = len(ids)
    items = pl.DataFrame({
        "item": [f"{modality}:{s}" for s in ids], "segment_id": ids, "modality": [modality] * n, "quadrant": ["unlabelled"] * n,
        "position": list(range(n)), "p_unimodal": [None] * n, "p_fusion": [None] * n, "label": [None] * n, "split": [None] * n,
        "unimodal_model": [None] * n, "fusion_model": [None] * n,
    }, schema_overrides={c: pl.Float64 for c in ("p_unimodal", "p_fusion")} | {c: pl.String for c in ("label", "split", "unimodal_model", "fusion_model")})
    save_task(store, AnnotationTask(name=name, items=items, choices=tuple(classes), created_at=datetime.now(UTC).isoformat(timespec="seconds")))
