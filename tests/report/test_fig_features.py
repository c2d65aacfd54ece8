"""Figures 5 and 6: what is drawn matches the data per quadrant."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from matplotlib.colors import to_hex
from numpy.testing import assert_allclose

from ambiguity.errors import StatsError
from ambiguity.report.fig_boundary import QUADRANT_COLOURS
from ambiguity.report.fig_features import figure5, figure6, write_figure5, write_figure6
from ambiguity.stats.compare import compare_quadrant_frame


def _frame(seed=0):
    rng = np.random.default_rng(seed)
    quad = np.repeat(["red", "green", "blue", "yellow"], [15, 12, 40, 8])
    n = len(quad)
    shift = (quad == "red") * 0.3
    return pl.DataFrame(
        {"segment_id": [f"s{i}" for i in range(n)], "quadrant": quad.tolist(),
         "pitch_mean": rng.normal(size=n) + 2 * shift, "intensity_max": rng.normal(60, 5, n),
         "AU04_rate": np.clip(rng.uniform(0, 0.5, n) + shift, 0, 1), "AU12_rate": rng.uniform(0, 1, n), "AU45_c": rng.uniform(0, 1, n)}
    )


def test_figure5_boxes_per_feature_and_quadrant(tmp_path):
    df = _frame()
    cmp = compare_quadrant_frame(df, df.select("segment_id", "quadrant"), columns=["pitch_mean", "intensity_max"])
    fig = figure5(df, ["pitch_mean", "intensity_max"], comparison=cmp, ncols=2)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 2
    assert axes[0].get_title().startswith("pitch_mean\nred/blue p=")
    labels = [t.get_text() for t in axes[0].get_xticklabels()]
    assert labels == ["red\n(n=15)", "green\n(n=12)", "blue\n(n=40)"]
    # box colours follow the quadrants; each mean marker sits at the quadrant's mean
    boxes = [p for p in axes[0].patches]
    assert [to_hex(b.get_facecolor(), keep_alpha=False) for b in boxes] == [QUADRANT_COLOURS[q] for q in ("red", "green", "blue")]
    means = [ln.get_ydata()[0] for ln in axes[0].lines if ln.get_marker() == "D"]
    ref = [df.filter(pl.col("quadrant") == q)["pitch_mean"].mean() for q in ("red", "green", "blue")]
    assert_allclose(means, ref)
    paths = write_figure5(df, tmp_path, columns="^(pitch|intensity)")
    assert all(p.exists() and p.stat().st_size > 1000 for p in paths)


def test_figure6_bars_are_mean_rates(tmp_path):
    df = _frame(1)
    fig = figure6(df)  # default columns: *_rate
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["AU04_rate", "AU12_rate"]
    bars = ax.patches
    assert len(bars) == 2 * 3
    for i, q in enumerate(("red", "green", "blue")):
        for j, au in enumerate(("AU04_rate", "AU12_rate")):
            bar = bars[i * 2 + j]
            assert to_hex(bar.get_facecolor(), keep_alpha=False) == QUADRANT_COLOURS[q]
            assert_allclose(bar.get_height(), df.filter(pl.col("quadrant") == q)[au].mean())
    cmp = compare_quadrant_frame(df, df.select("segment_id", "quadrant"), columns="_rate$")
    fig = figure6(df, comparison=cmp)
    stars = [t for t in fig.axes[0].texts if t.get_text() == "*"]
    n_sig = len({f for c in cmp.comparisons for f in c.significant()["feature"].to_list()})
    assert n_sig >= 1  # AU04 is shifted in red
    assert len(stars) == n_sig
    paths = write_figure6(df, tmp_path, columns=["AU04_rate", "AU12_rate", "AU45_c"])
    assert [p.suffix for p in paths] == [".png", ".svg"]


def test_bad_input():
    df = _frame()
    with pytest.raises(StatsError, match="no quadrant column"):
        figure5(df.drop("quadrant"))
    with pytest.raises(StatsError, match="unknown quadrant"):
        figure6(df, quadrants=("red", "purple"))
