"""The annotation study: a local web app (pass 1: the flagged modality; pass 2: the full clip).

Import :func:`create_app` / :func:`serve` from ``ambiguity.annotate.app`` and
``ambiguity.annotate.server`` (they need the ``annotate`` extra: starlette, uvicorn);
``ambiguity.annotate.records`` (the annotations table, importers) needs neither.
"""
