"""Fixtures for the model tests; helpers live in synth.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # The test machine is shared: one torch thread avoids spin-waiting on busy cores.
    try:
        import torch
    except ImportError:  # the bare environment (`make test-bare`): only the predictions tests run there
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
