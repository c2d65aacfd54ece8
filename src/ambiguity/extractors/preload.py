"""Imported by the fork server only (its preload list, :func:`ambiguity.extractors.forkserver.prestart`):
builds and sets up the run's CPU extractor once, so every worker forks from the server ready
to work (openSMILE's ``Smile()`` costs about 0.2 s; once per run instead of once per worker).
"""

from __future__ import annotations

import os

from ambiguity.extractors import forkserver, worker
from ambiguity.extractors.trace import trace, trace_spawned

_spec = os.environ.pop(forkserver.PRELOAD_ENV, None)
if _spec:
    trace_spawned("forkserver-spawned")
    worker._READY = forkserver.build(_spec)
    trace("forkserver-ready")
