#!/usr/bin/env python
"""Check that every demo figure quoted in README.md and docs/*.md is one the demo printed.

The demo (`make demo`) writes demo-out/summary.json: its settings and figures as
strings, exactly as quoted. A quoted demo figure lives between the markers
``<!-- demo:begin -->`` and ``<!-- demo:end -->``; every number inside (integers,
decimals, exponents) must occur among the summary's strings, or the check fails.
Outside the markers the phrase "on the last run" (how the docs introduce demo
figures) is not allowed, so a figure cannot dodge the check by leaving its region.
One exception, named here: the CREMA-D human judgments (docs/annotation.md), which
the demo imports from a fixed public table (`ambiguity --store demo-out/crema-d
annotations human` reproduces them; they involve no model and no stitched data).

Usage: bin/check_demo_numbers.py [SUMMARY]  (default: demo-out/summary.json;
docs/demo-summary.json is the copy the docs were written from). Exit 1 on a problem.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- demo:begin -->", "<!-- demo:end -->"
NUMBER = re.compile(r"(?<![\w.])[-−+]?\d+(?:[.,]\d+)*(?:e[-+]?\d+)?(?![\w])", re.I)
LAST_RUN = re.compile(r"on the last run(?!\s*\(`ambiguity --store demo-out/crema-d)", re.I)


def _norm(token: str) -> str:
    return token.replace("−", "-").lstrip("+").replace(",", "")


def known_numbers(summary: dict) -> set[str]:
    """Every number token in the summary's settings and figures."""
    out: set[str] = set()
    for part in ("settings", "figures"):
        for v in summary.get(part, {}).values():
            out |= {_norm(t) for t in NUMBER.findall(str(v))}
    return out


def problems(text: str, summary: dict, name: str = "doc") -> list[str]:
    """What is wrong with one document: unknown numbers in a region, unclosed regions, stray demo figures."""
    known = known_numbers(summary)
    out = []
    outside = []
    pos = 0
    while True:
        b = text.find(BEGIN, pos)
        if b < 0:
            outside.append(text[pos:])
            break
        e = text.find(END, b)
        if e < 0:
            out.append(f"{name}: {BEGIN} without {END}")
            break
        outside.append(text[pos:b])
        region = text[b + len(BEGIN) : e]
        for tok in NUMBER.findall(region):
            if _norm(tok) not in known and _norm(tok).lstrip("-") not in known:
                line = text[: b].count("\n") + 1 + region[: region.find(tok)].count("\n")
                out.append(f"{name}:{line}: demo figure {tok!r} is not in the demo's summary.json")
        pos = e + len(END)
    for chunk in outside:
        for m in LAST_RUN.finditer(chunk):
            out.append(f"{name}: 'on the last run' outside a {BEGIN} region: {chunk[max(0, m.start() - 60) : m.end() + 40]!r}")
    return out


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def check(summary_path: Path) -> list[str]:
    summary = json.loads(summary_path.read_text())
    out = []
    for doc in documents():
        out += problems(doc.read_text(), summary, str(doc.relative_to(ROOT)))
    return out


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else ROOT / "demo-out" / "summary.json"
    if not path.exists():
        print(f"error: {path} does not exist: run `make demo` first", file=sys.stderr)
        return 1
    found = check(path)
    for p in found:
        print(p, file=sys.stderr)
    n = sum(doc.read_text().count(BEGIN) for doc in documents())
    print(f"demo figures: {n} region(s) checked against {path}: {'ok' if not found else f'{len(found)} problem(s)'}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
