"""Commands of the human study: sample, annotate (serve, export, progress), annotations import, agreement."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ambiguity.cli.app import get_store, main
from ambiguity.cli.options import (
    bootstrap_option,
    ci_option,
    emit,
    format_option,
    list_option,
    min_stability_option,
    out_file_option,
    quadrant_options,
    render,
    seed_option,
    task_option,
)
from ambiguity.constants import MODALITIES, Scheme
from ambiguity.errors import StoreError

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore



def _task_name(store: FeatureStore, task: str | None) -> str:
    """--task, or the store's only task."""
    from ambiguity.annotate.tasks import task_names

    if task:
        return task
    names = task_names(store)
    if len(names) == 1:
        return names[0]
    if not names:
        raise StoreError("the store has no annotation task: run `ambiguity sample` first")
    raise click.UsageError(f"name the task with --task (the store has: {', '.join(names)})")


def _fusion_models(store: FeatureStore) -> list[str]:
    """Models of the predictions table that saw more than one modality."""
    from ambiguity.errors import MissingGroupError
    from ambiguity.models.predictions import model_summary

    try:
        summary = model_summary(store)
    except MissingGroupError:
        return []
    return [r["model"] for r in summary.iter_rows(named=True) if len(r["modalities"] or []) > 1]


@main.command()
@click.option("--per-quadrant", default=17, show_default=True, type=click.IntRange(min=1), help="Segments per quadrant per modality.")
@list_option("--modality", "modalities", choices=MODALITIES, default=MODALITIES, help="Modality flag to sample.")
@click.option("--model", "models", multiple=True, metavar="MODALITY=MODEL", help="Unimodal model per modality (default: the store's one unimodal model of that modality).")
@click.option("--fusion", help="The fusion model (default: the store's one model that saw several modalities).")
@seed_option("Seed of the sample.")
@task_option("Name of the annotation task to save.", default="study", show_default=True)
@quadrant_options("Split to sample from")
@list_option("--choice", "choices", metavar="LABEL", help="Label annotators choose from (default: the gold labels).")
@click.option("--allow-repeats", is_flag=True, help="Let a segment appear under several modality flags.")
@click.option("--replace", is_flag=True, help="Replace an existing task of that name.")
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the items as CSV.")
@click.option("--label-studio", "ls_out", type=click.Path(dir_okay=False, path_type=Path), help="Also write Label Studio tasks (JSON).")
@click.pass_context
def sample(ctx, per_quadrant, modalities, models, fusion, seed, task, splits, scheme, min_stability, threshold, choices, allow_repeats, replace, csv_out, ls_out) -> None:
    """Draw a stratified, seeded sample per quadrant per modality and save it as an annotation task."""
    from ambiguity.annotate.tasks import check_task_name, sample_from_store, save_task
    from ambiguity.cli.app import parse_params

    check_task_name(task)
    store = get_store(ctx)
    mods = list(modalities)
    if not mods:
        raise click.BadParameter(f"use some of {', '.join(MODALITIES)}", param_hint="--modality")
    given = parse_params(models)
    unknown = [m for m in given if m not in MODALITIES]
    if unknown:
        raise click.BadParameter(f"unknown modality {unknown[0]!r}", param_hint="--model")
    chosen = {m: given.get(m) or m for m in mods}  # a modality name picks its one unimodal model
    if not fusion:
        found = _fusion_models(store)
        if len(found) != 1:
            raise click.UsageError(f"name the fusion model with --fusion MODEL (multimodal models in the store: {', '.join(found) or 'none'})")
        fusion = found[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = sample_from_store(
            store, chosen, fusion, per_quadrant, seed, name=task, splits=list(splits) or None, threshold=threshold,
            scheme=scheme, min_stability=min_stability,
            distinct=not allow_repeats, choices=list(choices) or None,
        )
    for w in caught:
        click.echo(f"warning: {w.message}", err=True)
    save_task(store, t, replace=replace)
    click.echo(f"task {t.name!r}: {t.items.height} items (seed {t.seed}, {t.per_quadrant} per quadrant), labels: {', '.join(t.choices)}")
    for r in t.counts().iter_rows(named=True):
        click.echo(f"  {r['modality']:<6} {r['quadrant']:<7} {r['n']}")
    _export(store, t, csv_out, ls_out)


def _export(store: FeatureStore, t, csv_out: Path | None, ls_out: Path | None) -> None:
    segs = store.segments(["segment_id", "media", "audio", "start_s", "end_s", "transcript"]) if (csv_out or ls_out) else None
    if csv_out:
        click.echo(f"wrote {t.to_csv(csv_out, segs)}")
    if ls_out:
        from ambiguity.annotate.tasks import label_studio_config

        t.to_label_studio(ls_out, segs)
        cfg = ls_out.with_suffix(".xml")
        cfg.write_text(label_studio_config(t.choices))
        click.echo(f"wrote {ls_out} and its labelling view {cfg}")


@main.group()
def annotate() -> None:
    """The annotation app and its tasks."""


@annotate.command("serve")
@task_option()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; anything but loopback exposes the app to the network.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--definition", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Text file with the definition shown to annotators (default: the paper's Appendix C).")
@list_option("--choice", "choices", metavar="LABEL", help="Label annotators choose from (default: the task's).")
@list_option("--annotator", "annotators", metavar="NAME", help="Name allowed to log in (default: any valid name).")
@click.option("--clips", type=click.Path(file_okay=False, path_type=Path), help="Folder that caches the cut clips (default: a temp folder).")
@click.pass_context
def serve_cmd(ctx, task, host, port, definition, choices, annotators, clips) -> None:
    """Serve the annotation app for a task (open the printed address in a browser)."""
    from ambiguity.annotate.server import serve
    from ambiguity.annotate.tasks import load_task
    from ambiguity.web.http import is_loopback

    store = get_store(ctx)
    name = _task_name(store, task)
    load_task(store, name)  # a missing task fails here, before the address is printed
    if not is_loopback(host):
        click.echo(f"warning: binding {host}: anyone who can reach this address can log in by name", err=True)
    click.echo(f"annotating task {name!r}: open http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/ (Ctrl+C stops; answers are saved as given)")
    serve(
        store, name, host=host, port=port, definition=definition.read_text(encoding="utf-8") if definition else None,
        choices=list(choices) or None, annotators=list(annotators) or None, clip_dir=str(clips) if clips else None,
    )


