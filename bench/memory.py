"""Peak memory of an extraction at 10x the segments vs 1x, measured over the whole process tree.

The extraction (``ambiguity extract --extractor prosody --workers 2``) runs as a child of
this small parent, which builds nothing big itself: the test corpus is made by another
child first. While it runs, psutil samples the RSS of the extraction process and all its
descendants every 20 ms; the peak of their sum counts. (``ru_maxrss`` would carry the
peak of whichever process forked the child, e.g. one that had just generated the corpus.)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import ROOT, Row, emit, tree_peak  # noqa: E402

CLI = str(Path(sys.executable).with_name("ambiguity"))


def main(n: int = 150) -> list[Row]:
    tmp = Path(tempfile.mkdtemp())
    subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); from make_corpus import make; "
                    "make(__import__('pathlib').Path(sys.argv[2]), big=True)", str(ROOT / "tests" / "data" / "bad"), str(tmp)],
                   check=True)
    media = tmp / "two_hours.wav"
    out = {}
    for k in (n, 10 * n):
        man = tmp / f"m{k}.csv"
        rows = ["segment_id,media,start_s,end_s"] + [f"s{i},{media},{(i * 7.3) % 7100:.2f},{(i * 7.3) % 7100 + 0.5:.2f}" for i in range(k)]
        man.write_text("\n".join(rows) + "\n")
        store = str(tmp / f"store{k}")
        subprocess.run([CLI, "--store", store, "ingest", str(man)], check=True, capture_output=True)
        out[k] = tree_peak([CLI, "--store", store, "extract", "--extractor", "prosody", "--workers", "2",
                            "--batch-size", "8", "--quiet"])
        print(f"  {k} segments: peak of the tree {out[k].mb:.0f} MB (largest process {out[k].largest_mb:.0f} MB, "
              f"{out[k].processes} processes)", flush=True)
    return [Row("memory", f"peak RSS of the extraction tree (sampled), {10 * n} vs {n} prosody segments",
                out[10 * n].mb, out[n].mb, out[10 * n].mb / out[n].mb, "<= 1.2", "MB")]


if __name__ == "__main__":
    emit("memory", main())
