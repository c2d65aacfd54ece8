"""Statistics over features, predictions and annotations; none of it needs torch or matplotlib.

The functions most analyses start from are exported here::

    from ambiguity.stats import compare, compare_quadrants, quadrants, boundary, agreement

No exported name is also a module's name: the modules are ``comparisons``,
``quadrant_tables``, ``boundary_tests``, ``interrater`` and so on, so
``ambiguity.stats.compare`` is always the function.
"""

from __future__ import annotations

from ambiguity.stats.assign import assign_quadrants
from ambiguity.stats.boundary_store import boundary
from ambiguity.stats.boundary_tests import boundary_arrays
from ambiguity.stats.comparisons import compare, compare_quadrant_frame, compare_quadrants
from ambiguity.stats.interrater import AgreementResult, agreement, cohen_kappa, fleiss, krippendorff_alpha
from ambiguity.stats.multitest import adjust
from ambiguity.stats.quadrant_tables import (
    QuadrantResult,
    disagreement,
    load_quadrants,
    performance,
    quadrant_stability,
    quadrants,
    table1,
    table2,
)
from ambiguity.stats.results import BoundaryResult, ComparisonResult, QuadrantComparison
from ambiguity.stats.score import COMPONENTS, DEFAULT_WEIGHTS, ScoreResult, ambiguity_scores, combine, rank
from ambiguity.stats.select import STRATEGIES, kl_to_consensus, select, vote_entropy

__all__ = [
    "COMPONENTS",
    "DEFAULT_WEIGHTS",
    "STRATEGIES",
    "AgreementResult",
    "BoundaryResult",
    "ComparisonResult",
    "QuadrantComparison",
    "QuadrantResult",
    "ScoreResult",
    "adjust",
    "agreement",
    "ambiguity_scores",
    "assign_quadrants",
    "boundary",
    "boundary_arrays",
    "cohen_kappa",
    "combine",
    "compare",
    "compare_quadrant_frame",
    "compare_quadrants",
    "disagreement",
    "fleiss",
    "kl_to_consensus",
    "krippendorff_alpha",
    "load_quadrants",
    "performance",
    "quadrant_stability",
    "quadrants",
    "rank",
    "select",
    "table1",
    "table2",
    "vote_entropy",
]