@annotate.command("export")
@task_option()
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False, path_type=Path), help="Write the items as CSV.")
@click.option("--label-studio", "ls_out", type=click.Path(dir_okay=False, path_type=Path), help="Write Label Studio tasks (JSON) and view (XML).")
@click.pass_context
def export_cmd(ctx, task, csv_out, ls_out) -> None:
    """Export a saved task's items as CSV and/or Label Studio tasks."""
    from ambiguity.annotate.tasks import load_task

    if not csv_out and not ls_out:
        raise click.UsageError("name --csv FILE and/or --label-studio FILE")
    store = get_store(ctx)
    _export(store, load_task(store, _task_name(store, task)), csv_out, ls_out)


@annotate.command("progress")
@task_option()
@format_option()
@out_file_option()
@click.pass_context
def progress_cmd(ctx, task, fmt, out) -> None:
    """Items answered per annotator and round."""
    from ambiguity.annotate.records import progress
    from ambiguity.annotate.tasks import load_task

    store = get_store(ctx)
    t = load_task(store, _task_name(store, task))
    df = progress(store, t)
    if fmt == "md":
        if df.height == 0:
            click.echo(f"task {t.name!r}: {t.items.height} items, no answers yet")
            return
        click.echo(f"task {t.name!r}: {t.items.height} items")
    emit(render(df.rename({"unimodal": "pass 1 (unimodal)", "multimodal": "pass 2 (multimodal)"}), fmt), out)


@main.group("annotations")
def annotations_group() -> None:  # not `annotations`: that name is the __future__ import
    """Judgments collected elsewhere."""


@annotations_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@task_option()
@click.option("--input-format", "fmt", type=click.Choice(["csv", "label-studio"]), help="What FILE is (default: by extension; .json: label-studio).")
@click.option("--annotator", help="Annotator name for files without one (overrides Label Studio's completed_by).")
@click.option("--layout", type=click.Choice(["long", "counts"]), help="Judgments of many raters, not a task's answers: "
              "long (item, rater, condition, label[, confidence][, gold]) or counts (item, condition, one column per class).")
@click.option("--preset", type=click.Choice(["crema-d"]), help="A known layout: crema-d reads CREMA-D's tabulatedVotes.csv "
              "(and VideoDemographics.csv beside it).")
@click.option("--condition", "conditions", multiple=True, metavar="CONDITION=MODALITY",
              help="What a condition showed: audio, video, text or all (e.g. voice=audio, face=video, audio-visual=all); repeatable.")
