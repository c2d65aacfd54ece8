"""The quadrant rule: which of red, green, blue, yellow a segment falls in, from whether each model is right.

When is a model right? With two classes, when its probability of the true label
is above the threshold (0.5 by default: the same as "the argmax is the true
label", except an exact tie); ``--threshold`` moves that cut. With more classes
a model is right when its predicted label (the argmax) is the true one: p(true)
> 0.5 would call a right argmax at p = 0.4 wrong. The threshold has no meaning
there and is refused if changed. :func:`rule` says which rule was used, for
captions.
"""

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


def rule(n_classes: int, threshold: float = 0.5) -> str:
    """The rule that decides "right", in words (for captions and axis labels)."""
    if n_classes <= 2:
        return f"right means p(true label) > {threshold:g}"
    return f"right means the predicted label (argmax of {n_classes} classes) is the true one"


def check_threshold(n_classes: int, threshold: float) -> None:
    """A threshold other than 0.5 is refused with more than two classes, where right means the argmax."""
    if n_classes > 2 and threshold != 0.5:
        raise StatsError(f"threshold={threshold:g} applies to two classes; with {n_classes} classes a model is right "
                         "when its predicted label (argmax) is the true one: leave the threshold at 0.5")


def is_right(p_correct, predicted, label, n_classes: int, threshold: float = 0.5) -> np.ndarray:
    """Whether each prediction is right: p(true) > threshold with two classes, else predicted == label."""
    if n_classes <= 2:
        return _probabilities("p_correct", p_correct) > threshold
    check_threshold(n_classes, threshold)
    return np.asarray(predicted, dtype=object) == np.asarray(label, dtype=object)


def quadrants_from_right(u_right, f_right) -> np.ndarray:
    """The quadrant of each segment from whether the unimodal and the fusion model are right."""
    u, f = np.asarray(u_right, dtype=bool), np.asarray(f_right, dtype=bool)
    if u.shape != f.shape:
        raise StatsError(f"{u.size} unimodal and {f.size} fusion judgments: align them by segment first")
    return np.select([u & ~f, ~u & f, u & f], ["red", "green", "blue"], default="yellow").astype(object)
