"""Device and precision names, and the one place a name becomes a ``torch.device``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ambiguity.errors import ConfigError, UnavailableError

if TYPE_CHECKING:
    import torch

Device = Literal["auto", "cpu", "cuda"]
DType = Literal["auto", "float32", "bfloat16", "float16"]
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")


def check_device(name: str) -> str:
    """``name`` if it is auto, cpu, cuda or cuda:N; a ConfigError otherwise."""
    if name in DEVICES or (name.startswith("cuda:") and name[5:].isdigit()):
        return name
    raise ConfigError(f"device {name!r}: choose auto, cpu or cuda (or cuda:N)")


def resolve_device(name: str) -> torch.device:
    """auto -> the GPU if torch sees one, else the CPU; cuda where there is none is an UnavailableError."""
    import torch

    check_device(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UnavailableError(f"device {name}: torch sees no CUDA GPU here; use cpu or auto", param="device")
    return torch.device(name)
