"""Commands for the statistics layer: compare (Tables 3, 4, 6, 7, 8; Figures 5, 6) and boundary (Figure 3)."""

from __future__ import annotations

from pathlib import Path

import click

from ambiguity.cli.app import get_store, main
from ambiguity.cli.options import (
    ci_option,
    correction_option,
    emit,
    format_option,
    list_option,
    out_file_option,
    quadrant_options,
    render,
    render_many,
    seed_option,
    split_option,
)
from ambiguity.stats.neighbours import EXACT_LIMIT, TARGET_RECALL


def _pairs(values: tuple[str, ...]) -> list[tuple[str, str]]:
    from ambiguity.constants import COMPARISON_PAIRS

    if not values:
        return list(COMPARISON_PAIRS)
    out = []
    for v in values:
        a, sep, b = v.partition(":")
        if not sep or not a or not b:
            raise click.BadParameter(f"{v!r}: use A:B, e.g. red:blue", param_hint="--pair")
        out.append((a.strip(), b.strip()))
    return out


@main.command()
@click.argument("groups", nargs=-1, required=True)
@click.option("--unimodal", required=True, metavar="MODEL", help="The unimodal model (or its modality) of the quadrants.")
@click.option("--fusion", default="fusion", show_default=True, help="The fusion model of the quadrants (--scheme human: human:all).")
@click.option("--columns", metavar="REGEX", help=r"Compare the columns matching this regex, e.g. '^AU\d+_rate$'.")
@list_option("--feature", "features", metavar="NAME", help="Compare this column.")
@click.option("--rates", is_flag=True, help="AU activation rates: columns ending in _rate unless named; Figure 6 instead of 5.")
@list_option("--pair", "pairs", metavar="A:B", help="Quadrant pair (default red:blue, green:blue, red:green).")
@quadrant_options("Split whose segments are compared", human=True)
@click.option("--adjust", type=click.Choice(["label", "none"]), default="label", show_default=True,
              help="label: test within each class label and combine (regression with CR2 errors, Bell-McCaffrey df; "
                   "binary features: CMH); none: the paper's two-group test (--test).")
@click.option("--group-by", metavar="COLUMN", help="Cluster the errors by this segments column or metadata key (speaker, dialog_id).")
@click.option("--family", type=click.Choice(["pair", "report"]), default="pair", show_default=True,
              help="Correction family: each quadrant pair, or every pair of this command together.")
@click.option("--test", type=click.Choice(["welch", "student", "mannwhitney"]), default="welch", show_default=True,
              help="With --adjust none: the two-group test of each feature.")
@correction_option("Correction over the features of each family (--family).")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05, show_default=True,
              help="Significance level after correction.")
@ci_option("Confidence level of the effect-size intervals.")
@click.option("--bayes", is_flag=True, help="Add BF10 of each t-test (JZS, Cauchy prior r = 0.707).")
@format_option()
@out_file_option()
@click.option("--figure", "figure_dir", type=click.Path(file_okay=False, path_type=Path), help="Write Figure 5 (or 6 with --rates) as PNG and SVG into this directory.")
@click.pass_context
def compare(ctx, groups, unimodal, fusion, columns, features, rates, pairs, splits, scheme, min_stability, threshold, adjust,
            group_by, family, test, correction, alpha, ci, bayes, fmt, out, figure_dir) -> None:
    """Compare quadrant pairs on the features of GROUPS (within label by default, corrected, effect sizes)."""
    from ambiguity.stats.comparisons import compare_quadrants, join_quadrants
    from ambiguity.stats.frames import select_columns
    from ambiguity.stats.quadrant_tables import quadrants as load

    if columns and features:
        raise click.UsageError("use --columns REGEX or --feature NAME, not both")
    if adjust == "label" and (test != "welch" or bayes):
        raise click.UsageError(f"{'--bayes' if bayes else '--test ' + test} goes with the unadjusted test: add --adjust none")
    cols = list(features) if features else columns or (r"_rate$" if rates else None)
    store = get_store(ctx)
    if scheme == "human" and fusion == "fusion":  # people against people: the audio-visual condition
        from ambiguity.annotate.judgments import human_model

        fusion = human_model("all")
    q = load(store, unimodal, fusion, splits or None, threshold, scheme=scheme, min_stability=min_stability)
    quads = q.frame
    res = compare_quadrants(
        store, unimodal, fusion, list(groups), _pairs(pairs), threshold=threshold, columns=cols,
        test=test, correction=correction, alpha=alpha, ci=ci, bayes=bayes, quadrants=quads, quadrants_note=q.scheme.caption(),
        adjust=adjust, group_by=group_by, family=family,
    )
    emit(render(res, fmt, label="tab:rates" if rates else "tab:features"), out)
    if figure_dir:
        from ambiguity.report.fig_features import write_figure5, write_figure6

        # the drawn columns only, chosen from the schema (no row read): 10^6 x 88 features are 0.7 GB
        names = select_columns(store.features(list(groups), segment_ids=[]), cols, exclude=["quadrant"])
        joined = join_quadrants(store.features(list(groups), columns=names), quads, names)
        write = write_figure6 if rates else write_figure5
        paths = write(joined, figure_dir, columns=names, comparison=res)
        click.echo(f"wrote {', '.join(str(p) for p in paths)}")
    if fmt == "md":  # a human reads it; csv/json/latex stay machine-readable
        click.echo("next: `ambiguity report` (every table and figure in one page), `ambiguity sample` (segments to annotate)", err=True)


