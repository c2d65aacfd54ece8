"""The quadrant rule: which of red, green, blue, yellow a segment falls in, from two probabilities."""

from __future__ import annotations

import numpy as np

from ambiguity.errors import StatsError


def _probabilities(name: str, p) -> np.ndarray:
    a = np.asarray(p, dtype=np.float64)
    if a.ndim != 1:
        raise StatsError(f"{name} must be one-dimensional; got shape {a.shape}")
    bad = ~np.isfinite(a) | (a < 0) | (a > 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StatsError(f"{name} must hold probabilities in [0, 1]; position {i} is {a[i]!r} ({int(bad.sum())} bad in all)")
    return a


def assign_quadrants(p_unimodal, p_fusion, threshold: float = 0.5) -> np.ndarray:
    """The quadrant ("red" | "green" | "blue" | "yellow") of each segment.

    ``p_unimodal`` and ``p_fusion`` are each model's probability of the true
    label, aligned by segment. Right means ``p > threshold``: a value equal to
    the threshold counts as wrong.
    """
    pu = _probabilities("p_unimodal", p_unimodal)
    pf = _probabilities("p_fusion", p_fusion)
    if pu.shape != pf.shape:
        raise StatsError(f"p_unimodal has {pu.size} values and p_fusion {pf.size}: align them by segment first")
    if not (np.isfinite(threshold) and 0.0 <= threshold < 1.0):
        raise StatsError(f"threshold={threshold}: use a value in [0, 1)")
    u, f = pu > threshold, pf > threshold
    return np.select([u & ~f, ~u & f, u & f], ["red", "green", "blue"], default="yellow").astype(object)
