"""The options several commands share, and how tables are written: one name and one meaning each.

Conventions (docs/cli.md's header repeats them; tests/cli/test_conventions.py checks them):

- A list is a repeatable option with a singular name (``--split test --split val``); one value
  may also hold a comma-separated list (``--split test,val``). KEY=VALUE options are
  repeatable only (a value may contain commas).
- The same thing has the same name everywhere: ``--split``, ``--bootstrap N``, ``--seed``,
  ``--device``, ``--threshold``, ``--correction``, ``--ci``, ``--task``, ``--quiet``.
- Every command that prints a table takes ``--format md|csv|json|latex`` (default ``md``) and
  ``--out FILE`` to write it to a file instead of stdout.
- Every option has help text.

A new command reuses these decorators rather than declaring its own ``--split``/``--seed``/...
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import click

from ambiguity.constants import CORRECTIONS, Scheme
from ambiguity.devices import DEVICES

FORMATS: tuple[str, ...] = ("md", "csv", "json", "latex")

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def split_commas(values: Iterable[str] | None) -> tuple[str, ...]:
    """("test,val", "train") -> ("test", "val", "train"); blanks dropped, order and repeats kept once."""
    out: list[str] = []
    for v in values or ():
        for part in str(v).split(","):
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return tuple(out)


def list_option(*decls: str, help: str, metavar: str = "NAME", choices: Sequence[str] | None = None,
                default: Sequence[str] | None = None, required: bool = False, **kw: Any) -> Decorator:
    """A repeatable option whose values may also be comma-separated; the callback gets a flat tuple."""
    def flatten(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
        out = split_commas(value)
        if choices is not None:
            bad = [v for v in out if v not in choices]
            if bad:
                raise click.BadParameter(f"{bad[0]!r} is not one of {', '.join(choices)}", ctx=ctx, param=param)
        if required and not out:
            raise click.BadParameter("give at least one value", ctx=ctx, param=param)
        return out

    if choices is not None and metavar == "NAME":
        metavar = "[" + "|".join(choices) + "]"
    text = help.rstrip(".") + "; repeatable, or comma-separated."
    extra: dict[str, Any] = {}
    if default:
        extra["default"] = tuple(default)
        text += f"  [default: {','.join(default)}]"
    return click.option(*decls, multiple=True, metavar=metavar, callback=flatten, help=text, **extra, **kw)


def split_option(help: str = "Split whose segments are used, e.g. test.", default: Sequence[str] | None = ("test",),
                 decl: str = "--split", dest: str = "splits") -> Decorator:
    """``--split`` (repeatable / comma-separated): the splits a command reads; ``dest`` defaults to ``splits``."""
    return list_option(decl, dest, help=help, metavar="SPLIT", default=default)


def format_option(help: str = "Table format.") -> Decorator:
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default="md", show_default=True, help=help)


def out_file_option(help: str = "Write the table to this file instead of stdout.") -> Decorator:
    return click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help=help)


def seed_option(help: str = "Random seed.", default: int = 0) -> Decorator:
    return click.option("--seed", type=click.IntRange(min=0), default=default, show_default=True, help=help)


def device_option(default: str | None = "auto", help: str = "Device for models (auto: cuda when available).") -> Decorator:
    return click.option("--device", type=click.Choice(DEVICES), default=default, show_default=default is not None, help=help)


def threshold_option(help: str = "Two classes: a model is right when p(correct label) > threshold. More classes: when its argmax is the true label (the threshold must stay 0.5).") -> Decorator:
    return click.option("--threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True, help=help)


def bootstrap_option(help: str = "Bootstrap resamples for the confidence intervals (0: none).", default: int = 2000,
                     min: int = 0) -> Decorator:
    return click.option("--bootstrap", "n_boot", type=click.IntRange(min=min), default=default, show_default=True, help=help)


def ci_option(help: str = "Confidence level of the intervals.") -> Decorator:
    return click.option("--ci", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.95, show_default=True, help=help)


def correction_option(help: str = "Multiple-comparison correction within each family of tests.") -> Decorator:
    return click.option("--correction", type=click.Choice(CORRECTIONS), default="holm", show_default=True, help=help)


def task_option(help: str = "The annotation task (default: the store's only one).", **kw: Any) -> Decorator:
    return click.option("--task", help=help, **kw)


def scheme_option(help: str = "Which predictions: fixed (one split), crossfit (every segment, R repeats) or auto "
                  "(crossfit when every compared model has it).", choices: tuple[str, ...] = Scheme.CHOICES) -> Decorator:
    return click.option("--scheme", type=click.Choice(choices), default="auto", show_default=True, help=help)


#: --scheme of the commands that read quadrants of people as of models (quadrants, compare).
HUMAN_SCHEME_HELP = ("Which predictions: fixed (one split), crossfit (every segment, R repeats), human (people, not models: "
                     "human:audio, human:video against human:all from `ambiguity annotations import`) or auto "
                     "(crossfit when every compared model has it, else fixed, else human).")


def min_stability_option(help: str = "Crossfit: only segments whose modal quadrant holds in at least this share of repeats.") -> Decorator:
    return click.option("--min-stability", type=click.FloatRange(0, 1), default=None, metavar="SHARE", help=help)


def quadrant_options(split_help: str, human: bool = False) -> Decorator:
    """The options that choose a command's quadrants, in this order: ``--split`` (``split_help``, e.g.
    "Split whose segments are compared", then its default), ``--scheme`` (``human``: the human scheme too),
    ``--min-stability``, ``--threshold``."""
    group = (
        split_option(f"{split_help} (default: test on the fixed scheme, every labelled segment on crossfit).", default=None),
        scheme_option(HUMAN_SCHEME_HELP, Scheme.WITH_HUMAN) if human else scheme_option(), min_stability_option(), threshold_option(),
    )

    def apply(f: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(group):  # as if stacked above the function: the first ends up first in --help
            f = option(f)
        return f

    return apply


def quiet_option(help: str = "No progress output.") -> Decorator:
    return click.option("--quiet", is_flag=True, help=help)


def render(table: Any, fmt: str, *, caption: str | None = None, label: str | None = None, digits: int = 4,
           latex: dict[str, Any] | None = None) -> str:
    """``table`` as md/csv/json/latex text: a polars DataFrame, or a result object with
    ``to_markdown()``, ``to_latex()`` and ``to_polars()`` (its own Markdown/LaTeX, its long data
    for CSV and JSON)."""
    import polars as pl  # 0.4 s: the CLI's start-up stays quick for commands that print no table

    if fmt not in FORMATS:
        raise click.BadParameter(f"use one of {', '.join(FORMATS)}", param_hint="--format")
    if isinstance(table, pl.DataFrame):
        from ambiguity.tables import to_latex, to_markdown  # polars again (see above)

        if fmt == "md":
            return to_markdown(table, caption=caption, digits=digits)
        if fmt == "latex":
            return to_latex(table, caption=caption, label=label, digits=digits, **(latex or {}))
        df = table
    else:
        if fmt == "md":
            return table.to_markdown()
        if fmt == "latex":
            return table.to_latex(**({"label": label} if label else {}), **(latex or {}))
        df = table.to_polars()
    if fmt == "csv":
        return df.write_csv()
    return df.write_json() + "\n"


def render_many(tables: dict[str, Any], fmt: str, *, digits: int = 4) -> str:
    """Several titled tables in one text: Markdown sections, LaTeX tables one after another, CSV
    blocks each under a ``# title`` line, or one JSON object ``{title: rows}``."""
    if fmt == "json":
        parts = {name: json.loads(render(t, "json")) for name, t in tables.items()}
        return json.dumps(parts, indent=None) + "\n"
    if fmt == "csv":
        return "\n".join(f"# {name}\n{render(t, 'csv')}" for name, t in tables.items())
    if fmt == "md":
        return "\n".join(f"### {name}\n\n{render(t, 'md', digits=digits)}" for name, t in tables.items())
    return "\n".join(render(t, fmt, caption=name, digits=digits) for name, t in tables.items())


def emit(text: str, out: Path | None) -> None:
    """Print ``text``, or write it to ``out`` and say so."""
    if out:
        out.write_text(text)
        click.echo(f"wrote {out}")
    else:
        click.echo(text, nl=not text.endswith("\n"))
