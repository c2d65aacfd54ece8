"""Committee disagreement and the selection strategies, against their definitions
(McCallum and Nigam 1998, section 4) computed by hand here and with scipy.stats.entropy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import entropy

from ambiguity.errors import StatsError
from ambiguity.stats.select import kl_to_consensus, least_confidence, margin, select, vote_entropy


def _committee():
    # 4 members, 3 segments, 3 classes
    return np.array([
        [[0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.2, 0.3, 0.5]],
        [[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7]],
        [[0.7, 0.2, 0.1], [0.3, 0.3, 0.4], [0.3, 0.3, 0.4]],
        [[0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.25, 0.25, 0.5]],
    ])


def test_vote_entropy_by_hand():
    P = _committee()
    # votes: segment 0: 0,0,0,0; segment 1: 0,1,2,2; segment 2: 2,2,2,2
    h1 = -(0.25 * math.log(0.25) * 2 + 0.5 * math.log(0.5))
    np.testing.assert_allclose(vote_entropy(P), [0.0, h1 / math.log(3), 0.0], atol=1e-12)
    # two members of two classes that disagree: the maximum, 1
    assert vote_entropy(np.array([[[0.9, 0.1]], [[0.2, 0.8]]]))[0] == pytest.approx(1.0)
    # 3 of 4 votes for one class, 2 classes: -(.75 ln .75 + .25 ln .25) / ln 2
    four = np.array([[[0.9, 0.1]], [[0.8, 0.2]], [[0.7, 0.3]], [[0.1, 0.9]]])
    assert vote_entropy(four)[0] == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / math.log(2))


def test_kl_to_consensus_matches_scipy_entropy():
    P = _committee()
    mean = P.mean(axis=0)
    want = [np.mean([entropy(P[m, i], mean[i]) for m in range(4)]) for i in range(3)]  # scipy: KL(p || q) in nats
    np.testing.assert_allclose(kl_to_consensus(P), want, rtol=1e-12)
    same = np.repeat(P[:1], 3, axis=0)
    np.testing.assert_allclose(kl_to_consensus(same), 0.0, atol=1e-15)


def test_uncertainty_and_margin_by_hand():
    P = _committee()
    mean = P.mean(axis=0)
    np.testing.assert_allclose(least_confidence(P), 1 - mean.max(axis=1))
    s = np.sort(mean, axis=1)
    np.testing.assert_allclose(margin(P), s[:, -1] - s[:, -2])


def test_strategies_order():
    P = _committee()
    ids = ["a", "b", "c"]
    assert select(ids, P, 3, "disagreement")["segment_id"].to_list()[0] == "b"
    # ties in vote entropy (a and c: 0) are broken by the mean KL: c's members differ more than a's? check by value
    d = select(ids, P, 3, "disagreement")
    assert d["kl_consensus"].to_list()[1] >= d["kl_consensus"].to_list()[2]
    u = select(ids, P, 3, "uncertainty")["uncertainty"].to_list()
    assert u == sorted(u, reverse=True)
    m = select(ids, P, 2, "margin")
    assert m.height == 2 and m["margin"].to_list() == sorted(m["margin"].to_list())
    r1, r2 = select(ids, P, 3, "random", seed=1), select(ids[::-1], P[:, ::-1], 3, "random", seed=1)
    assert r1["segment_id"].to_list() == r2["segment_id"].to_list()  # the draw does not depend on input order
    assert select(ids, P, 3)["rank"].to_list() == [1, 2, 3]


@pytest.mark.parametrize(("args", "match"), [
    ((["a"], np.zeros((2, 1, 2)), 1, "disagreement"), "sum to 1"),
    ((["a"], np.full((2, 1, 2), np.nan), 1, "disagreement"), "finite"),
    ((["a"], np.full((2, 1, 1), 1.0), 1, "disagreement"), "classes >= 2"),
    ((["a", "b"], np.full((2, 1, 2), 0.5), 1, "disagreement"), "2 ids for 1"),
    ((["a"], np.full((2, 1, 2), 0.5), 0, "disagreement"), "budget"),
    ((["a"], np.full((2, 1, 2), 0.5), 1, "entropy"), "unknown strategy"),
])
def test_bad_input(args, match):
    with pytest.raises(StatsError, match=match):
        select(*args)
