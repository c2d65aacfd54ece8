"""The gated attention fusion model of the paper (its Appendix A.2).

Per modality ``m`` with input ``x_m`` (any width):

    h_m = BatchNorm(W_m x_m + b_m)                 projection to a shared latent (256)
    g_m = sigmoid(U_m h_m + c_m)                   a gate per modality, element-wise in (0, 1)
    z_m = g_m * h_m
    s_m = v . tanh(A z_m + a)                      additive attention score
    alpha = softmax_m(s_m)                         weights over modalities, sum to 1
    z = sum_m alpha_m z_m
    logits = MLP(z)                                3 layers, hidden 512, BN, ReLU, dropout 0.3

Modality dropout (training only): each modality of each sample is dropped
with probability ``modality_dropout``; a dropped modality is left out of the
softmax (its weight is 0) and at least one modality per sample is always
kept. With one modality the same network is the paper's unimodal model, and
modality dropout does nothing.

Missing inputs: ``present`` (B, M) bool says which inputs a sample has (a
segment without a video track has no landmarks). An absent input is left out
of the softmax exactly like a dropped one, in training and in prediction, so
the fusion model trains and predicts on every segment that has at least one
input; its (placeholder) values never reach the output.

The paper also names "max pooling" in its classifier without saying over
what; the issue this module implements specifies the weighted sum, which is
what is built here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ambiguity.errors import ConfigError


@dataclass
class FusionOutput:
    """logits (B, C); attention (B, M), rows sum to 1; gates (B, M, latent) in (0, 1).

    Probes return the same object with ``attention`` and ``gates`` None.
    """

    logits: torch.Tensor
    attention: torch.Tensor | None = None
    gates: torch.Tensor | None = None


class GatedAttentionFusion(nn.Module):
    """Gated attention fusion over ``len(input_dims)`` modalities of unequal widths."""

    def __init__(
        self,
        input_dims: Sequence[int],
        n_classes: int,
        *,
        latent: int = 256,
        hidden: int = 512,
        dropout: float = 0.3,
        modality_dropout: float = 0.2,
    ):
        super().__init__()
        dims = [int(d) for d in input_dims]
        if not dims or any(d < 1 for d in dims):
            raise ConfigError(f"fusion needs at least one modality with a positive width; got widths {dims}")
        if n_classes < 2:
            raise ConfigError(f"fusion needs at least two classes; got {n_classes}")
        if not 0.0 <= modality_dropout < 1.0:
            raise ConfigError(f"modality_dropout={modality_dropout}: use a value in [0, 1)")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout={dropout}: use a value in [0, 1)")
        self.input_dims = dims
        self.modality_dropout = float(modality_dropout)
        self.project = nn.ModuleList(nn.Sequential(nn.Linear(d, latent), nn.BatchNorm1d(latent)) for d in dims)
        self.gate = nn.ModuleList(nn.Linear(latent, latent) for _ in dims)
        self.attn = nn.Linear(latent, latent)
        self.attn_v = nn.Linear(latent, 1, bias=False)
        self.classifier = nn.Sequential(
            nn.Linear(latent, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )

    def keep_mask(self, batch: int, device: torch.device, present: torch.Tensor | None = None) -> torch.Tensor:
        """(B, M) bool: which modalities each sample keeps: its present ones (all by default), minus
        those modality dropout drops in training; a sample keeps at least one present modality."""
        m = len(self.input_dims)
        have = torch.ones(batch, m, dtype=torch.bool, device=device) if present is None else present.to(torch.bool)
        if not self.training or self.modality_dropout == 0.0 or m == 1:
            return have
        keep = (torch.rand(batch, m, device=device) >= self.modality_dropout) & have
        # A sample that lost every modality keeps one of its present ones, chosen at random.
        none = (~keep.any(dim=1)).nonzero(as_tuple=True)[0]
        if len(none):
            weights = have[none].float()
            pick = torch.multinomial(weights, 1).squeeze(1)
            keep[none, pick] = True
        return keep

    def encode(self, xs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-modality gated latents z (B, M, L), attention scores (B, M) and gates (B, M, L).

        None of these depends on which modalities are kept: only :meth:`fuse` does.
        """
        if len(xs) != len(self.input_dims):
            raise ConfigError(f"fusion built for {len(self.input_dims)} modalities got {len(xs)} inputs")
        for i, (x, d) in enumerate(zip(xs, self.input_dims, strict=True)):
            if x.dim() != 2 or x.shape[1] != d:
                raise ConfigError(f"modality {i}: expected shape (batch, {d}), got {tuple(x.shape)}")
        h = torch.stack([p(x) for p, x in zip(self.project, xs, strict=True)], dim=1)  # (B, M, L)
        g = torch.stack([torch.sigmoid(gate(h[:, i])) for i, gate in enumerate(self.gate)], dim=1)
        z = g * h
        scores = self.attn_v(torch.tanh(self.attn(z))).squeeze(-1)  # (B, M)
        return z, scores, g

    def attention(self, scores: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Softmax of the scores over the kept modalities only; a left-out modality gets weight 0.

        This is how modality dropout leaves a modality out in training, and how
        :mod:`ambiguity.models.shapley` evaluates a coalition of modalities.
        """
        return torch.softmax(scores.masked_fill(~keep, float("-inf")), dim=-1)

    def forward(self, xs: Sequence[torch.Tensor], keep: torch.Tensor | None = None,
                present: torch.Tensor | None = None) -> FusionOutput:
        """``keep`` (B, M) bool leaves modalities out explicitly (each row keeps at least one);
        by default modality dropout decides in training among the ``present`` (B, M) modalities
        (default: all), and every present modality is kept otherwise."""
        z, scores, g = self.encode(xs)
        if present is not None and (present.shape != scores.shape or not bool(present.any(dim=1).all())):
            raise ConfigError(f"present must be a ({z.shape[0]}, {len(self.input_dims)}) bool mask with at least one modality per row")
        if keep is None:
            keep = self.keep_mask(z.shape[0], z.device, present)
        elif keep.shape != scores.shape or not bool(keep.any(dim=1).all()):
            raise ConfigError(f"keep must be a ({z.shape[0]}, {len(self.input_dims)}) bool mask keeping at least one modality per row")
        keep = keep.to(torch.bool)
        alpha = self.attention(scores, keep)
        # a left-out input weighs 0, but its latent may be non-finite (0 * NaN is NaN): zero it
        fused = (alpha.unsqueeze(-1) * torch.where(keep.unsqueeze(-1), z, 0.0)).sum(dim=1)
        return FusionOutput(self.classifier(fused), alpha, g)
