"""Cross-fitting cost: K=5 cross-fitting vs the same K fits run one by one; R=3 vs R=1; peak RSS R=3 vs R=1.

The baseline of the first ratio is what a user would write by hand: the same folds
(StratifiedGroupKFold), the same inner validation split and ``fit()`` called for every
model of every fold, with nothing written anywhere. Ours is ``crossfit()`` into a fresh
store (fold assignments, fit records and predictions written after every fold). Times
alternate ours / baseline and take the median of ``rounds``. Peak RSS is that of a fresh
child process per run, sampled over its process tree (``common.tree_peak``; ``ru_maxrss`` would
carry this parent's peak across fork and exec, which is what the first version of this
benchmark measured: 742 MB for both R=1 and R=3). The data: a synthetic store of 300
segments with three feature groups (384, 88 and 136 columns, the demo's widths), three
unimodal logistic probes and the fusion model, default epochs.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import ROOT, Row, emit, tree_peak  # noqa: E402

N, WIDTHS, GROUPS = 300, (384, 88, 136), ("text.g", "audio.g", "video.g")

MAKE = r"""
import sys, numpy as np
if len(sys.argv) > 2:  # a child process: argv[2] is tests/models (synth.py)
    sys.path.insert(0, sys.argv[2])
from synth import write_segments, write_vector_group
from ambiguity import open_store
def make(path, n, widths, groups):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    ids = [f"s{i:04d}" for i in range(n)]
    store = open_store(path)
    write_segments(store, ids, [f"c{k}" for k in y], ["train"] * n)
    for g, d, m in zip(groups, widths, ("text", "audio", "video")):
        centre = rng.normal(size=d) * 0.15
        write_vector_group(store, g, ids, (rng.normal(size=(n, d)) + np.outer(y, centre)).astype(np.float32), modality=m)
    return store
"""

CHILD = MAKE + r"""
import json, time
from ambiguity.models.crossfit import CrossfitConfig, crossfit
from ambiguity.models.spec import TrainConfig
repeats = int(sys.argv[3]); path = sys.argv[1]
N, WIDTHS, GROUPS = json.loads(sys.argv[4])
store = make(path, N, WIDTHS, GROUPS)
t = time.perf_counter()
crossfit(store, list(GROUPS), cv=CrossfitConfig(folds=5, repeats=repeats), config=TrainConfig(device="cpu"))
print(json.dumps({"seconds": time.perf_counter() - t}))
"""


def _by_hand(store) -> float:
    """The same K fits with fit() and nothing else: what cross-fitting costs without the store."""
    import dataclasses

    import numpy as np

    from ambiguity.models.crossfit import assign_folds, inner_validation
    from ambiguity.models.dataset import load_dataset
    from ambiguity.models.spec import TrainConfig
    from ambiguity.models.training import fit

    t = time.perf_counter()
    ds = load_dataset(store, list(GROUPS), need_split=False)
    groups = np.array(ds.segment_ids, dtype=object)
    folds = assign_folds(ds.y, groups, 5, 0)
    for k in range(5):
        tr = np.flatnonzero(folds != k)
        va = inner_validation(ds.y, groups, tr, 5, 0)
        split = np.where(folds == k, "test", "train").astype(object)
        split[va] = "val"
        view = dataclasses.replace(ds, split=np.asarray(split, dtype=str))
        for g in GROUPS:
            fit(view.subset([g]), TrainConfig(arch="logistic", device="cpu"))
        fit(view, TrainConfig(arch="fusion", device="cpu"))
    return time.perf_counter() - t


def _ours(store) -> float:
    from ambiguity.models.crossfit import CrossfitConfig, crossfit
    from ambiguity.models.spec import TrainConfig

    t = time.perf_counter()
    crossfit(store, list(GROUPS), cv=CrossfitConfig(folds=5, repeats=1), config=TrainConfig(device="cpu"))
    return time.perf_counter() - t


def _child(path: Path, repeats: int) -> dict:
    peak = tree_peak([sys.executable, "-c", CHILD, str(path), str(ROOT / "tests" / "models"), str(repeats),
                      json.dumps([N, WIDTHS, GROUPS])])
    return {**json.loads(peak.stdout.strip().splitlines()[-1]), "rss_mb": peak.mb}


def main(rounds: int = 3) -> list[Row]:
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(ROOT / "tests" / "models"))
    ns: dict = {}
    exec(MAKE, ns)  # noqa: S102  (the same data maker as the child processes)
    tmp = Path(tempfile.mkdtemp())
    # One-time imports (scikit-learn, torch's deterministic-algorithms machinery) are paid before timing.
    import sklearn.model_selection  # noqa: F401

    torch.use_deterministic_algorithms(torch.are_deterministic_algorithms_enabled())
    ours, base = [], []
    for i in range(rounds):
        store = ns["make"](tmp / f"o{i}", N, WIDTHS, GROUPS)
        for which in (("ours", "base") if i % 2 == 0 else ("base", "ours")):  # alternate the order
            (ours if which == "ours" else base).append(_ours(store) if which == "ours" else _by_hand(store))
        print(f"  round {i + 1}: crossfit {ours[-1]:.1f} s, fit() by hand {base[-1]:.1f} s", flush=True)
    one, three = [], []
    for i in range(max(1, rounds - 1)):
        one.append(_child(tmp / f"r1_{i}", 1))
        three.append(_child(tmp / f"r3_{i}", 3))
        print(f"  R=1 {one[-1]}, R=3 {three[-1]}", flush=True)
    o, b = statistics.median(ours), statistics.median(base)
    t1, t3 = statistics.median(x["seconds"] for x in one), statistics.median(x["seconds"] for x in three)
    m1, m3 = statistics.median(x["rss_mb"] for x in one), statistics.median(x["rss_mb"] for x in three)
    return [
        Row("crossfit", f"K=5 cross-fitting, {N} segments, 4 models, vs the same fits one by one", o, b, o / b, "<= 1.15",
            peer="the same fit() calls by hand, nothing stored"),
        Row("crossfit", "R=3 repeats vs R=1 (K=5), wall time", t3, t1, t3 / t1, "<= 3.3", peer="R=1"),
        Row("crossfit", "R=3 repeats vs R=1 (K=5), peak RSS", m3, m1, m3 / m1, "<= 1.2", "MB", peer="R=1"),
    ]


if __name__ == "__main__":
    emit("crossfit", main())
