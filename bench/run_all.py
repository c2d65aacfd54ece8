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

BENCHES = ["peers", "startup", "extract_audio", "embed", "landmarks", "store_read", "stats", "memory", "ray_scaling", "attribute", "explore"]
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
    for name in BENCHES:
        saved = OUT / f"{name.removesuffix('_scaling')}.json"
        if saved.exists():
            rows += [Row(**r) for r in json.loads(saved.read_text())]
    lines = [
        f"Machine: {machine()}. Date: {datetime.date.today().isoformat()}. Each row is the latest result of its "
        "benchmark (bench/out/*.json); run them on an otherwise idle machine. *Baseline* is what the ratio is "
        "measured against, in the same run; *share of ceiling* is the ratio over the best this machine "
        "allows for that workload (a warm pool of the bare calls), where measured.",
        "",
        "| benchmark | metric | ours | baseline | baseline is | ratio | goal | met | share of ceiling |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        share = f"{r.ratio / r.ceiling:.0%} of {r.ceiling:.2f}" if r.ceiling else ""
        lines.append(f"| {r.bench} | {r.metric} | {r.ours:.3f} {r.unit} | {r.baseline:.3f} {r.unit} | {r.peer or 'see metric'} "
                     f"| {r.ratio:.2f} | {r.goal} | {'yes' if r.met() else 'no'} | {share} |")
    table = "\n".join(lines)
    print("\n" + table)
    (OUT / "table.md").write_text(table + "\n")
    (OUT / "all.json").write_text(json.dumps([r.__dict__ for r in rows], indent=1))
    doc = ROOT / "docs" / "benchmarks.md"
    text = doc.read_text() if doc.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        doc.write_text(f"{head}{START}\n{table}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
