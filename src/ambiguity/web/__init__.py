"""What both web apps (``ambiguity.annotate.app`` and ``ambiguity.explore.app``) stand on: security headers,
the Host check, JSON errors, static pages and assets (``web.http``) and segment clips cut for the browser
(``web.clips``). Needs the ``annotate`` extra (starlette) for ``web.http``; ``web.clips`` needs only PyAV."""
