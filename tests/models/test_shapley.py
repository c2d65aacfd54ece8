"""Exact modality Shapley values of the fusion model, against references written from the definition and Captum."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from ambiguity.errors import ConfigError, ModelError
from ambiguity.models import shapley as A
from ambiguity.models.fusion import GatedAttentionFusion
from ambiguity.models.probes import LogisticProbe


def _net(dims=(5, 3, 4), classes=3, seed=0, double=True):
    torch.manual_seed(seed)
    net = GatedAttentionFusion(dims, classes, latent=8, hidden=16).eval()
    # Non-trivial batch-norm statistics, as after training.
    for mod in net.modules():
        if isinstance(mod, torch.nn.BatchNorm1d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.5, 0.5)
    return net.double() if double else net


def _inputs(dims, n=12, seed=1, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, d, generator=g, dtype=dtype) for d in dims]


def _value(net, xs, tidx, prior, keep_bits, kind="p"):
    """v(S) written from the definition: the model's masked forward; the class prior for S = ∅."""
    n = len(tidx)
    if not any(keep_bits):
        p = torch.as_tensor(prior, dtype=torch.float64)[tidx]
        return p if kind == "p" else torch.log(p) - torch.log1p(-p)
    keep = torch.tensor([list(keep_bits)] * n, dtype=torch.bool)
    with torch.no_grad():
        logp = torch.log_softmax(net(xs, keep=keep).logits.double(), dim=1)
    lt = logp[torch.arange(n), tidx]
    if kind == "p":
        return lt.exp()
    other = logp.clone()
    other[torch.arange(n), tidx] = -math.inf
    return lt - other.logsumexp(1)


def _permutation_shapley(net, xs, tidx, prior, kind="p"):
    """Reference: the mean marginal contribution of each modality over all M! orders (Shapley 1953)."""
    m = len(xs)
    phi = torch.zeros(len(tidx), m, dtype=torch.float64)
    orders = list(itertools.permutations(range(m)))
    for order in orders:
        bits = [False] * m
        prev = _value(net, xs, tidx, prior, bits, kind)
        for i in order:
            bits[i] = True
            cur = _value(net, xs, tidx, prior, bits, kind)
            phi[:, i] += cur - prev
            prev = cur
    return (phi / len(orders)).numpy()


PRIOR = np.array([0.5, 0.3, 0.2])


@pytest.mark.parametrize("kind", ["p", "logit"])
@pytest.mark.parametrize("dims", [(5, 3, 4), (2, 6), (3, 3, 2, 4)])
def test_exact_equals_the_permutation_definition(dims, kind):
    net = _net(dims)
    xs = _inputs(dims)
    tidx = np.arange(12) % 3
    res = A.shapley_values(net, xs, tidx, PRIOR, kind=kind)
    ref = _permutation_shapley(net, xs, torch.from_numpy(tidx), PRIOR, kind)
    np.testing.assert_allclose(res.phi, ref, atol=1e-10)
    # Efficiency, and v(N) is the ordinary forward pass with every modality.
    np.testing.assert_allclose(res.phi.sum(1), res.v_all - res.v_empty, atol=1e-6)
    full = _value(net, xs, torch.from_numpy(tidx), PRIOR, [True] * len(dims), kind).numpy()
    np.testing.assert_allclose(res.v_all, full, atol=1e-10)
    np.testing.assert_allclose(res.v_empty, PRIOR[tidx] if kind == "p" else np.log(PRIOR[tidx] / (1 - PRIOR[tidx])))


def test_float32_model_matches_the_definition_and_is_efficient():
    net = _net(double=False)
    xs = _inputs((5, 3, 4), dtype=torch.float32)
    tidx = np.arange(12) % 3
    res = A.shapley_values(net, xs, tidx, PRIOR, chunk=5)  # several chunks
    ref = _permutation_shapley(net, xs, torch.from_numpy(tidx), PRIOR)
    np.testing.assert_allclose(res.phi, ref, atol=1e-6)
    np.testing.assert_allclose(res.phi.sum(1), res.v_all - res.v_empty, atol=1e-6)


def test_equals_captum_shapley_values_on_presence_indicators():
    captum = pytest.importorskip("captum.attr")
    net = _net()
    xs = _inputs((5, 3, 4), n=6)
    tidx = torch.tensor([0, 1, 2, 0, 1, 2])

    ours = A.shapley_values(net, xs, tidx.numpy(), PRIOR)
    for k in range(6):
        one = [x[k : k + 1] for x in xs]

        def presence(ind, one=one, k=k):  # a row of modality-presence indicators -> v of segment k
            return torch.stack([_value(net, one, tidx[k : k + 1], PRIOR, [bool(b > 0.5) for b in r])[0] for r in ind])

        got = captum.ShapleyValues(presence).attribute(
            torch.ones(1, 3, dtype=torch.float64), baselines=torch.zeros(1, 3, dtype=torch.float64))
        # Captum accumulates its attributions in float32 (captum 0.9.0): agreement to float32 precision.
        np.testing.assert_allclose(got.numpy()[0], ours.phi[k], atol=1e-6)


