"""Figures 5 and 6: what is drawn matches the data per quadrant."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from matplotlib.colors import to_hex
from numpy.testing import assert_allclose

from ambiguity.constants import QUADRANT_COLOURS
from ambiguity.errors import StatsError
from ambiguity.report.fig_features import figure5, figure6, write_figure5, write_figure6
from ambiguity.stats.comparisons import compare_quadrant_frame


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


LONG = ["pitch_mean", "pitch_range_semitones", "speech_rate_syllables_per_s", "F0semitoneFrom27.5Hz_sustainedVowel_pctlrange0-2",
        "loudness_sma3_amean", "shimmer_local_db", "hnr_mean", "intensity_max"]


def _long_frame(seed=2):
    rng = np.random.default_rng(seed)
    quad = np.repeat(["red", "green", "blue"], [20, 18, 40])
    return pl.DataFrame({"segment_id": [f"s{i}" for i in range(len(quad))], "quadrant": quad.tolist(),
                         **{f: rng.normal(size=len(quad)) + (quad == "red") * 0.8 for f in LONG}})


def test_figure5_titles_do_not_overlap_as_rendered():
    """From the renderer's text bounding boxes: no title runs into another title or another panel,
    and none is wider than its own panel (long names and three pairs' p-values wrap)."""
    df = _long_frame()
    cmp = compare_quadrant_frame(df, df.select("segment_id", "quadrant"), columns=LONG)
    fig = figure5(df, LONG, comparison=cmp, ncols=4)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    axes = [ax for ax in fig.axes if ax.get_visible()]
    titles = [ax.title.get_window_extent(renderer) for ax in axes]
    frames = [ax.get_window_extent(renderer) for ax in axes]
    assert all(ax.get_title().count("p=") == 3 for ax in axes)  # every pair's p is still there
    for i, t in enumerate(titles):
        assert t.width <= frames[i].width + 0.5, f"title of {LONG[i]} is wider than its panel"
        for j, other in enumerate(titles):
            if i != j:
                assert not t.overlaps(other), f"titles of {LONG[i]} and {LONG[j]} overlap"
        for j, f in enumerate(frames):
            assert not t.overlaps(f), f"title of {LONG[i]} runs into panel {LONG[j]}"
    fig_box = fig.bbox
    assert all(fig_box.x0 <= t.x0 and t.x1 <= fig_box.x1 and t.y1 <= fig_box.y1 for t in titles)


AUS = ["AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12", "AU14", "AU15", "AU17", "AU20", "AU23", "AU25", "AU26", "AU45"]
NEVER = {"AU05_rate", "AU20_rate", "AU23_rate"}


def test_figure6_rows_of_sane_aspect_with_no_activations_marked(tmp_path):
    rng = np.random.default_rng(3)
    quad = np.repeat(["red", "green", "blue"], [20, 18, 40])
    cols = {f"{a}_rate": (np.zeros(len(quad)) if f"{a}_rate" in NEVER else rng.uniform(0, 0.6, len(quad))) for a in AUS}
    df = pl.DataFrame({"segment_id": [f"s{i}" for i in range(len(quad))], "quadrant": quad.tolist(), **cols})
    fig = figure6(df)
    assert len(fig.axes) == 2  # 17 AUs: rows of at most nine
    shown = [t.get_text() for ax in fig.axes for t in ax.get_xticklabels()]
    assert shown == [f"{a}_rate" for a in AUS]
    marked = set()
    for ax in fig.axes:
        labels = [t.get_text() for t in ax.get_xticklabels()]
        for t in ax.texts:
            if t.get_text() == "no activations":
                marked.add(labels[round(t.get_position()[0])])
    assert marked == NEVER
    # bars are the mean rates, row by row (second row: the AU at position 0 is AU14)
    second = fig.axes[1]
    red_bar = [p for p in second.patches if to_hex(p.get_facecolor(), keep_alpha=False) == QUADRANT_COLOURS["red"]][0]
    assert_allclose(red_bar.get_height(), df.filter(pl.col("quadrant") == "red")["AU14_rate"].mean())
    path = write_figure6(df, tmp_path)[0]
    from PIL import Image

    w, h = Image.open(path).size
    assert 1.0 <= w / h <= 2.5 and w <= 2000, (w, h)  # was 4432 x 570 for these 17 AUs
