"""Run the annotation app with uvicorn (127.0.0.1 unless told otherwise)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ambiguity.annotate.app import create_app
from ambiguity.stores.tables import ANNOTATIONS
from ambiguity.web.http import hosts_for

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore


def serve(store: FeatureStore, task: str, *, host: str = "127.0.0.1", port: int = 8765, **app_options: Any) -> None:
    """Serve the task until interrupted; compacts the annotations table on the way out.

    On a non-loopback ``host`` every Host header is answered (the app is then
    reachable from the network: put it behind a proxy with authentication).
    """
    import uvicorn  # the server only: creating the app (tests, embedding) does not need it

    app = create_app(store, task, allowed_hosts=app_options.pop("allowed_hosts", None) or hosts_for(host), **app_options)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        if ANNOTATIONS.exists(store):
            store.compact([ANNOTATIONS])