def test_interactions_match_the_definition():
    net = _net((2, 3, 4, 2))
    xs = _inputs((2, 3, 4, 2), n=5)
    tidx = np.array([0, 1, 2, 0, 1])
    res = A.shapley_values(net, xs, tidx, PRIOR)
    m = 4
    t = torch.from_numpy(tidx)
    for i, j in itertools.combinations(range(m), 2):
        rest = [k for k in range(m) if k not in (i, j)]
        ref = np.zeros(5)
        for r in range(len(rest) + 1):
            for sub in itertools.combinations(rest, r):
                w = math.factorial(r) * math.factorial(m - r - 2) / math.factorial(m - 1)

                def v(extra, sub=sub):
                    bits = [k in sub or k in extra for k in range(m)]
                    return _value(net, xs, t, PRIOR, bits).numpy()

                ref += w * (v((i, j)) - v((i,)) - v((j,)) + v(()))
        np.testing.assert_allclose(res.interactions[:, i, j], ref, atol=1e-10)
        np.testing.assert_allclose(res.interactions[:, j, i], ref, atol=1e-10)
    assert np.isnan(res.interactions[:, 0, 0]).all()


def test_a_coalition_is_the_network_built_on_those_modalities_only():
    """v(S) from masking equals a fusion network built with only S's projections and gates (same weights)."""
    dims = (5, 3, 4)
    net = _net(dims)
    xs = _inputs(dims)
    for subset in ([0], [1, 2], [0, 2]):
        sub = GatedAttentionFusion([dims[i] for i in subset], 3, latent=8, hidden=16).double().eval()
        state = {}
        for k, v in net.state_dict().items():
            parts = k.split(".")
            if parts[0] in ("project", "gate"):
                if int(parts[1]) in subset:
                    state[".".join([parts[0], str(subset.index(int(parts[1]))), *parts[2:]])] = v
            else:
                state[k] = v
        sub.load_state_dict(state)
        with torch.no_grad():
            want = torch.softmax(sub([xs[i] for i in subset]).logits, 1)[:, 0].numpy()
        bits = [i in subset for i in range(3)]
        got = _value(net, xs, torch.zeros(12, dtype=torch.long), PRIOR, bits).numpy()
        np.testing.assert_allclose(got, want, atol=1e-12)
        cm = A.CoalitionModel(net, "p")
        z, s = cm.prepare(xs)
        fast = cm.values(z, s, torch.tensor([bits]), torch.zeros(12, dtype=torch.long))[0].numpy()[:, 0]
        np.testing.assert_allclose(fast, want, atol=1e-12)


def test_symmetry_two_identical_modalities_get_equal_phi():
    net = _net((4, 4, 3))
    with torch.no_grad():
        for mods in (net.project, net.gate):
            mods[1].load_state_dict(mods[0].state_dict())
    xs = _inputs((4, 4, 3))
    xs[1] = xs[0].clone()
    res = A.shapley_values(net, xs, np.arange(12) % 3, PRIOR)
    np.testing.assert_allclose(res.phi[:, 0], res.phi[:, 1], atol=1e-12)
    assert np.abs(res.phi[:, 0] - res.phi[:, 2]).max() > 1e-4  # not trivially all equal


def test_dummy_a_constant_never_attended_modality_gets_zero():
    """Modality 2 has constant features, an attention score of about -800, and on its own predicts the prior:
    it adds nothing to any coalition, so its phi is 0 (a dummy player)."""
    net = _net((4, 3, 2))
    L = 8
    with torch.no_grad():
        net.attn.weight.copy_(torch.eye(L, dtype=torch.float64))
        net.attn.bias.zero_()
        net.attn_v.weight.fill_(50.0)
        lin, bn = net.project[2]
        lin.weight.zero_()
        bn.weight.zero_()
        bn.bias.fill_(-10.0)
        net.gate[2].weight.zero_()
        net.gate[2].bias.fill_(30.0)  # gate ~ 1: z_2 = -10 everywhere
        z2 = torch.full((1, L), -10.0, dtype=torch.float64) * torch.sigmoid(torch.tensor(30.0, dtype=torch.float64))
        prior = torch.softmax(net.classifier(z2), 1)[0].numpy()
    xs = _inputs((4, 3, 2))
    res = A.shapley_values(net, xs, np.arange(12) % 3, prior)
    np.testing.assert_allclose(res.phi[:, 2], 0.0, atol=1e-9)
    assert np.abs(res.phi[:, :2]).max() > 1e-3
    np.testing.assert_allclose(res.phi.sum(1), res.v_all - res.v_empty, atol=1e-6)