@main.command()
@click.argument("group")
@click.option("--unimodal", metavar="MODEL", help="With --fusion: summarise and test per quadrant.")
@click.option("--fusion", default="fusion", show_default=True, help="The fusion model of the quadrants.")
@quadrant_options("Split whose quadrants are used")
@split_option("Split searched for neighbours (default: every labelled segment).", default=None,
              decl="--neighbour-split", dest="neighbour_splits")
@click.option("--k", type=click.IntRange(min=1), default=10, show_default=True, help="Neighbours per segment.")
@click.option("--metric", type=click.Choice(["cosine", "euclidean"]), default="cosine", show_default=True,
              help="Distance of the nearest-neighbour search.")
@click.option("--permutations", type=click.IntRange(min=0), default=10_000, show_default=True, help="Permutations per test (0: no tests).")
@seed_option("Seed of the permutation tests and UMAP.")
@correction_option("Correction over the per-quadrant tests.")
@click.option("--exact-limit", type=click.IntRange(min=1), default=EXACT_LIMIT, show_default=True, help="Exact kNN up to this many segments, a Lance vector index above; with --query-sample, up to this many sampled segments (searched exactly in one streamed pass).")
@click.option("--target-recall", type=click.FloatRange(min=0, max=1, min_open=True), default=TARGET_RECALL, show_default=True,
              help="Index search: probes raised until the 95% lower bound of recall@k against exact search on a sample reaches this.")
@click.option("--query-sample", type=click.IntRange(min=2), help="Search the neighbours of at most this many segments per quadrant (seeded), among all, streaming the embedding; needs --unimodal.")
@format_option()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write per-segment values to this .csv or .parquet.")
@click.option("--figure", "figure_dir", type=click.Path(file_okay=False, path_type=Path), help="Compute a UMAP projection and write Figure 3 (PNG, SVG) here.")
@click.pass_context
def boundary(ctx, group, unimodal, fusion, splits, scheme, min_stability, threshold, neighbour_splits, k, metric, permutations, seed, correction, exact_limit, target_recall, query_sample, fmt, out, figure_dir) -> None:
    """Nearest-neighbour boundary analysis of the embedding GROUP: other-label share, margin, permutation tests."""
    from ambiguity.stats.boundary_store import boundary as run

    if out and out.suffix.lower() not in (".csv", ".parquet"):
        raise click.BadParameter("use a .csv or .parquet file", param_hint="--out")
    if query_sample and not unimodal:
        raise click.BadParameter("samples per quadrant: give --unimodal (and --fusion)", param_hint="--query-sample")
    store = get_store(ctx)
    quads, note = None, None
    if unimodal:
        from ambiguity.stats.quadrant_tables import quadrants as load

        q = load(store, unimodal, fusion, splits or None, threshold, scheme=scheme, min_stability=min_stability)
        quads, note = q.frame, q.scheme.caption()
    res = run(
        store, group, k=k, metric=metric, quadrants=quads, splits=neighbour_splits or None, quadrants_note=note,
        n_permutations=permutations, seed=seed, correction=correction, exact_limit=exact_limit, umap=figure_dir is not None,
        target_recall=target_recall, query_sample=query_sample,
    )
    if res.memory_note:
        click.echo(res.memory_note, err=True)
    if res.recall_note:
        click.echo(f"neighbours from a {res.recall_note}", err=True)
    if fmt in ("md", "latex"):
        click.echo(render(res, fmt, label="tab:boundary"), nl=False)
    else:  # the two tables; per-segment values go to --out
        click.echo(render_many({"summary": res.summary, "tests": res.tests}, fmt), nl=False)
    if out:
        seg = res.to_polars()
        seg.write_parquet(out) if out.suffix.lower() == ".parquet" else seg.write_csv(out)
        click.echo(f"wrote {seg.height} rows to {out}")
    if figure_dir:
        from ambiguity.report.fig_boundary import write_figure3

        paths = write_figure3(res, figure_dir)
        click.echo(f"wrote {', '.join(str(p) for p in paths)}")
