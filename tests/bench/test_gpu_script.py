"""bench/gpu.py cannot rot: its CPU smoke run (tiny models) runs here and reports sane numbers.

The real run needs a GPU (`bench/gpu.py` on one H100/H200); CI never runs that.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_bench_smoke_on_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--device", "cpu", "--quick", "--json", str(out)],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert [m["model"] for m in res["models"]] == ["roberta-base", "hubert-base", "videomae-base"]
    for m in res["models"]:
        assert m["end_to_end_seg_s"] > 0 and m["forward_only_seg_s"] > 0 and m["prepare_ceiling_seg_s"] > 0
        assert m["bound"] in ("decoding (CPU side)", "compute (the model)")
        assert m["gpu_util"].startswith("n/a")  # no GPU sampled on a CPU run
    mini = res["minilm"]
    assert mini["ours_auto_sent_s"] > 0 and mini["sentence_transformers_sent_s"] > 0
    assert mini["sentence_transformers_dim"] == 384
    assert "| model (random weights) |" in r.stdout and "published anchor" in r.stdout
