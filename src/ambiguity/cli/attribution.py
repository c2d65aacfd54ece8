"""Commands for modality attribution: attribute (Shapley values), reliance, conflicts."""

from __future__ import annotations

from pathlib import Path

import click

from ambiguity.cli.app import get_store, main
from ambiguity.cli.options import emit, format_option, render_many, seed_option, split_option


@main.command()
@click.option("--model", default="fusion", show_default=True, help="The fusion model (saved by `ambiguity train`).")
@split_option(help="Split whose segments are attributed (default: every split).", default=None)
@click.option("--target", default="p_correct", show_default=True,
              help="What is explained: p_correct, logit (log-odds of the true class), p:CLASS or logit:CLASS.")
@click.option("--method", type=click.Choice(["auto", "exact", "permutation"]), default="auto", show_default=True,
              help="exact (all 2^M coalitions, M <= 10) or permutation sampling; auto: exact when M <= 10.")
@click.option("--permutations", "n_permutations", type=click.IntRange(min=2), help="Random orders per segment for permutation sampling.")
@seed_option(help="Seed of the sampled orders.")
@click.option("--chunk", type=click.IntRange(min=1), default=8192, show_default=True, help="Segments per batch.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the long table (segment_id, modality, phi, v_all, v_empty, ...): .csv, .parquet or .jsonl.")
@click.option("--by-quadrant", "unimodal", metavar="UNIMODAL",
              help="Also print mean phi per quadrant of UNIMODAL vs the fusion model, the tests and the dominant modality.")
@format_option(help="Format of the --by-quadrant tables.")
@click.pass_context
def attribute(ctx, model, splits, target, method, n_permutations, seed, chunk, out, unimodal, fmt) -> None:
    """Shapley value of each modality for each segment's fusion output; stored in the 'attributions' table."""
    from ambiguity.models.attributions import attribute as run
    from ambiguity.models.attributions import export

    store = get_store(ctx)
    split_t = tuple(splits) or None
    res = run(store, model, splits=split_t, target=target, method=method, n_permutations=n_permutations,
              seed=seed, chunk=chunk)
    click.echo(res.summary())
    if out:
        export(res.frame, out)
        click.echo(f"wrote {res.frame.height} rows to {out}")
    if unimodal:
        from ambiguity.stats.attribution import quadrant_attribution

        qa = quadrant_attribution(store, unimodal, model, splits=split_t or ("test",), target=res.target)
        emit(render_many({f"Mean phi per quadrant ({qa.describe()})": qa.means,
                          qa.comparison_caption(): qa.tests,
                          "Dominant modality per quadrant": qa.dominant}, fmt), None)
