"""Committee disagreement and selection of segments to annotate (active learning).

The committee is the unimodal models and the fusion model. For one segment, with
``M`` members, ``C`` classes, member ``m``'s class probabilities ``p_m`` and
``V(c)`` the number of members whose predicted class is ``c``:

- **vote entropy** ``-sum_c V(c)/M log(V(c)/M)``, divided by ``log(min(M, C))``
  so it lies in [0, 1] (1: the votes are spread as evenly as they can be);
- **mean KL divergence to the consensus** ``1/M sum_m KL(p_m || p_bar)`` with
  ``p_bar = 1/M sum_m p_m`` (natural log; 0 when all members agree exactly).

Both are from McCallum and Nigam (1998), "Employing EM and pool-based active
learning for text classification" (ICML), section 4. Strategies:

- ``disagreement``: highest vote entropy first, ties broken by the mean KL;
- ``uncertainty``: least confident consensus first, ``1 - max_c p_bar(c)``;
- ``margin``: smallest gap between the consensus's two most probable classes first;
- ``random``: a seeded uniform draw.

Any number of classes; nothing here assumes two.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from ambiguity.errors import StatsError

STRATEGIES = ("disagreement", "uncertainty", "margin", "random")
COLUMNS = ("segment_id", "vote_entropy", "kl_consensus", "uncertainty", "margin")


def _check_probs(probs) -> np.ndarray:
    P = np.asarray(probs, dtype=np.float64)
    if P.ndim != 3 or P.shape[0] < 1 or P.shape[2] < 2:
        raise StatsError(f"committee probabilities must be (members, segments, classes >= 2); got shape {P.shape}")
    if not np.isfinite(P).all() or (P < 0).any():
        raise StatsError("committee probabilities must be finite and non-negative")
    s = P.sum(axis=2)
    if P.shape[1] and not np.allclose(s, 1.0, atol=1e-3):
        raise StatsError("each member's class probabilities must sum to 1 for every segment")
    return P / s[..., None] if P.shape[1] else P


def vote_entropy(probs) -> np.ndarray:
    """Vote entropy of each segment, in [0, 1] (see the module notes); ``probs`` is (M, n, C)."""
    P = _check_probs(probs)
    m, n, c = P.shape
    votes = P.argmax(axis=2)  # (M, n)
    counts = np.zeros((n, c))
    for k in range(m):
        counts[np.arange(n), votes[k]] += 1
    share = counts / m
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(share > 0, share * np.log(share), 0.0).sum(axis=1)
    top = np.log(min(m, c))
    return np.maximum(h / top, 0.0) if top > 0 else np.zeros(n)  # maximum: no -0.0


def kl_to_consensus(probs) -> np.ndarray:
    """Mean KL divergence of each member to the committee's mean distribution (nats)."""
    P = _check_probs(probs)
    mean = P.mean(axis=0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(P > 0, P * (np.log(P) - np.log(mean)), 0.0)
    return np.maximum(terms.sum(axis=2).mean(axis=0), 0.0)


def least_confidence(probs) -> np.ndarray:
    """``1 - max_c p_bar(c)`` of the committee's mean distribution."""
    return 1.0 - _check_probs(probs).mean(axis=0).max(axis=1)


def margin(probs) -> np.ndarray:
    """Gap between the two most probable classes of the committee's mean distribution."""
    top2 = np.sort(_check_probs(probs).mean(axis=0), axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def select(
    ids: Sequence[str], probs, budget: int, strategy: str = "disagreement", *, seed: int = 0
) -> pl.DataFrame:
    """The ``budget`` segments to annotate next, best first.

    Parameters
    ----------
    ids : one segment id per column of ``probs``.
    probs : (members, segments, classes) class probabilities of each committee member.
    budget : how many to pick (all of them if fewer are given).
    strategy : one of ``disagreement``, ``uncertainty``, ``margin``, ``random``.

    Returns
    -------
    polars.DataFrame with rank (1 = first), segment_id, vote_entropy, kl_consensus,
    uncertainty, margin; ties are broken by segment id, so the order is stable.
    """
    if strategy not in STRATEGIES:
        raise StatsError(f"unknown strategy {strategy!r}: use {', '.join(STRATEGIES)}")
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise StatsError(f"budget must be a positive integer, got {budget!r}")
    P = _check_probs(probs)
    ids = [str(i) for i in ids]
    if len(ids) != P.shape[1]:
        raise StatsError(f"{len(ids)} ids for {P.shape[1]} segments")
    df = pl.DataFrame({
        "segment_id": ids, "vote_entropy": vote_entropy(P), "kl_consensus": kl_to_consensus(P),
        "uncertainty": least_confidence(P), "margin": margin(P),
    })
    if strategy == "disagreement":
        df = df.sort(["vote_entropy", "kl_consensus", "segment_id"], descending=[True, True, False])
    elif strategy == "uncertainty":
        df = df.sort(["uncertainty", "segment_id"], descending=[True, False])
    elif strategy == "margin":
        df = df.sort(["margin", "segment_id"])
    else:
        order = np.random.default_rng(seed).permutation(df.height)
        df = df.sort("segment_id")[order.tolist()]
    df = df.head(int(budget))
    return df.with_columns(pl.int_range(1, df.height + 1, dtype=pl.Int64).alias("rank")).select("rank", *COLUMNS)
