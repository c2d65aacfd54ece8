"""`make bench`: run every benchmark in bench/, print one table of ratios, update docs/benchmarks.md."""

from __future__ import annotations

import datetime
import importlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import OUT, ROOT, Row, emit, machine  # noqa: E402

BENCHES = ["peers", "startup", "extract_audio", "embed", "landmarks", "store_read", "stats", "memory", "ray_scaling", "attribute", "explore", "crossfit"]
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def main(names: list[str]) -> int:
    """Run the named benchmarks (default: all), then tabulate the latest result of every benchmark."""
    for name in [] if names == ["--table"] else names or BENCHES:
        print(f"== {name}", flush=True)
        mod = importlib.import_module(name)
        t = time.perf_counter()
        emit(name.removesuffix("_scaling"), mod.main())
        print(f"   ({time.perf_counter() - t:.0f} s)", flush=True)
    rows: list[Row] = []
    doc = ROOT / "docs" / "benchmarks.md"
    kept = _doc_rows(doc.read_text() if doc.exists() else "")
    lines_of: dict[str, list[str]] = {}
    for name in BENCHES:
        bench = name.removesuffix("_scaling")
        saved = OUT / f"{bench}.json"
        if saved.exists():
            got = [Row(**r) for r in json.loads(saved.read_text())]
            rows += got
            lines_of[bench] = [_line(r) for r in got]
        else:  # not run on this machine: its latest rows in the doc stay
            lines_of[bench] = kept.get(bench, [])
    lines = [
        f"Machine: {machine()}. Date: {datetime.date.today().isoformat()}. Each row is the latest result of its "
        "benchmark (bench/out/*.json; a benchmark not rerun keeps its rows from an earlier run, dated under "
        "Reading the table); run them on an otherwise idle machine. *Baseline* is what the ratio is "
        "measured against, in the same run; *share of ceiling* is the ratio over the best this machine "
        "allows for that workload (a warm pool of the bare calls), where measured.",
        "",
        "| benchmark | metric | ours | baseline | baseline is | ratio | goal | met | share of ceiling |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in BENCHES:
        lines += lines_of[name.removesuffix("_scaling")]
    table = "\n".join(lines)
    print("\n" + table)
    (OUT / "table.md").write_text(table + "\n")
    (OUT / "all.json").write_text(json.dumps([r.__dict__ for r in rows], indent=1))
    text = doc.read_text() if doc.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        doc.write_text(f"{head}{START}\n{table}\n{END}{tail}")
    return 0


def _line(r: Row) -> str:
    share = f"{r.ratio / r.ceiling:.0%} of {r.ceiling:.2f}" if r.ceiling else ""
    return (f"| {r.bench} | {r.metric} | {r.ours:.3f} {r.unit} | {r.baseline:.3f} {r.unit} | {r.peer or 'see metric'} "
            f"| {r.ratio:.2f} | {r.goal} | {'yes' if r.met() else 'no'} | {share} |")


def _doc_rows(text: str) -> dict[str, list[str]]:
    """The table rows now in docs/benchmarks.md by benchmark, in the current column layout."""
    if START not in text or END not in text:
        return {}
    out: dict[str, list[str]] = {}
    for line in text.split(START, 1)[1].split(END, 1)[0].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or cells[0] in ("benchmark", "") or set(cells[0]) <= {"-"}:
            continue
        if len(cells) == 7:  # the layout before the peer and ceiling columns
            cells = cells[:4] + ["see metric"] + cells[4:] + [""]
        out.setdefault(cells[0], []).append("| " + " | ".join(cells) + " |")
    return out


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
