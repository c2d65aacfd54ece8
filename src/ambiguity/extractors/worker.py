"""What a spawned worker process runs: one initialiser, one task function.

Kept light on purpose: a spawn worker imports this module and the extractor's own
module, nothing of the store, the CLI or polars (see docs/benchmarks.md, start-up).
"""

from __future__ import annotations

import os
from typing import Any

from ambiguity.extractors.trace import trace, trace_spawned

_WORKER: Any = None
_HALF = "process"
#: A CPU extractor built and set up in the fork server (:mod:`.preload`): (class, param_dict, instance).
_READY: tuple[type, dict[str, Any], Any] | None = None


def init(cls: type, params: dict[str, Any], half: str, env: dict[str, str]) -> None:
    """Build the extractor once per worker: ``half`` is ``process`` (a CPU extractor,
    fully set up) or ``prepare`` (a model extractor's decode side only). A CPU extractor
    the fork server has already set up for the same parameters is used as it is."""
    global _WORKER, _HALF
    trace_spawned()
    trace("worker-init")
    for k, v in env.items():
        os.environ.setdefault(k, v)
    _HALF = half
    if half == "process" and _READY is not None and _READY[0] is cls and _READY[1] == params:
        _WORKER = _READY[2]
    else:
        _WORKER = cls(**params)
        if half == "prepare":
            setup_prepare(_WORKER)
        else:
            _WORKER.setup()
    trace("worker-ready")


def setup_prepare(ex: Any) -> None:
    """Load a model extractor's CPU-side state (tokenizer, feature extractor) once."""
    getattr(ex, "ensure_prepare", getattr(ex, "setup_prepare", lambda: None))()


def work(rows: list[dict[str, Any]]) -> list[Any]:
    """One batch of segment rows through this worker's half of the extractor."""
    from ambiguity.extractors.isolate import prepare_isolated, process_isolated
    from ambiguity.extractors.rows import segment_inputs

    assert _WORKER is not None, "worker.init did not run"
    fn = prepare_isolated if _HALF == "prepare" else process_isolated
    return fn(_WORKER, segment_inputs(rows))


def noop() -> int:
    """Submitted once per worker to start the pool early (while the parent plans)."""
    return os.getpid()