@list_option("--classes", "classes", metavar="LABEL", help="The classes, in count-column order (default: the other columns, or the labels seen).")
@click.option("--demographics", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Per-actor table joined by actor (crema-d).")
@click.pass_context
def import_cmd(ctx, file, task, fmt, annotator, layout, preset, conditions, classes, demographics) -> None:
    """Import judgments from FILE (CSV: annotator, segment_id, round, judgment; or a Label Studio export), or, with
    --layout or --preset, many raters' judgments per item and condition (items not yet segments become label-only
    segments; the raters become predictors human:audio, human:video, human:all under the human scheme)."""
    from ambiguity.annotate.records import import_file
    from ambiguity.annotate.tasks import load_task

    store = get_store(ctx)
    if layout or preset:
        from ambiguity.annotate.judgments import read_judgments_file, save_judgments, store_gold

        j = read_judgments_file(file, layout=layout or "counts", preset=preset, classes=list(classes) or None,
                                conditions=conditions, demographics=demographics, gold=store_gold(store))
        written = save_judgments(store, j)
        click.echo(f"imported {j.summary()}")
        click.echo("wrote " + ", ".join(f"{k}: {v}" for k, v in written.items()))
        return
    t = load_task(store, _task_name(store, task))
    n = import_file(store, file, t, annotator=annotator, fmt=fmt)
    click.echo(f"imported {n} judgment(s) into task {t.name!r}")


@main.command()
@task_option()
@list_option("--annotator", "annotators", metavar="NAME", help="Annotator to compare (default: all).")
@click.option("--by-modality", is_flag=True, help="One row per modality flag and quadrant.")
@bootstrap_option("Bootstrap resamples for the CIs (0: none).")
@ci_option()
@seed_option("Bootstrap seed.")
@click.option("--scheme", type=click.Choice(("task", *Scheme.MODELS)), default="task", show_default=True,
              help="Quadrants per item: those saved when the task was sampled, or the store's fixed or crossfit ones now.")
@min_stability_option()
@format_option()
@out_file_option()
@click.pass_context
def agreement(ctx, task, annotators, by_modality, n_boot, ci, seed, scheme, min_stability, fmt, out) -> None:
    """Table 5: kappa between annotators per quadrant and round, its change, and accuracy per annotator."""
    from ambiguity.annotate.records import task_agreement as compute

    store = get_store(ctx)
    res = compute(
        store, _task_name(store, task), annotators=list(annotators) or None, by_modality=by_modality,
        n_boot=n_boot, ci=float(ci), seed=seed, scheme=None if scheme == "task" else scheme, min_stability=min_stability,
    )
    emit(render(res, fmt, latex={"accuracy": True}), out)


@annotations_group.command("human")
@click.option("--cluster", default="actor", show_default=True, help="Item metadata whose values are resampled whole "
              "for the accuracy and green/red intervals (none: items).")
@bootstrap_option("Bootstrap resamples for the intervals (0: none).")
@seed_option("Bootstrap seed.")
@click.option("--versus", nargs=3, metavar="UNIMODAL FUSION MODALITY", help="Also test models against people: the "
              "cross-fitted disagreement of UNIMODAL vs FUSION against human entropy and the human quadrant of MODALITY.")
@click.option("--task", help="Instead: Dawid-Skene on an annotation task's answers (per round: posteriors, each "
              "annotator's confusion matrix, the comparison with the plurality vote).")
@out_file_option("Write the tables to this file instead of stdout.")
@click.pass_context
def human_cmd(ctx, cluster, n_boot, seed, versus, task, out) -> None:
    """The human analysis of imported judgments: accuracy, agreement, human quadrants, the agreement change per
    quadrant, green and red, what makes items hard, Dawid-Skene where rater ids exist."""
    from ambiguity.annotate.human import analyse_store, model_vs_human_store, task_raters
    from ambiguity.tables import to_markdown

    store = get_store(ctx)
    if task:
        rm = task_raters(store, task)
        emit(to_markdown(rm.comparison, caption=f"Dawid-Skene (crowd-kit) vs the plurality vote, task {task!r}: share "
                         "of items where they agree (a plurality tie never agrees), each one's accuracy against gold.")
             + "\n\n" + to_markdown(rm.confusion, caption="P(observed | true) per annotator and round.") + "\n", out)
        return
    res = analyse_store(store, cluster=None if cluster == "none" else cluster, n_boot=n_boot, seed=seed)
    text = res.to_markdown()
    if versus:
        uni, fus, mod = versus
        mv = model_vs_human_store(store, uni, fus, mod, n_boot=n_boot, seed=seed)
        text += (f"\nModels vs people ({mv['n']} segments): Spearman rho of the cross-fitted disagreement probability "
                 f"({uni} vs {fus}) and the entropy of the audio-visual votes = {mv['rho']:.3f} "
                 f"[{mv['low']:.3f}, {mv['high']:.3f}], p = {mv['p']:.3g}\n\n")
        text += to_markdown(mv["table"], caption=f"Model quadrant x human quadrant ({mod}); chi-square p = {mv['chi2_p']:.3g}.") + "\n"
    emit(text, out)
