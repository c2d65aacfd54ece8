"""The report's self-contained index.html: every table inline, every figure embedded as a data URI."""

from __future__ import annotations

import base64
import datetime
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl


@dataclass
class Section:
    """One part of the report: its files, or why it is missing (``note``) and whether that is an error."""

    key: str
    title: str
    files: list[Path] = field(default_factory=list)
    markdown: str = ""
    note: str = ""  # why the section is missing, and what to run
    error: bool = False


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em} h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.82em;margin:.6em 0} th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
.caption{font-size:.85em;color:#555;margin-bottom:1.2em} .note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5em 1em}
.error{background:#fdecea;border-left:4px solid #d93025;padding:.5em 1em} img{max-width:100%;border:1px solid #eee}
.files{font-size:.8em;color:#666} nav a{margin-right:1em;font-size:.85em}
"""


def _cell(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return "–" if v != v else (f"{v:.2e}" if v != 0 and abs(v) < 1e-4 else f"{v:.4f}")
    return html.escape(str(v))


def table_html(csv: Path) -> str:
    df = pl.read_csv(csv, infer_schema_length=10000)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in df.iter_rows())
    md = csv.with_suffix(".md")
    caption = md.read_text().strip().split("\n\n")[-1] if md.exists() else ""
    caption = "" if caption.startswith("|") else caption
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table><div class='caption'>{html.escape(caption)}</div>"


def image_html(png: Path) -> str:
    data = base64.b64encode(png.read_bytes()).decode()
    svg = png.with_suffix(".svg")
    link = f" (<a href='{svg.relative_to(png.parents[1])}'>SVG</a>)" if svg.exists() else ""
    return f"<p><img alt='{html.escape(png.stem)}' src='data:image/png;base64,{data}'></p><div class='files'>{png.name}{link}</div>"


def write_index(out: Path, title: str, subtitle: str, sections: Sequence[Section]) -> Path:
    """``out``/index.html: ``title``, a line ``subtitle`` (store, version, settings) and every section."""
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p class='files'>{html.escape(subtitle)} · {datetime.datetime.now().isoformat(timespec='minutes')}</p>"]
    parts.append("<nav>" + "".join(f"<a href='#{s.key}'>{html.escape(s.title.split(':')[0])}</a>" for s in sections) + "</nav>")
    for s in sections:
        parts.append(f"<h2 id='{s.key}'>{html.escape(s.title)}</h2>")
        if s.note:
            parts.append(f"<div class='{'error' if s.error else 'note'}'>{html.escape(s.note)}</div>")
        for f in s.files:
            if f.suffix == ".png":
                parts.append(image_html(f))
            elif f.suffix == ".csv":
                parts.append(table_html(f))
        files = [f for f in s.files if f.suffix in (".md", ".tex", ".svg")]
        if files:
            parts.append("<div class='files'>" + " · ".join(f"<a href='{f.relative_to(out)}'>{f.name}</a>" for f in files) + "</div>")
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{CSS}</style></head><body>{''.join(parts)}</body></html>"
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
