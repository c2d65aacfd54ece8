"""Probes on frozen features: logistic regression and a small MLP.

Both are torch modules trained by the same loop as the fusion model
(:mod:`ambiguity.models.training`), so every model gets the same seeds, the same
best-epoch selection on validation and the same training dynamics. The inputs
of several feature groups are concatenated.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ambiguity.errors import ConfigError
from ambiguity.models.fusion import FusionOutput

PROBES = ("logistic", "mlp")


class LogisticProbe(nn.Module):
    """Multinomial logistic regression: one linear layer; L2 comes from the optimiser's weight decay."""

    def __init__(self, input_dims: Sequence[int], n_classes: int):
        super().__init__()
        _check(input_dims, n_classes)
        self.input_dims = [int(d) for d in input_dims]
        self.linear = nn.Linear(sum(self.input_dims), n_classes)

    def forward(self, xs: Sequence[torch.Tensor]) -> FusionOutput:
        return FusionOutput(self.linear(torch.cat(list(xs), dim=1)))


class MLPProbe(nn.Module):
    """One hidden layer with ReLU and dropout."""

    def __init__(self, input_dims: Sequence[int], n_classes: int, *, hidden: int = 256, dropout: float = 0.3):
        super().__init__()
        _check(input_dims, n_classes)
        self.input_dims = [int(d) for d in input_dims]
        self.net = nn.Sequential(
            nn.Linear(sum(self.input_dims), hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes)
        )

    def forward(self, xs: Sequence[torch.Tensor]) -> FusionOutput:
        return FusionOutput(self.net(torch.cat(list(xs), dim=1)))


def make_probe(arch: str, input_dims: Sequence[int], n_classes: int, **kw) -> nn.Module:
    if arch == "logistic":
        return LogisticProbe(input_dims, n_classes)
    if arch == "mlp":
        return MLPProbe(input_dims, n_classes, **kw)
    raise ConfigError(f"unknown probe {arch!r}; choose one of {', '.join(PROBES)}")


def _check(input_dims: Sequence[int], n_classes: int) -> None:
    if not input_dims or any(int(d) < 1 for d in input_dims):
        raise ConfigError(f"a probe needs inputs of positive width; got widths {list(input_dims)}")
    if n_classes < 2:
        raise ConfigError(f"a probe needs at least two classes; got {n_classes}")
