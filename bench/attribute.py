"""Exact modality Shapley values: 100k segments x 3 modalities vs one forward pass, vs a per-segment
Captum ShapleyValues loop, and peak RSS at 100k vs 10k segments.

The fusion network is the real one (random weights, eval mode) with the demo's input widths (MiniLM text
384, eGeMAPS audio 88, landmark video 136), latent 256, hidden 512, 2 classes; one torch thread for every
measurement. Forward baseline: ``model(xs)`` over the same rows in the same chunks (8192), inference mode.
Captum baseline: per segment, ``captum.attr.ShapleyValues`` on a wrapper whose inputs are the 3
modality-presence indicators (zero baseline) and which runs the model with those modalities kept (v(∅) =
the prior); it is measured on a subset and extrapolated per segment to 100k (a full loop would take hours).
Memory: each size runs in a fresh child process fed chunk by chunk; the parent samples the RSS of the
child's process tree with psutil every 10 ms.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import Row, emit, tree_peak  # noqa: E402

DIMS = (384, 88, 136)
PRIOR = np.array([0.5, 0.5])
CHUNK = 8192


def model():
    import torch

    from ambiguity.models.fusion import GatedAttentionFusion

    torch.manual_seed(0)
    return GatedAttentionFusion(DIMS, 2).eval()


def data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, d), dtype=np.float32) for d in DIMS], rng.integers(0, 2, n)


def forward(net, xs) -> tuple[float, float]:
    """(wall s, CPU s) of one forward pass over every row."""
    import torch

    t, c = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        for s in range(0, len(xs[0]), CHUNK):
            net([torch.from_numpy(x[s : s + CHUNK]) for x in xs])
    return time.perf_counter() - t, time.process_time() - c


def ours(net, xs, y) -> tuple[float, float]:
    from ambiguity.models.shapley import shapley_values

    t, c = time.perf_counter(), time.process_time()
    shapley_values(net, xs, y, PRIOR, chunk=CHUNK)
    return time.perf_counter() - t, time.process_time() - c


def captum_loop(net, xs, y, n: int) -> float:
    import torch
    from captum.attr import ShapleyValues

    t = time.perf_counter()
    for i in range(n):
        one = [torch.from_numpy(x[i : i + 1]) for x in xs]
        target = int(y[i])

        def f(ind, one=one, target=target):
            out = torch.empty(len(ind))
            with torch.no_grad():
                for k, row in enumerate(ind):
                    keep = (row > 0.5).unsqueeze(0)
                    out[k] = PRIOR[target] if not keep.any() else torch.softmax(net(one, keep=keep).logits, 1)[0, target]
            return out

        ShapleyValues(f).attribute(torch.ones(1, 3), baselines=torch.zeros(1, 3))
    return time.perf_counter() - t


CHILD = r"""
import json, sys
import numpy as np, torch
sys.path.insert(0, sys.argv[2])
torch.set_num_threads(1)
from attribute import model, PRIOR, DIMS, CHUNK
from ambiguity.models.shapley import iter_shapley, concat
n = int(sys.argv[1]); net = model()
def chunks():
    for s in range(0, n, CHUNK):
        rng = np.random.default_rng(s)
        k = min(CHUNK, n - s)
        yield [rng.standard_normal((k, d), dtype=np.float32) for d in DIMS], rng.integers(0, 2, k)
res = concat(list(iter_shapley(net, chunks(), PRIOR)), 3)
print(json.dumps({"n": int(res.phi.shape[0])}))
"""


def peak_rss(n: int) -> float:
    peak = tree_peak([sys.executable, "-c", CHILD, str(n), str(Path(__file__).parent)], every=0.01)
    assert json.loads(peak.stdout.strip().splitlines()[-1])["n"] == n
    return peak.mb


def main(n: int = 100_000, n_captum: int = 200, repeats: int = 3) -> list[Row]:
    import torch

    torch.set_num_threads(1)
    net = model()
    xs, y = data(n)
    ours(net, [x[:1000] for x in xs], y[:1000])  # warm-up
    t_fwd, t_ours = [], []
    for _ in range(repeats):  # alternate, median
        t_fwd.append(forward(net, xs))
        t_ours.append(ours(net, xs, y))
    fwd, mine = statistics.median(t[0] for t in t_fwd), statistics.median(t[0] for t in t_ours)
    fwd_cpu, mine_cpu = statistics.median(t[1] for t in t_fwd), statistics.median(t[1] for t in t_ours)
    cap = captum_loop(net, xs, y, n_captum)
    cap_full = cap / n_captum * n
    mine_per_seg = mine / n
    rss = {k: peak_rss(k) for k in (n // 10, n)}
    print(json.dumps({"forward_s": t_fwd, "ours_s": t_ours, "captum_s": cap, "captum_n": n_captum, "rss_mb": rss}))
    return [
        Row("attribute", f"exact Shapley, {n} seg x 3 modalities vs one forward pass (1 thread), wall", mine, fwd, mine / fwd, "<= 4"),
        Row("attribute", f"exact Shapley, {n} seg x 3 modalities vs one forward pass (1 thread), CPU time", mine_cpu, fwd_cpu,
            mine_cpu / fwd_cpu, "<= 4"),
        Row("attribute", f"per-segment Captum ShapleyValues loop vs ours ({n_captum} seg timed, extrapolated to {n})",
            mine, cap_full, cap_full / mine, ">= 20"),
        Row("attribute", "per segment: Captum loop / ours (same numbers, per segment)", mine_per_seg * 1e6,
            cap / n_captum * 1e6, (cap / n_captum) / mine_per_seg, ">= 20", "us"),
        Row("attribute", f"peak RSS of the child process tree, {n} vs {n // 10} segments (chunked)", rss[n], rss[n // 10],
            rss[n] / rss[n // 10], "<= 1.2", "MB"),
    ]


if __name__ == "__main__":
    emit("attribute", main(*(int(a) for a in sys.argv[1:])))
