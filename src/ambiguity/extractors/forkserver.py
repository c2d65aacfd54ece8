"""The fork server that pool workers fork from, started early with the extractor set up in it.

Standard library only: ``extract`` starts it (:func:`prestart`) before it imports numpy,
pyarrow or the store, so the server's imports and the extractor's set-up (openSMILE's
``Smile()``: about 0.6 s for both) run beside the parent's instead of after them, and every
worker forks ready to work, as openSMILE's own pool forks from its parent. The server is a
fresh interpreter that never loads Lance (not fork-safe).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from typing import Any

#: The environment variable that names the extractor the server builds (:func:`spec`).
PRELOAD_ENV = "AMBIGUITY_POOL_PRELOAD"


def context(module: str):
    """forkserver where there is one, else spawn (``AMBIGUITY_START_METHOD=spawn`` forces spawn).

    Both start workers from a fresh interpreter that never loaded Lance. The fork server is that
    interpreter, started once per run with the worker module and the extractor's ``module``
    imported; each worker is a fork of it, so the extractor's imports (openSMILE, Praat, dlib:
    0.3-0.5 s of CPU each) are paid once, not once per worker.
    """
    if "forkserver" not in mp.get_all_start_methods() or os.environ.get("AMBIGUITY_START_METHOD") == "spawn":
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    if module != "__main__":
        ctx.set_forkserver_preload(["ambiguity.extractors.worker", module])
    return ctx


def worker_env(workers: int, half: str) -> dict[str, str]:
    """What a worker's environment adds: one BLAS/OpenMP thread per core share."""
    if half == "prepare":  # decode workers leave the cores to the model
        return {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return {"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // workers))}


def spec(target: str, params: dict[str, Any]) -> str:
    """An extractor (``module:Class`` and its parameters) as one printable string."""
    import base64
    import pickle

    return base64.b64encode(pickle.dumps((target, params))).decode()


def build(text: str) -> tuple[type, dict[str, Any], Any] | None:
    """In the server: the extractor :func:`spec` names, built and set up; (class, param_dict, instance).

    None if anything fails: each worker then builds its own, where the error is reported as usual.
    """
    import base64
    import importlib
    import pickle

    try:
        target, params = pickle.loads(base64.b64decode(text))
        module, _, qualname = target.partition(":")
        cls: Any = importlib.import_module(module)
        for part in qualname.split("."):
            cls = getattr(cls, part)
        if getattr(cls, "kind", None) != "cpu":
            return None
        ex = cls(**params)
        ex.setup()
        return cls, ex.param_dict(), ex
    except Exception:
        return None


def prestart(target: str, params: dict[str, Any], workers: int) -> bool:
    """Start the fork server now, building the CPU extractor ``target`` (``module:Class``) with
    ``params`` in it for the workers it forks later; False where there is no fork server."""
    module = target.partition(":")[0]
    ctx = context(module)
    if ctx.get_start_method() != "forkserver" or module == "__main__" or running():
        return False
    from multiprocessing import forkserver

    ctx.set_forkserver_preload(["ambiguity.extractors.worker", module, "ambiguity.extractors.preload"])
    add = {k: v for k, v in worker_env(workers, "process").items() if k not in os.environ}
    add[PRELOAD_ENV] = spec(target, params)
    os.environ.update(add)  # the server inherits the environment it starts with
    try:
        forkserver.ensure_running()
    finally:
        for k in add:
            os.environ.pop(k, None)
    return True


def running() -> bool:
    """True if this process has a fork server that has not been stopped."""
    from multiprocessing import forkserver

    return getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None) is not None


def stop() -> None:
    """Stop this process's fork server, if one runs; at once, also while it is still setting up."""
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    pid = getattr(server, "_forkserver_pid", None)
    if pid is None:
        return
    try:  # closing its pipe (below) stops it only once it has finished its preload
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    stop_ = getattr(server, "_stop", None)  # closes its pipe, waits for it
    if callable(stop_):
        stop_()
