"""Commands for the report and the config-driven pipeline: report, run."""

from __future__ import annotations

from pathlib import Path

import click

from ambiguity.cli.app import get_store, main
from ambiguity.cli.options import (
    correction_option,
    list_option,
    quadrant_options,
)


@main.command()
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder for index.html, tables/, figures/.")
@click.option("--fusion", default="fusion", show_default=True, help="The fusion model.")
@list_option("--unimodal", metavar="MODEL", help="Unimodal model for Figure 2 (default: all).")
@quadrant_options("Split the quadrants use")
@click.option("--audio-model", help="Unimodal model for Tables 3, 6, 7 (default: the first audio model).")
@list_option("--audio-group", "audio_groups", metavar="GROUP", help="Feature group compared in the audio tables (default: prosody).")
@click.option("--video-model", help="Unimodal model for Tables 4, 8 (default: the first video model).")
@list_option("--au-group", "au_groups", metavar="GROUP", help="Group with activation rates (default: openface, landmarks).")
@click.option("--text-model", help="Unimodal model for Figure 3 (default: the first text model).")
@click.option("--text-group", help="Embedding group for Figure 3 (default: the text model's group).")
@correction_option("Multiple-comparison correction within each quadrant pair.")
@click.option("--adjust", type=click.Choice(["label", "none"]), default="label", show_default=True,
              help="Feature comparisons within each class label (label) or the paper's two-group test (none, with --test).")
@click.option("--group-by", metavar="COLUMN", help="Cluster the comparisons' errors by this segments column or metadata key (speaker, dialog_id).")
@click.option("--family", type=click.Choice(["pair", "report"]), default="pair", show_default=True,
              help="Correction family of the feature comparisons: each quadrant pair, or every comparison of the report.")
@click.option("--test", "test_name", default="welch", show_default=True, type=click.Choice(["welch", "student", "mannwhitney"]),
              help="With --adjust none: the two-group test of the feature comparisons.")
@click.option("--permutations", type=click.IntRange(min=0), default=10_000, show_default=True,
              help="Permutations of the boundary tests.")
@click.option("--task", help="Annotation task for Table 5 (default: the newest).")
@click.option("--flag", help="A metadata column marking segments of interest (share in red/green reported).")
@click.option("--title", default="ambiguity report", show_default=True, help="Title of index.html.")
@list_option("--skip", metavar="SECTION", help="Leave out a section by its key (the index names it as left out), e.g. "
             "figure3, whose nearest neighbours cover every segment")
@click.pass_context
def report(ctx, out, fusion, unimodal, splits, scheme, min_stability, threshold, audio_model, audio_groups, video_model, au_groups, text_model,
           text_group, correction, adjust, group_by, family, test_name, permutations, task, flag, title, skip) -> None:
    """Every table (Markdown, LaTeX, CSV) and figure (PNG, SVG) of the paper, with an index.html."""
    from ambiguity.report.build import ReportSettings, build_report

    s = ReportSettings(fusion=fusion, unimodal=list(unimodal) or None, splits=tuple(splits) or None,
                       scheme=scheme, min_stability=min_stability, threshold=threshold, audio_model=audio_model, video_model=video_model, text_model=text_model,
                       text_group=text_group, correction=correction, test=test_name, permutations=permutations,
                       adjust=adjust, group_by=group_by, family=family,
                       task=task, flag=flag, title=title, skip=tuple(skip))
    if audio_groups:
        s.audio_groups = list(audio_groups)
    if au_groups:
        s.au_groups = list(au_groups)
    rep = build_report(get_store(ctx), out, s)
    for sec in rep.sections:
        state = "ok" if not sec.note else ("ERROR: " if sec.error else "missing: ") + sec.note
        click.echo(f"  {sec.title}: {state}")
    click.echo(f"report: {(out / 'index.html').resolve()}")


@main.command("run")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Run every stage even if it is up to date.")
def run_cmd(config: Path, force: bool) -> None:
    """Run the pipeline of CONFIG.toml; stages whose inputs and settings did not change are skipped."""
    from ambiguity.pipeline import run_pipeline

    out = run_pipeline(config, echo=click.echo, force=force)
    click.echo(f"{len(out['ran'])} stage(s) ran, {len(out['skipped'])} up to date")
