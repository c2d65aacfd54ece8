"""The active-learning loop simulated on the demo set: which strategy reaches a given test accuracy with fewest labels?

The demo's labelled segments are split as the demo split them. The labels of the train split
are hidden; each seed starts from a seeded 10% of it. Every round the committee (the demo's
unimodal probes and the fusion model, refitted with their stored configurations on the
labelled part; the epoch is chosen on the val split, whose labels all strategies see) predicts
the rest of the train split, ``ambiguity.stats.select.select`` picks ``--per-round`` more by
each strategy, their labels are revealed, and the fusion model's test accuracy is recorded.

    .venv/bin/python bin/demo.py             # once: builds demo-out/store
    .venv/bin/python bench/active.py         # 5 seeds; --seeds N --per-round K --rounds R

Writes bench/out/active.json and docs/img/active-learning.png, and prints the Markdown
table that docs/explore.md quotes (mean and 95% t interval over seeds).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import OUT, ROOT, machine  # noqa: E402

STRATEGIES = ("disagreement", "uncertainty", "margin", "random")


def simulate(ds, members, strategy: str, seed: int, start: float, per_round: int, rounds: int) -> list[tuple[int, float]]:
    """(labels used, fusion test accuracy) after each round of one strategy and seed."""
    from ambiguity.stats.committee import committee_probs
    from ambiguity.stats.select import select

    split0 = ds.split.copy()
    pool = np.flatnonzero(split0 == "train")
    test = np.flatnonzero(split0 == "test")
    rng = np.random.default_rng(seed)
    labelled = set(rng.choice(pool, size=max(2, int(round(start * len(pool)))), replace=False).tolist())
    fusion = [i for i, m in enumerate(members) if len(m.groups) > 1][0]
    curve = []
    for r in range(rounds + 1):
        split = np.where(split0 == "train", "pool", split0)
        split[sorted(labelled)] = "train"
        cur = dataclasses.replace(ds, split=split)
        probs = committee_probs(cur, members)
        acc = float((probs[fusion][test].argmax(1) == ds.y[test]).mean())
        curve.append((len(labelled), acc))
        if r == rounds:
            break
        rest = np.array(sorted(set(pool.tolist()) - labelled))
        if len(rest) == 0:
            break
        pick = select([str(i) for i in rest], probs[:, rest, :], min(per_round, len(rest)), strategy, seed=seed * 1000 + r)
        labelled |= {int(i) for i in pick["segment_id"].to_list()}
    return curve


def t_interval(values: list[float], level: float = 0.95) -> tuple[float, float, float]:
    from scipy import stats

    a = np.asarray(values, float)
    m = float(a.mean())
    if len(a) < 2:
        return m, m, m
    h = float(stats.t.ppf(0.5 + level / 2, len(a) - 1) * a.std(ddof=1) / np.sqrt(len(a)))
    return m, m - h, m + h


def plot(results: dict, path: Path, n_seeds: int) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    style = {"disagreement": ("o", "-"), "uncertainty": ("s", "-"), "margin": ("x", "--"), "random": ("^", ":")}
    for s, rows in results.items():
        x = [r["labels"] for r in rows]
        ax.plot(x, [r["mean"] for r in rows], marker=style[s][0], ls=style[s][1], ms=4, label=s)
        ax.fill_between(x, [r["low"] for r in rows], [r["high"] for r in rows], alpha=0.15)
    ax.set_xlabel("labelled training segments")
    ax.set_ylabel("fusion model, test accuracy")
    ax.set_title(f"Active learning on the demo set (mean, 95% t interval over {n_seeds} seeds)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default=str(ROOT / "demo-out" / "store"))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--start", type=float, default=0.10)
    ap.add_argument("--per-round", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--plot-only", action="store_true", help="Redraw the figure from bench/out/active.json.")
    args = ap.parse_args(argv)
    if args.plot_only:
        saved = json.loads((OUT / "active.json").read_text())
        plot(saved["results"], ROOT / "docs" / "img" / "active-learning.png", saved["args"]["seeds"])
        return 0
    import torch

    from ambiguity import open_store
    from ambiguity.models.dataset import load_dataset
    from ambiguity.stats.committee import members_from_store

    torch.set_num_threads(1)
    store = open_store(args.store, create=False)
    members = members_from_store(store)
    groups = list(dict.fromkeys(g for m in members for g in m.groups))
    ds = load_dataset(store, groups)
    t0 = time.perf_counter()
    raw: dict[str, list[list[tuple[int, float]]]] = {s: [] for s in STRATEGIES}
    for seed in range(args.seeds):
        for s in STRATEGIES:
            raw[s].append(simulate(ds, members, s, seed, args.start, args.per_round, args.rounds))
            print(f"seed {seed} {s}: " + " ".join(f"{n}:{a:.3f}" for n, a in raw[s][-1]), flush=True)
    results = {}
    for s, curves in raw.items():
        rows = []
        for k in range(min(len(c) for c in curves)):
            m, lo, hi = t_interval([c[k][1] for c in curves])
            rows.append({"labels": int(np.mean([c[k][0] for c in curves])), "mean": m, "low": lo, "high": hi})
        results[s] = rows
    elapsed = time.perf_counter() - t0
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "active.json").write_text(json.dumps({
        "machine": machine(), "seconds": elapsed, "members": [m.name for m in members], "n": len(ds.y),
        "splits": {k: int((ds.split == k).sum()) for k in ("train", "val", "test")}, "args": vars(args),
        "results": results, "raw": raw,
    }, indent=1))
    plot(results, ROOT / "docs" / "img" / "active-learning.png", args.seeds)
    labels = [r["labels"] for r in results[STRATEGIES[0]]]
    print(f"\n{len(ds.y)} labelled segments ({', '.join(f'{k} {int((ds.split == k).sum())}' for k in ('train', 'val', 'test'))}); "
          f"committee {', '.join(m.name for m in members)}; {args.seeds} seeds; {elapsed:.0f} s on {machine()}\n")
    print("| labels | " + " | ".join(STRATEGIES) + " |")
    print("|---" * (len(STRATEGIES) + 1) + "|")
    for k, n in enumerate(labels):
        cells = [f"{results[s][k]['mean']:.3f} [{results[s][k]['low']:.3f}, {results[s][k]['high']:.3f}]" for s in STRATEGIES]
        print(f"| {n} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
