"""The gated attention fusion network: shapes, attention, gates, modality dropout, seeds, what it learns."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from synth import dataset

from ambiguity.errors import ConfigError
from ambiguity.models.fusion import GatedAttentionFusion
from ambiguity.models.spec import TrainConfig
from ambiguity.models.training import fit


def _inputs(dims, batch=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, d, generator=g) for d in dims]


@pytest.mark.parametrize("dims", [(8, 8, 8), (384, 25, 1), (5,)])
def test_shapes_with_unequal_widths(dims):
    torch.manual_seed(0)
    net = GatedAttentionFusion(dims, 3, latent=16, hidden=32).eval()
    out = net(_inputs(dims))
    assert out.logits.shape == (16, 3)
    assert out.attention.shape == (16, len(dims))
    assert out.gates.shape == (16, len(dims), 16)
    # Each modality has its own projection sized to its input.
    assert [p[0].in_features for p in net.project] == list(dims)


def test_attention_sums_to_one_and_gates_in_open_interval():
    torch.manual_seed(0)
    net = GatedAttentionFusion((6, 30, 2), 2, latent=16, hidden=32)
    for mode in (net.train, net.eval):
        mode()
        out = net(_inputs((6, 30, 2), batch=64))
        torch.testing.assert_close(out.attention.sum(1), torch.ones(64))
        assert (out.attention >= 0).all()
        assert ((out.gates > 0) & (out.gates < 1)).all()


def test_modality_dropout_only_in_training():
    torch.manual_seed(0)
    dims = (4, 4, 4)
    net = GatedAttentionFusion(dims, 2, latent=8, hidden=16, modality_dropout=0.5)
    x = _inputs(dims, batch=400)
    net.train()
    att = net(x).attention
    dropped = att == 0
    # About half of all (sample, modality) pairs are dropped, never all modalities of a sample.
    assert 0.35 < dropped.float().mean() < 0.6
    assert (~dropped).any(dim=1).all()
    net.eval()
    a1, a2 = net(x).attention, net(x).attention
    assert (a1 > 0).all()
    torch.testing.assert_close(a1, a2)


def test_no_modality_dropout_when_off_or_single_modality():
    torch.manual_seed(0)
    net = GatedAttentionFusion((4, 4), 2, latent=8, hidden=16, modality_dropout=0.0).train()
    assert (net(_inputs((4, 4), batch=200)).attention > 0).all()
    one = GatedAttentionFusion((4,), 2, latent=8, hidden=16, modality_dropout=0.9).train()
    torch.testing.assert_close(one(_inputs((4,), batch=50)).attention, torch.ones(50, 1))


def test_gradients_reach_every_modality():
    torch.manual_seed(0)
    dims = (3, 7)
    net = GatedAttentionFusion(dims, 2, latent=8, hidden=16, modality_dropout=0.0).train()
    loss = net(_inputs(dims, batch=8)).logits.sum()
    loss.backward()
    for p in net.project:
        assert p[0].weight.grad is not None and p[0].weight.grad.abs().sum() > 0


def test_bad_inputs_are_refused():
    with pytest.raises(ConfigError):
        GatedAttentionFusion([], 2)
    with pytest.raises(ConfigError):
        GatedAttentionFusion([4], 1)
    with pytest.raises(ConfigError):
        GatedAttentionFusion([4], 2, modality_dropout=1.0)
    net = GatedAttentionFusion([4, 5], 2, latent=8, hidden=16)
    with pytest.raises(ConfigError, match="expected shape"):
        net(_inputs((4, 6)))
    with pytest.raises(ConfigError, match="2 modalities"):
        net(_inputs((4,)))


def test_same_seed_same_results_other_seed_differs():
    ds = dataset(n=200, seed=3)
    cfg = TrainConfig(arch="fusion", epochs=3, seed=7, device="cpu")
    a, b = fit(ds, cfg), fit(ds, cfg)
    np.testing.assert_array_equal(a.probs, b.probs)
    np.testing.assert_array_equal(a.attention, b.attention)
    np.testing.assert_array_equal(a.p_correct_epochs, b.p_correct_epochs)
    c = fit(ds, dataclasses.replace(cfg, seed=8))
    assert not np.array_equal(a.probs, c.probs)


def test_attention_prefers_the_informative_modality():
    """One modality carries the label, the other is noise (see synth.synthetic).

    With n=1500 (test split ~225), over seeds 0-3 the fusion model's accuracy was 0 to 2.5 points
    below the logistic probe on the informative modality alone, with 0.56-0.89 of its attention there
    (run with -s to see this seed's numbers). "Within a few points" is asserted as <= 5.
    """
    ds = dataset(n=1500, seed=0)
    te = ds.index("test")
    fus = fit(ds, TrainConfig(arch="fusion", seed=0, device="cpu"))
    uni = fit(ds.subset(["info"]), TrainConfig(arch="logistic", seed=0, device="cpu"))
    att = fus.attention[te].mean(0)
    acc_f = float((fus.probs[te].argmax(1) == ds.y[te]).mean())
    acc_u = float((uni.probs[te].argmax(1) == ds.y[te]).mean())
    print(f"attention info {att[0]:.3f} noise {att[1]:.3f}; accuracy fusion {acc_f:.3f} unimodal {acc_u:.3f}")
    assert att[0] > att[1]
    assert abs(acc_f - acc_u) <= 0.05


def test_an_absent_input_never_reaches_the_output():
    """present=False leaves an input out exactly like keep=False; its values (even NaN) do not matter."""
    torch.manual_seed(0)
    net = GatedAttentionFusion([3, 4], 2, latent=8, hidden=16).eval()
    xs = [torch.randn(6, 3), torch.randn(6, 4)]
    present = torch.tensor([[1, 1], [1, 0], [0, 1], [1, 0], [1, 1], [0, 1]], dtype=torch.bool)
    with torch.no_grad():
        a = net(xs, present=present)
        junk = [x.clone() for x in xs]
        for j in range(2):
            junk[j][~present[:, j]] = float("nan")
        b = net(junk, present=present)
        c = net(xs, keep=present)
    assert torch.isfinite(b.logits).all()
    torch.testing.assert_close(a.logits, b.logits)
    torch.testing.assert_close(a.logits, c.logits)
    assert (a.attention[~present] == 0).all()
    with pytest.raises(ConfigError, match="at least one modality per row"):
        net(xs, present=torch.zeros(6, 2, dtype=torch.bool))


def test_modality_dropout_keeps_only_present_inputs():
    net = GatedAttentionFusion([3, 4, 2], 2, latent=8, hidden=16, modality_dropout=0.5).train()
    torch.manual_seed(1)
    present = torch.rand(2000, 3) < 0.6
    present[~present.any(1), 0] = True
    keep = net.keep_mask(2000, torch.device("cpu"), present)
    assert not (keep & ~present).any()  # an absent input is never kept
    assert keep.any(1).all()  # every sample keeps one of its present inputs
    assert (keep != present).any()  # and dropout still drops some present ones
