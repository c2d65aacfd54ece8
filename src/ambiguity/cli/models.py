"""Commands for models: train, finetune, predictions import / list, quadrants."""

from __future__ import annotations

from pathlib import Path

import click

from ambiguity.cli.app import get_store, main, parse_params
from ambiguity.cli.options import (
    bootstrap_option,
    device_option,
    emit,
    format_option,
    list_option,
    out_file_option,
    quadrant_options,
    quiet_option,
    render,
    render_many,
    seed_option,
)
from ambiguity.constants import Scheme


def _names(pairs: tuple[str, ...]) -> dict[str, str]:
    return parse_params(pairs, form="GROUP=NAME", option="--name")


@main.command()
@click.argument("groups", nargs=-1, required=True)
@click.option("--unimodal-arch", type=click.Choice(["probe", "fusion"]), default="probe", show_default=True,
              help="Unimodal models: a probe on frozen features, or the fusion network on one modality (the paper's).")
@click.option("--probe", "probe_arch", type=click.Choice(["logistic", "mlp"]), default="logistic", show_default=True,
              help="Which probe, with --unimodal-arch probe.")
@click.option("--fusion/--no-fusion", "with_fusion", default=True, show_default=True, help="Train the fusion model over all GROUPS.")
@click.option("--unimodal/--no-unimodal", "with_unimodal", default=True, show_default=True, help="Train one model per group.")
@click.option("--fusion-name", default="fusion", show_default=True, help="Name of the fusion model.")
@click.option("--name", "names", multiple=True, metavar="GROUP=NAME", help="Name a unimodal model (default: its group).")
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs (default: 10 fusion, 20 probes).")
@click.option("--batch-size", type=click.IntRange(min=2), default=32, show_default=True, help="Segments per training batch.")
@click.option("--lr", type=float, help="Start learning rate (default: 1e-4 fusion, 1e-3 probes).")
@click.option("--max-lr", type=float, help="Peak of the one-cycle schedule (default: 1e-3 fusion, 1e-2 probes).")
@click.option("--select", type=click.Choice(["loss", "accuracy"]), default="loss", show_default=True,
              help="Best epoch by validation loss or accuracy.")
@seed_option("Seed of initialisation and batch order; with --folds also the fold seed of the first repeat.")
@device_option()
@click.option("--folds", type=int, metavar="K", help="Cross-fit: K folds, every labelled segment predicted out of fold (default: the fixed split).")
@click.option("--repeats", type=int, metavar="R", help="With --folds: R repeats with fold seeds SEED..SEED+R-1.  [default: 1]")
@click.option("--group-by", metavar="COLUMN", help="With --folds: keep each value of this segments column or metadata key in one fold (e.g. dialog_id, speaker).")
@click.option("--workers", type=int, default=1, show_default=True, help="With --folds: (repeat, fold) units fitted in parallel processes.")
@quiet_option("No per-fold lines.")
@click.pass_context
def train(ctx, groups, unimodal_arch, probe_arch, with_fusion, with_unimodal, fusion_name, names, epochs,
          batch_size, lr, max_lr, select, seed, device, folds, repeats, group_by, workers, quiet) -> None:
    """Train a model per feature group and a gated attention fusion model over GROUPS; store their predictions.

    By default the models learn on the train split, choose their best epoch on val and predict every
    segment (the fixed scheme). With --folds K every labelled segment is predicted by models trained
    on the other folds (the crossfit scheme), R times with --repeats R.
    """
    from ambiguity.models.spec import TrainConfig
    from ambiguity.models.training import train as run_train

    store = get_store(ctx)
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, max_lr=max_lr, select=select, seed=seed, device=device)
    arch = "fusion" if unimodal_arch == "fusion" else probe_arch
    if folds is None and (repeats is not None or group_by is not None):
        raise click.UsageError("--repeats and --group-by need --folds K (cross-fitting)")
    if folds is not None:
        from ambiguity.models.crossfit import CrossfitConfig, crossfit

        cv = CrossfitConfig(folds=folds, repeats=1 if repeats is None else repeats, group_by=group_by, seed=seed, workers=workers)
        total = cv.folds * cv.repeats

        def on_fit(r, k, sec):
            if not quiet:
                click.echo(f"  repeat {r + 1}/{cv.repeats}, fold {k + 1}/{cv.folds} done in {sec:.1f} s")

        rep = crossfit(store, list(groups), cv=cv, unimodal=with_unimodal, fusion=with_fusion, unimodal_arch=arch,
                       fusion_name=fusion_name, names=_names(names), config=cfg, on_fit=on_fit)
        click.echo(rep.summary())
        click.echo(f"cross-fitted predictions of {len(rep.models)} model(s) ({total} fits each) in {store.uri}; "
                   "next: `ambiguity quadrants --scheme crossfit`")
        return
    from ambiguity.models.crossfit import fixed_split_warning
    from ambiguity.models.finetune import stacked_warning

    for warning in (fixed_split_warning(store), stacked_warning(store, list(groups))):
        if warning:
            click.echo(warning, err=True)
    reports = run_train(
        store, list(groups), unimodal=with_unimodal, fusion=with_fusion, unimodal_arch=arch,
        fusion_name=fusion_name, names=_names(names), config=cfg,
        on_report=(lambda r: None) if quiet else (lambda r: click.echo(r.summary())),
        on_skip=lambda name, why: click.echo(f"skipped {name}: {why}", err=True),
    )
    if quiet:
        for r in reports:
            click.echo(r.summary())
    click.echo(f"predictions of {len(reports)} model(s) in {store.uri} (table 'predictions'); next: `ambiguity quadrants`")


