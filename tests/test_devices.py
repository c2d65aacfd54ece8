"""Device names: one check, one resolver (torch imported only when a device is resolved)."""

from __future__ import annotations

import pytest

from ambiguity.devices import check_device, resolve_device
from ambiguity.errors import ConfigError, UnavailableError


def test_check_device():
    for ok in ("auto", "cpu", "cuda", "cuda:1"):
        assert check_device(ok) == ok
    for bad in ("gpu", "cuda:", "cuda:x", "CPU"):
        with pytest.raises(ConfigError, match="choose auto, cpu or cuda"):
            check_device(bad)


def test_resolve_device():
    torch = pytest.importorskip("torch")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(UnavailableError, match="sees no CUDA GPU"):
            resolve_device("cuda")
