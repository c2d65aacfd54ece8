"""What to train: the architectures, :class:`TrainConfig`, the models a run makes, and the network a
configuration builds.

Torch is imported only when a network is built, so a configuration can be made and
checked (by the CLI, the pipeline) without it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

from ambiguity.devices import check_device
from ambiguity.errors import ConfigError

if TYPE_CHECKING:
    import torch

ARCHS = ("logistic", "mlp", "fusion")


@dataclass(frozen=True)
class TrainConfig:
    """How to train one model. ``None`` means the architecture's default:
    epochs 10 for fusion (the paper) and 20 for probes; lr / max_lr 1e-4 / 1e-3
    for fusion (the paper) and 1e-3 / 1e-2 for probes."""

    arch: str = "logistic"
    epochs: int | None = None
    batch_size: int = 32
    lr: float | None = None
    max_lr: float | None = None
    weight_decay: float = 1e-3
    dropout: float = 0.3
    modality_dropout: float = 0.2
    latent: int = 256
    hidden: int = 512
    probe_hidden: int = 256
    seed: int = 0
    device: str = "auto"
    select: str = "loss"  # best epoch by lowest val "loss" or highest val "accuracy"
    threads: int | None = None  # CPU threads while training (default 1: the models are small)

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ConfigError(f"unknown architecture {self.arch!r}; choose one of {', '.join(ARCHS)}")
        if self.epochs is not None and self.epochs < 1:
            raise ConfigError(f"epochs={self.epochs}: train for at least one epoch")
        if self.batch_size < 2:
            raise ConfigError(f"batch_size={self.batch_size}: batch norm needs at least 2")
        if not 0 < self.start_lr <= self.peak_lr:
            raise ConfigError(f"need 0 < lr <= max_lr; got lr={self.start_lr}, max_lr={self.peak_lr}")
        if self.select not in ("loss", "accuracy"):
            raise ConfigError(f"select={self.select!r}: use 'loss' or 'accuracy'")
        check_device(self.device)

    @property
    def kind(self) -> str:
        return "fusion" if self.arch == "fusion" else "probe"

    @property
    def start_lr(self) -> float:
        return self.lr if self.lr is not None else (1e-4 if self.arch == "fusion" else 1e-3)

    @property
    def peak_lr(self) -> float:
        return self.max_lr if self.max_lr is not None else (1e-3 if self.arch == "fusion" else 1e-2)

    @property
    def n_epochs(self) -> int:
        return self.epochs if self.epochs is not None else (10 if self.arch == "fusion" else 20)


@dataclass(frozen=True)
class ModelSpec:
    """One model of a run: its name, the feature groups it reads (in input order) and how it is trained."""

    name: str
    groups: tuple[str, ...]
    cfg: TrainConfig


class ModelChoice(TypedDict, total=False):
    """Which models a run makes: the keyword arguments that ``train`` and ``crossfit`` share.

    ``unimodal`` (default True): one model per group, named after the group or by ``names`` (group -> name),
    of architecture ``unimodal_arch`` (default "logistic"); ``fusion`` (default True): one fusion model over
    all groups, named ``fusion_name`` (default "fusion"). ``config`` (default ``TrainConfig()``) supplies the
    shared settings (seed, device, epochs, ...); its ``arch`` is replaced as above.
    """

    unimodal: bool
    fusion: bool
    unimodal_arch: str
    fusion_name: str
    names: dict[str, str] | None
    config: TrainConfig | None


def plan_models(groups: Sequence[str], choice: ModelChoice) -> list[ModelSpec]:
    """The models ``choice`` asks for over ``groups`` (repeats dropped), unimodal ones first."""
    unknown = set(choice) - set(ModelChoice.__annotations__)
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    groups = tuple(dict.fromkeys(groups))
    unimodal, fusion = choice.get("unimodal", True), choice.get("fusion", True)
    if fusion and len(groups) < 2:
        raise ConfigError("a fusion model needs at least two feature groups (or train the unimodal models only)")
    if not unimodal and not fusion:
        raise ConfigError("nothing to train: both unimodal and fusion models are turned off")
    base = choice.get("config") or TrainConfig()
    names = choice.get("names") or {}
    specs = []
    if unimodal:
        cfg = dataclasses.replace(base, arch=choice.get("unimodal_arch", "logistic"))
        specs += [ModelSpec(names.get(g, g), (g,), cfg) for g in groups]
    if fusion:
        specs.append(ModelSpec(choice.get("fusion_name", "fusion"), groups, dataclasses.replace(base, arch="fusion")))
    return specs


def build_model(cfg: TrainConfig, input_dims: Sequence[int], n_classes: int) -> torch.nn.Module:
    """The untrained network ``cfg`` describes, for inputs of ``input_dims`` and ``n_classes`` classes."""
    from ambiguity.models.fusion import GatedAttentionFusion  # imports torch: 1.3 s CPU to import
    from ambiguity.models.probes import make_probe  # imports torch: 1.3 s CPU to import

    if cfg.arch == "fusion":
        return GatedAttentionFusion(
            input_dims, n_classes, latent=cfg.latent, hidden=cfg.hidden, dropout=cfg.dropout,
            modality_dropout=cfg.modality_dropout,
        )
    kw = {"hidden": cfg.probe_hidden, "dropout": cfg.dropout} if cfg.arch == "mlp" else {}
    return make_probe(cfg.arch, input_dims, n_classes, **kw)