@main.command()
@click.argument("model")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Directory for the fine-tuned model.")
@click.option("--modality", type=click.Choice(["text", "audio", "video"]), default="text", show_default=True,
              help="What MODEL reads: the transcript, the audio or the video frames.")
@click.option("--epochs", type=click.IntRange(min=1), default=15, show_default=True, help="Passes over the train split.")
@click.option("--lr", type=float, default=5e-6, show_default=True, help="Learning rate (AdamW).")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True, help="Segments per batch.")
@click.option("--trainable-layers", type=click.IntRange(min=0), default=2, show_default=True, help="Transformer layers left unfrozen (the last ones).")
@click.option("--max-length", type=click.IntRange(min=1), default=512, show_default=True, help="Text: tokens kept.")
@click.option("--max-seconds", type=float, default=20.0, show_default=True, help="Audio: seconds kept per segment.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many train and val segments (a quick check).")
@seed_option("Seed of initialisation and batch order.")
@device_option()
@click.option("--name", help="Also store the fine-tuned classifier's predictions (every split) as this unimodal model "
              "(kind finetuned), as the paper's Table 1 uses them; embed with `extract --model OUT --group NAME`.")
@click.pass_context
def finetune(ctx, model, out, modality, epochs, lr, batch_size, trainable_layers, max_length, max_seconds, limit, seed, device,
             name) -> None:
    """Fine-tune MODEL (a local directory) on the store's labels with the paper's recipe; use it with `extract --model OUT`."""
    from dataclasses import asdict

    from ambiguity.models.finetune import FinetuneConfig, write_finetuned_predictions
    from ambiguity.models.finetune import finetune as run

    cfg = FinetuneConfig(modality=modality, epochs=epochs, lr=lr, batch_size=batch_size, trainable_layers=trainable_layers,
                         max_length=max_length, max_seconds=max_seconds, seed=seed, device=device, limit=limit)
    store = get_store(ctx)
    report = run(store, model, out, cfg, predict_all=bool(name), on_epoch=lambda r: click.echo(
        f"  epoch {r['epoch']}: train loss {r['train_loss']:.4f}, val loss {r['val_loss']:.4f}, val accuracy {r['val_accuracy']:.3f}"))
    click.echo(report.summary())
    if name:
        n = write_finetuned_predictions(store, report, name, modality, config=asdict(cfg))
        click.echo(f"{n} predictions stored as model {name!r} (kind finetuned)")


@main.group()
def predictions() -> None:
    """Model predictions in the store: import your own, list models."""


@predictions.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def predictions_import(ctx, file: Path) -> None:
    """Import FILE (CSV / Parquet: segment_id, model, [modalities], one probability column per class)."""
    from ambiguity.models.predictions import import_predictions

    click.echo(import_predictions(get_store(ctx), file).summary())


@predictions.command("list")
@format_option()
@out_file_option()
@click.pass_context
def predictions_list(ctx, fmt, out) -> None:
    """Every model in the predictions table with its kind, modalities and rows."""
    import polars as pl

    from ambiguity.models.predictions import model_summary

    df = model_summary(get_store(ctx))
    cols = [c for c in ("model", "kind", "arch", "modalities", "schemes", "rows") if c in df.columns]
    df = df.select(cols).with_columns(pl.col("modalities").list.join("+").fill_null("?"))
    if "schemes" in df.columns:  # fixed, crossfit or both
        df = df.with_columns(pl.col("schemes").list.join("+"))
    emit(render(df, fmt, caption="Models in the predictions table" if fmt == "latex" else None), out)


