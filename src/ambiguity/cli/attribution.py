"""Commands for modality attribution: attribute (Shapley values), reliance, conflicts."""

from __future__ import annotations

from pathlib import Path

import click

from ambiguity.cli.app import get_store, main
from ambiguity.cli.options import (
    bootstrap_option,
    emit,
    format_option,
    list_option,
    out_file_option,
    render_many,
    scheme_option,
    seed_option,
    split_option,
)


@main.command()
@click.option("--fusion", "model", default="fusion", show_default=True, help="The fusion model (saved by `ambiguity train`).")
@split_option(help="Split whose segments are attributed (default: test on the fixed scheme, every labelled segment on crossfit).",
              default=None)
@scheme_option(help="Which models attribute: crossfit (each segment by the fold model that never saw its group, "
                    "every repeat), fixed (the fixed-split model) or auto (crossfit when the fusion model has fold models).")
@click.option("--target", default="p_correct", show_default=True,
              help="What is explained: p_correct, logit (log-odds of the true class), p:CLASS or logit:CLASS.")
@click.option("--method", type=click.Choice(["auto", "exact", "permutation"]), default="auto", show_default=True,
              help="exact (all 2^M coalitions, M <= 10) or permutation sampling; auto: exact when M <= 10.")
@click.option("--permutations", "n_permutations", type=click.IntRange(min=2), help="Random orders per segment for permutation sampling.")
@seed_option(help="Seed of the sampled orders.")
@click.option("--chunk", type=click.IntRange(min=1), default=8192, show_default=True,
              help="Segments per pass through the model.")
@click.option("--batch", type=click.IntRange(min=1), default=50_000, show_default=True,
              help="Segments (x repeats on crossfit) read, attributed and written together (memory grows with it).")
@click.option("--pool", is_flag=True, help="One player per modality (its feature groups pooled) instead of one per feature group.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the long table (segment_id, modality, phi, v_all, v_empty, ...): .csv, .parquet or .jsonl.")
@click.option("--by-quadrant", "unimodal", metavar="UNIMODAL",
              help="Also print mean phi per quadrant of UNIMODAL vs the fusion model, the tests and the dominant modality.")
@format_option(help="Format of the --by-quadrant tables.")
@click.pass_context
def attribute(ctx, model, splits, scheme, target, method, n_permutations, seed, chunk, batch, pool, out, unimodal, fmt) -> None:
    """Shapley value of each modality for each segment's fusion output, out of sample; stored in the 'attributions' table."""
    from ambiguity.models.attributions import attribute as run
    from ambiguity.models.attributions import export

    store = get_store(ctx)
    split_t = tuple(splits) or None
    res = run(store, model, scheme=scheme, splits=split_t, target=target, method=method, n_permutations=n_permutations,
              seed=seed, chunk=chunk, pool=pool, batch=batch)
    click.echo(res.summary())
    if out:
        rows = export(res.batches(), out)  # batch by batch from the store: never the whole table in memory
        click.echo(f"wrote {rows} rows to {out}")
    if unimodal:
        from ambiguity.stats.attribution_by_quadrant import quadrant_attribution

        qa = quadrant_attribution(store, unimodal, model, splits=split_t, target=res.target, scheme=res.scheme)
        emit(render_many({f"Mean phi per quadrant ({qa.describe()})": qa.means,
                          qa.comparison_caption(): qa.tests,
                          "Dominant modality per quadrant": qa.dominant}, fmt), None)


@main.command()
@click.option("--fusion", "model", default="fusion", show_default=True, help="The fusion model (saved by `ambiguity train`).")
@split_option(help="Split whose segments are used (default: test on the fixed scheme, every labelled segment on crossfit).",
              default=None)
@scheme_option(help="crossfit: each fold's model on the segments it held out; fixed: the fixed-split model; "
                    "auto: crossfit when the fusion model has fold models.")
@click.option("--permutations", "n_permutations", type=click.IntRange(min=1), default=10, show_default=True,
              help="Seeded permutations per player for the Perceptual Score.")
@bootstrap_option(help="Bootstrap resamples of segments for the Perceptual Score's interval.")
@seed_option(help="Seed of the permutations, the donors of the swap and the bootstrap.")
@click.option("--pool", is_flag=True, help="One player per modality (its feature groups pooled) instead of one per feature group.")
@format_option()
@out_file_option()
@click.pass_context
def reliance(ctx, model, splits, scheme, n_permutations, n_boot, seed, pool, fmt, out) -> None:
    """How much the fusion model relies on each feature group (or modality, --pool): Perceptual Score and counterfactual swap."""
    from ambiguity.models.reliance import counterfactual_swap, perceptual_score

    store = get_store(ctx)
    splits = tuple(splits) or None
    ps = perceptual_score(store, model, splits=splits, n_permutations=n_permutations, seed=seed, n_boot=max(n_boot, 1),
                          scheme=scheme, pool=pool)
    sw, _ = counterfactual_swap(store, model, splits=splits, seed=seed, scheme=scheme, pool=pool)
    player = "modality (its feature groups together)" if pool else "feature group"
    emit(render_many({f"Perceptual Score of {model}, {ps['scheme'][0]} scheme (accuracy drop when one {player} is permuted; "
                      f"{n_permutations} permutations, 95% bootstrap CI)": ps,
                      "Counterfactual swap: share of predictions that follow a donor of another class (95% Wilson CI)": sw},
                     fmt), out)


@main.command()
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The conflict test set manifest: .csv, .parquet or .jsonl (and FILE.json describing it).")
@list_option("--unimodal", "unimodal", metavar="MODEL", help="A unimodal model (default: every unimodal model).")
@split_option(help="Split whose segments are candidates (default: test on the fixed scheme, every labelled segment on crossfit).",
              default=None)
@scheme_option(help="Out-of-sample predictions: crossfit (mean over repeats), fixed (test split unless --split) or auto.")
@click.option("--min-margin", type=click.FloatRange(0.5, 1.0), default=0.8, show_default=True,
              help="Keep segments where two unimodal models each give at least this probability to different classes.")
@click.option("--swap-pairs", "pairs_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the counterfactual swap pairs of --fusion (segment, modality, donor) to this file.")
@click.option("--fusion", "model", default="fusion", show_default=True, help="The fusion model whose swap pairs --swap-pairs writes.")
@seed_option(help="Seed of the swap donors.")
@click.pass_context
def conflicts(ctx, out, unimodal, splits, scheme, min_margin, pairs_path, model, seed) -> None:
    """Export the segments whose unimodal models confidently disagree, as a manifest to test any fusion model on."""
    from ambiguity.stats.conflicts import conflict_scores, conflict_set, write_manifest

    store = get_store(ctx)
    splits = tuple(splits) or None
    scores = conflict_scores(store, list(unimodal) or None, splits, scheme=scheme)
    chosen = conflict_set(scores, min_margin)
    pairs = None
    if pairs_path:
        import polars as pl

        from ambiguity.models.reliance import counterfactual_swap

        _, pairs = counterfactual_swap(store, model, splits=splits, seed=seed, scheme=scores["scheme"][0])
        pairs = pairs.filter(pl.col("segment_id").is_in(chosen["segment_id"].to_list()))
    files = write_manifest(store, chosen, out, threshold=min_margin, pairs=pairs, pairs_path=pairs_path)
    click.echo(f"{chosen.height} of {scores.height} segments ({scores['scheme'][0]} scheme, out of sample) have a confident "
               f"conflict (margin >= {min_margin}); "
               f"wrote {', '.join(str(f) for f in files)}")