def test_axioms_on_random_games():
    rng = np.random.default_rng(0)
    m = 5
    masks = A.coalition_masks(m)
    v = rng.normal(size=(20, 2**m))
    v[:, masks[:, 3]] = v[:, [k & ~(1 << 3) for k in range(2**m) if masks[k, 3]]]  # player 3 is a dummy
    phi = A.shapley_from_values(v)
    np.testing.assert_allclose(phi.sum(1), v[:, -1] - v[:, 0], atol=1e-12)
    np.testing.assert_allclose(phi[:, 3], 0.0, atol=1e-12)
    # Linearity: phi(a v + w) = a phi(v) + phi(w).
    w = rng.normal(size=v.shape)
    np.testing.assert_allclose(A.shapley_from_values(2 * v + w), 2 * phi + A.shapley_from_values(w), atol=1e-12)


def test_permutation_sampling_is_seeded_and_converges():
    dims = (3, 2, 4)
    net = _net(dims)
    xs = _inputs(dims)
    tidx = np.arange(12) % 3
    a = A.shapley_values(net, xs, tidx, PRIOR, method="permutation", n_permutations=40, seed=7)
    b = A.shapley_values(net, xs, tidx, PRIOR, method="permutation", n_permutations=40, seed=7)
    c = A.shapley_values(net, xs, tidx, PRIOR, method="permutation", n_permutations=40, seed=8)
    np.testing.assert_array_equal(a.phi, b.phi)
    np.testing.assert_array_equal(a.se, b.se)
    # Chunking draws the same orders; only the batch size of the matrix products changes (last bits).
    d = A.shapley_values(net, xs, tidx, PRIOR, method="permutation", n_permutations=40, seed=7, chunk=5)
    np.testing.assert_allclose(a.phi, d.phi, rtol=0, atol=1e-14)
    assert not np.array_equal(a.phi, c.phi)
    exact = A.shapley_values(net, xs, tidx, PRIOR)
    # Every order's marginals sum to v(N) - v(∅): efficiency holds for the estimate too.
    np.testing.assert_allclose(a.phi.sum(1), exact.v_all - exact.v_empty, atol=1e-10)
    z = np.abs(a.phi - exact.phi) / np.where(a.se > 0, a.se, np.inf)
    assert np.mean(z < 3) > 0.9
    assert a.interactions is None and a.method == "permutation"


def test_more_than_ten_modalities():
    dims = (1,) * 11
    net = _net(dims)
    xs = _inputs(dims, n=3)
    with pytest.raises(ConfigError, match="above the exact limit of 10"):
        A.shapley_values(net, xs, np.zeros(3, dtype=int), PRIOR)
    with pytest.raises(ConfigError, match="above the exact limit of 10"):
        A.shapley_values(net, xs, np.zeros(3, dtype=int), PRIOR, method="exact")
    res = A.shapley_values(net, xs, np.zeros(3, dtype=int), PRIOR, method="auto", n_permutations=8)
    assert res.method == "permutation" and res.phi.shape == (3, 11)
    np.testing.assert_allclose(res.phi.sum(1), res.v_all - res.v_empty, atol=1e-10)


def test_refusals():
    with pytest.raises(ModelError, match="cannot leave a modality out"):
        A.shapley_values(LogisticProbe([3], 2), [np.zeros((2, 3))], np.zeros(2, dtype=int), PRIOR[:2])
    with pytest.raises(ConfigError, match="no output for class 'x'"):
        A.parse_target("p:x", ["a", "b"])
    with pytest.raises(ConfigError, match="unknown target"):
        A.parse_target("loss", ["a", "b"])
    with pytest.raises(ConfigError, match="unknown method"):
        A.resolve_method("kernel", 3, None)
    with pytest.raises(ModelError, match="prior of 0 or 1"):
        A.empty_value(np.array([1.0, 0.0]), np.array([0]), "logit")


# -- players are feature groups; an absent player is no player ----------------------------------------
def _game_value(net, xs, tidx, prior, row, inputs_kept, kind="p"):
    """v of one segment when only ``inputs_kept`` (a set of input indices) are in: the masked forward, or
    the class prior when nothing is kept. Written from the definition, one segment at a time."""
    if not inputs_kept:
        p = float(prior[tidx[row]])
        return p if kind == "p" else math.log(p) - math.log1p(-p)
    keep = torch.tensor([[i in inputs_kept for i in range(len(xs))]], dtype=torch.bool)
    with torch.no_grad():
        logp = torch.log_softmax(net([x[row : row + 1] for x in xs], keep=keep).logits.double(), dim=1)[0]
    lt = float(logp[tidx[row]])
    return math.exp(lt) if kind == "p" else lt - float(torch.cat([logp[: tidx[row]], logp[tidx[row] + 1 :]]).logsumexp(0))


