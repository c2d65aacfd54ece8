"""Figure 2 at scale: above DENSITY_ABOVE points a panel is a per-bin density (no point markers),
each bin in the colour of the quadrant with most points there; the legend's counts are unchanged."""

from __future__ import annotations

import numpy as np
import polars as pl
from matplotlib.collections import PathCollection
from matplotlib.colors import to_rgba

import ambiguity.report.fig_quadrants as F
from ambiguity.constants import QUADRANT_COLOURS


def _frame(n: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    # the definition (paper, Figure 2): right means p(correct) > 0.5
    q = [{(True, False): "red", (False, True): "green", (True, True): "blue", (False, False): "yellow"}[(a > 0.5, b > 0.5)]
         for a, b in zip(x, y, strict=True)]
    return pl.DataFrame({"segment_id": [f"s{i}" for i in range(n)], "quadrant": q, "p_unimodal": x, "p_fusion": y})


def _legend(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def test_density_above_the_limit_same_counts(monkeypatch):
    df = _frame(3000)
    points = F.figure2({"text.m": df}, "fusion")
    assert any(isinstance(c, PathCollection) and len(c.get_offsets()) for ax in points.axes for c in ax.collections)
    monkeypatch.setattr(F, "DENSITY_ABOVE", 1000)
    monkeypatch.setattr(F, "DENSITY_BINS", 20)
    dense = F.figure2({"text.m": df}, "fusion")
    main = next(ax for ax in dense.axes if ax.images)
    assert not any(isinstance(c, PathCollection) and len(c.get_offsets()) for c in main.collections)
    assert _legend(dense) == _legend(points)  # counts per quadrant unchanged
    img = np.asarray(main.images[0].get_array())
    # bin (row 2, column 15): x in [0.75, 0.8), y in [0.1, 0.15): only red points can fall there
    assert np.allclose(img[2, 15, :3], to_rgba(QUADRANT_COLOURS["red"])[:3])
    assert np.allclose(img[17, 2, :3], to_rgba(QUADRANT_COLOURS["green"])[:3])
    # the most crowded bin is fully opaque; every bin holds points here, so none is transparent
    assert img[..., 3].max() == 1.0 and (img[..., 3] > 0).all()  # 3000 uniform points fill 400 bins


def _dynamics(n_easy: int, n_hard: int) -> pl.DataFrame:
    # two clumps: easy segments (low variability, high confidence, always right), hard ones (never right)
    n = n_easy + n_hard
    return pl.DataFrame({"model": ["m"] * n, "segment_id": [f"s{i}" for i in range(n)],
                         "variability": [0.05] * n_easy + [0.3] * n_hard, "confidence": [0.9] * n_easy + [0.2] * n_hard,
                         "correctness": [1.0] * n_easy + [0.0] * n_hard, "epochs": [5] * n})


def test_datamap_is_a_hexbin_above_the_limit_with_every_segment_counted(monkeypatch):
    from matplotlib.collections import PolyCollection

    dyn = _dynamics(1200, 1800)
    small = F.datamap(dyn, ["m"])
    assert any(isinstance(c, PathCollection) and len(c.get_offsets()) == 3000 for c in small.axes[0].collections)
    monkeypatch.setattr(F, "DENSITY_ABOVE", 2999)
    big = F.datamap(dyn, ["m"])
    ax = big.axes[0]
    assert not any(isinstance(c, PathCollection) and len(c.get_offsets()) for c in ax.collections)
    (hexes,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
    # one hexagon per clump, coloured by its mean correctness (mincnt=1: empty cells are not drawn)
    assert sorted(np.asarray(hexes.get_array()).tolist()) == [0.0, 1.0]
    assert ax.get_title() == "m (n = 3000, 5 epochs)"  # every segment counted: 1200 + 1800
    assert "hexagons: mean of their segments" in big.axes[-1].get_ylabel()  # the colour bar says what a colour is


def test_density_legend_and_title_count_every_segment(monkeypatch):
    # 2,000 red at (0.9, 0.1), 1,200 green at (0.1, 0.9), 500 blue at (0.9, 0.9), 300 yellow at (0.1, 0.1)
    n = {"red": 2000, "green": 1200, "blue": 500, "yellow": 300}
    at = {"red": (0.9, 0.1), "green": (0.1, 0.9), "blue": (0.9, 0.9), "yellow": (0.1, 0.1)}
    q = [k for k, v in n.items() for _ in range(v)]
    df = pl.DataFrame({"segment_id": [f"s{i}" for i in range(len(q))], "quadrant": q,
                       "p_unimodal": [at[k][0] for k in q], "p_fusion": [at[k][1] for k in q]})
    monkeypatch.setattr(F, "DENSITY_ABOVE", 3999)
    fig = F.figure2({"audio.m": df}, "fusion")
    assert any(ax.images for ax in fig.axes)  # 4,000 > 3,999: a density
    assert _legend(fig) == ["red 2000 (50%)", "green 1200 (30%)", "blue 500 (12%)", "yellow 300 (8%)"]
    assert any(ax.get_title() == "audio.m (n = 4000)" for ax in fig.axes)
