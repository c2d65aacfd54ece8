"""Render polars tables as Markdown, LaTeX (booktabs) and CSV for papers and the report."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import polars as pl


def _fmt(v, digits: int) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        if v != 0 and abs(v) < 10 ** (-digits):
            return f"<{10 ** (-digits):.{digits}f}"
        return f"{v:.{digits}f}"
    return str(v)


def model_matrix(models: Sequence[str], cell: Callable[[int, int], str]) -> pl.DataFrame:
    """A square table for printing, a row and a column per model: ``cell(i, j)`` off the diagonal, "–" on it."""
    cols: dict[str, list[str]] = {"model": list(models)}
    for j, b in enumerate(models):
        cols[b] = ["–" if i == j else cell(i, j) for i in range(len(models))]
    return pl.DataFrame(cols)


def to_markdown(df: pl.DataFrame, *, caption: str | None = None, digits: int = 4) -> str:
    head = "| " + " | ".join(df.columns) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    rows = ["| " + " | ".join(_fmt(v, digits) for v in r) + " |" for r in df.iter_rows()]
    text = "\n".join([head, rule, *rows])
    return f"{text}\n\n{caption}\n" if caption else text + "\n"


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(s: str) -> str:
    return "".join(_LATEX_ESCAPES.get(c, c) for c in s)


def to_latex(df: pl.DataFrame, *, caption: str | None = None, label: str | None = None, digits: int = 4, raw_columns: tuple[str, ...] = ()) -> str:
    """A booktabs table; cells of ``raw_columns`` are already LaTeX (e.g. ``$\\mu_{red} > \\mu_{blue}$``)."""
    align = "".join("r" if dt.is_numeric() else "l" for dt in df.dtypes)
    lines = [r"\begin{table}[t]", r"\centering", rf"\begin{{tabular}}{{{align}}}", r"\toprule"]
    lines.append(" & ".join(latex_escape(c) for c in df.columns) + r" \\")
    lines.append(r"\midrule")
    for r in df.iter_rows():
        cells = [(_fmt(v, digits) if c in raw_columns else latex_escape(_fmt(v, digits))) for c, v in zip(df.columns, r, strict=True)]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        lines.append(rf"\caption{{{latex_escape(caption)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"