def _shapley_over_present(net, xs, tidx, prior, present, members):
    """Reference: the Shapley formula over the segment's present players only (absent ones are not in
    the game), each player holding ``members[p]`` inputs; NaN for an absent player."""
    n, P = len(tidx), len(members)
    out = np.full((n, P), np.nan)
    for row in range(n):
        live = [p for p in range(P) if any(present[row, i] for i in members[p])]
        k = len(live)

        def v(coalition, row=row):
            kept = {i for p in coalition for i in members[p] if present[row, i]}
            return _game_value(net, xs, tidx, prior, row, kept)

        for p in live:
            others = [q for q in live if q != p]
            total = 0.0
            for size in range(len(others) + 1):
                for S in itertools.combinations(others, size):
                    w = math.factorial(size) * math.factorial(k - size - 1) / math.factorial(k)
                    total += w * (v((*S, p)) - v(S))
            out[row, p] = total
    return out


def test_absent_players_are_no_players_and_efficiency_holds_over_the_present():
    dims = (5, 3, 4, 2)
    net = _net(dims)
    xs = _inputs(dims, n=10)
    rng = np.random.default_rng(3)
    present = rng.random((10, 4)) < 0.6
    present[np.arange(10), rng.integers(0, 4, 10)] = True  # every segment has at least one input
    present[0] = [True, False, False, False]  # a segment with one input: it alone explains v_all - v_empty
    for j, x in enumerate(xs):
        x[~torch.from_numpy(present[:, j])] = float("nan")  # an absent input's values must not matter
    tidx = np.arange(10) % 3
    res = A.shapley_values(net, xs, tidx, PRIOR, present=present)
    want = _shapley_over_present(net, [torch.nan_to_num(x) for x in xs], tidx, PRIOR, present, [(0,), (1,), (2,), (3,)])
    assert np.array_equal(np.isnan(res.phi), ~present)
    np.testing.assert_allclose(res.phi[present], want[present], atol=1e-10)
    assert res.efficiency_error().max() <= 1e-6
    assert np.array_equal(res.present, present)
    assert all(present[i, res.dominant[i]] for i in range(10))  # the dominant player is a present one
    assert np.isnan(res.interactions[~present]).all()
    np.testing.assert_allclose(res.phi[0, 0], res.v_all[0] - res.v_empty[0], atol=1e-12)


def test_pooled_players_hold_the_groups_of_one_modality():
    dims = (5, 3, 4)
    net = _net(dims)
    xs = _inputs(dims, n=8)
    pl_ = A.players(["text.minilm", "opensmile.egemaps", "prosody"], ["text", "audio", "audio"], pool=True)
    assert [(p.name, p.modality, p.group, p.inputs) for p in pl_] == [("text", "text", None, (0,)), ("audio", "audio", None, (1, 2))]
    ungrouped = A.players(["text.minilm", "opensmile.egemaps", "prosody"], ["text", "audio", "audio"])
    assert [p.name for p in ungrouped] == ["text.minilm", "opensmile.egemaps", "prosody"]
    present = np.ones((8, 3), bool)
    present[:3, 2] = False  # prosody absent: the audio player is still present through eGeMAPS
    present[3, 1:] = False  # no audio at all: the audio player is absent
    tidx = np.arange(8) % 3
    members = [p.inputs for p in pl_]
    res = A.shapley_values(net, xs, tidx, PRIOR, present=present, members=members)
    want = _shapley_over_present(net, xs, tidx, PRIOR, present, members)
    np.testing.assert_allclose(np.nan_to_num(res.phi, nan=9.0), np.nan_to_num(want, nan=9.0), atol=1e-10)
    assert np.isnan(res.phi[3, 1]) and not np.isnan(res.phi[:3, 1]).any()
    assert res.efficiency_error().max() <= 1e-6
    perm = A.shapley_values(net, xs, tidx, PRIOR, present=present, members=members, method="permutation", n_permutations=30)
    assert np.array_equal(np.isnan(perm.phi), np.isnan(want))
    assert perm.efficiency_error().max() <= 1e-9  # each sampled order sums to v_all - v_empty


def test_players_must_cover_the_inputs_once():
    net = _net((5, 3, 4))
    xs = _inputs((5, 3, 4), n=2)
    with pytest.raises(ConfigError, match="exactly once"):
        A.shapley_values(net, xs, np.zeros(2, dtype=int), PRIOR, members=[(0,), (0, 1)])
    with pytest.raises(ModelError, match="none of the model's inputs"):
        A.shapley_values(net, xs, np.zeros(2, dtype=int), PRIOR, present=np.zeros((2, 3), bool))