@main.command()
@list_option("--unimodal", "unimodal", metavar="MODEL", help="A unimodal model or modality (default: every unimodal model).")
@click.option("--fusion", default="fusion", show_default=True, help="The fusion model (--scheme human: human:all).")
@quadrant_options("Split whose segments are used", human=True)
@bootstrap_option("Bootstrap resamples for Table 2's CIs (fixed scheme).", min=1)
@seed_option("Bootstrap seed.")
@format_option("Format of the tables printed.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Also write tables (CSV, Markdown, LaTeX) and figures (PNG, SVG) into this folder.")
@click.pass_context
def quadrants(ctx, unimodal, fusion, splits, scheme, min_stability, threshold, n_boot, seed, fmt, out) -> None:
    """Quadrants of unimodal vs fusion models, Table 1 (accuracy, F1) and Table 2 (disagreement).

    Tables 1 and 2 cover the --unimodal models and the fusion model, or every model in the store
    when no --unimodal is named. On the crossfit scheme every labelled segment gets its modal
    quadrant over the repeats, with its stability and disagreement probability (--out writes them
    per segment), and Tables 1 and 2 give mean ± SD over the repeats. --scheme human runs people
    through the same tables: each unimodal condition (human:audio, human:video) against the
    audio-visual one (human:all).
    """
    from ambiguity.annotate.judgments import human_model
    from ambiguity.models.predictions import model_summary
    from ambiguity.stats.quadrant_tables import quadrants as quadrant_result
    from ambiguity.stats.quadrant_tables import resolve_model, table1, table2, unimodal_models
    from ambiguity.stats.stability import resolve_scheme
    from ambiguity.tables import to_latex, to_markdown

    store = get_store(ctx)
    split_t = splits or None
    summary = model_summary(store)
    human = scheme == Scheme.HUMAN  # people against people, never against models
    fusion = human_model("all") if human and fusion == "fusion" else fusion
    names = [resolve_model(store, u, summary) for u in unimodal] if unimodal else sorted(unimodal_models(store, human=human))
    fusion = resolve_model(store, fusion, summary)
    names = [n for n in names if n != fusion]
    if not names:
        raise click.UsageError("no unimodal model to compare: train one or name it with --unimodal" if not human else
                               "no human unimodal condition: import judgments with `ambiguity annotations import`")
    scheme = resolve_scheme(summary, [*names, fusion], scheme, Scheme.WITH_HUMAN)
    results = {u: quadrant_result(store, u, fusion, split_t, threshold, scheme=scheme, min_stability=min_stability,
                                  summary=summary) for u in names}
    info = next(iter(results.values())).scheme
    info_classes = next(iter(results.values())).n_classes
    # Tables 1 and 2 cover the named unimodal models and the fusion model, or every model if none is named.
    table_models = [*names, fusion] if unimodal else None
    t1 = table1(store, table_models, split_t, scheme=scheme, summary=summary)
    t2 = table2(store, table_models, split_t, n_boot=n_boot, seed=seed, scheme=scheme, summary=summary)
    how = info.caption()
    cap1 = f"Table 1: accuracy and macro F1 per model; {how}" + ("; mean and SD over the repeats" if scheme == "crossfit" else "")
    cap2 = (f"Table 2: disagreement of predicted labels; {how}; " +
            ("mean ± SD over the repeats" if scheme == "crossfit" else f"[{t2.ci:.0%} bootstrap CI, {n_boot} replicates]") +
            ("; n: segments with a plurality label (a tie has none and is left out of its pairs)" if human else ""))
    if fmt != "md":
        tabs = {f"quadrants {u} vs {fusion}": r.counts_frame() for u, r in results.items()}
        tabs |= {"table1": t1, "table2": t2.matrix() if fmt == "latex" else t2.to_polars()}
        click.echo(render_many(tabs, fmt, digits=3), nl=False)
    else:
        for res in results.values():
            click.echo(f"\n{res.caption()}")
            click.echo(to_markdown(res.counts_frame(), digits=3), nl=False)
        click.echo(f"\n{cap1}")
        click.echo(to_markdown(t1, digits=3), nl=False)
        click.echo(f"\n{cap2}")
        click.echo(to_markdown(t2.matrix()), nl=False)
    if out:
        from ambiguity.report import fig_quadrants as FQ
        from ambiguity.stores.tables import DYNAMICS

        out.mkdir(parents=True, exist_ok=True)
        files = []
        for u, res in results.items():
            p = out / f"quadrants_{u}.csv"
            res.frame.write_csv(p)
            files.append(p)
        for stem, df, cap in (("table1", t1, cap1), ("table2", t2.matrix(), cap2)):
            df.write_csv(out / f"{stem}.csv")
            (out / f"{stem}.md").write_text(to_markdown(df, caption=cap, digits=3))
            (out / f"{stem}.tex").write_text(to_latex(df, caption=cap, label=f"tab:{stem}", digits=3))
            files += [out / f"{stem}.{x}" for x in ("csv", "md", "tex")]
        t2.to_polars().write_csv(out / "table2_long.csv")
        files.append(out / "table2_long.csv")
        files += FQ.save(FQ.figure2({u: r.frame for u, r in results.items()}, fusion, threshold, caption=how,
                                    n_classes=info_classes), out, "figure2_quadrants")
        if store.has_table(DYNAMICS):
            files += FQ.write_datamap(store, out)
        click.echo(f"\nwrote {len(files)} files to {out}")
    first = next(iter(results))
    if fmt == "md" and human:
        click.echo(f"next: `ambiguity compare GROUP --unimodal {first} --scheme human` (features between quadrants), "
                   "`ambiguity annotations human` (agreement, accuracy and hardness from the votes)", err=True)
    elif fmt == "md":  # a human reads it; csv/json/latex stay machine-readable
        click.echo(f"next: `ambiguity compare GROUP --unimodal {first}` (features between quadrants), "
                   "`ambiguity attribute` (which input moved the fusion model), `ambiguity report`", err=True)
