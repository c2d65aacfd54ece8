"""Peak memory of an extraction run at 10x the segments vs 1x (nothing is held for the whole run)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import ROOT, Row, emit  # noqa: E402

CHILD = r"""
import json, resource, sys, tempfile
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from make_corpus import make
from ambiguity import open_store
from ambiguity.extractors.prosody import Prosody
from ambiguity.extractors.runner import run
from ambiguity.segments import load_manifest
n = int(sys.argv[1]); tmp = Path(sys.argv[2])
media = tmp / "two_hours.wav"
rows = ["segment_id,media,start_s,end_s"] + [f"s{i},{media},{(i * 7.3) % 7100:.2f},{(i * 7.3) % 7100 + 0.5:.2f}" for i in range(n)]
(tmp / f"m{n}.csv").write_text("\n".join(rows) + "\n")
store = open_store(tmp / f"store{n}")
store.upsert_segments(load_manifest(tmp / f"m{n}.csv"))
rep = run(store, Prosody(), workers=2, batch_size=8, progress=False)
self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"ok": rep.ok, "self_mb": self_kb / 1024, "child_mb": child_kb / 1024}))
"""


def main(n: int = 150) -> list[Row]:
    tmp = Path(tempfile.mkdtemp())
    sys.path.insert(0, str(ROOT / "tests" / "data" / "bad"))
    from make_corpus import make

    make(tmp, big=True)
    out = {}
    for k in (n, 10 * n):
        r = subprocess.run([sys.executable, "-c", CHILD, str(k), str(tmp), str(ROOT / "tests" / "data" / "bad")],
                           capture_output=True, text=True, check=True)
        out[k] = json.loads(r.stdout.strip().splitlines()[-1])
        assert out[k]["ok"] == k
    peak = {k: max(v["self_mb"], v["child_mb"]) for k, v in out.items()}
    print({k: {kk: round(vv, 1) for kk, vv in v.items()} for k, v in out.items()})
    return [Row("memory", f"peak RSS (largest process), {10 * n} vs {n} prosody segments", peak[10 * n], peak[n],
                peak[10 * n] / peak[n], "<= 1.2", "MB")]


if __name__ == "__main__":
    emit("memory", main())
