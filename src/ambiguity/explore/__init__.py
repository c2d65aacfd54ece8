"""Explore ambiguous segments: a local web app, the ambiguity score, selection for annotation.

``ambiguity.explore.score`` (the score, :func:`rank`) and ``ambiguity.explore.select``
(committee disagreement, :func:`select`) need no web dependencies; the app
(``ambiguity.explore.app``) needs the ``annotate`` extra (starlette, uvicorn).
"""

from ambiguity.explore.score import COMPONENTS, DEFAULT_WEIGHTS, ScoreResult, ambiguity_scores, combine, rank
from ambiguity.explore.select import STRATEGIES, kl_to_consensus, select, vote_entropy

__all__ = [
    "COMPONENTS", "DEFAULT_WEIGHTS", "STRATEGIES", "ScoreResult", "ambiguity_scores", "combine", "kl_to_consensus",
    "rank", "select", "vote_entropy",
]
