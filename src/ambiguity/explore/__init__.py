"""Explore ambiguous segments: a local web app over the store.

The statistics it shows live in ``ambiguity.stats`` (the ambiguity score and
:func:`~ambiguity.stats.rank` in ``stats.score``, committee selection in
``stats.select``); the app (``ambiguity.explore.app``) needs the ``annotate``
extra (starlette, uvicorn).
"""
