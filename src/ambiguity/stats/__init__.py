"""Statistics over features, predictions and annotations; none of it needs torch or matplotlib.

The functions most analyses start from are exported here::

    from ambiguity.stats import compare, compare_quadrants, quadrants, boundary, agreement

Four of them share their module's name (``compare``, ``quadrants``, ``boundary``,
``agreement``): ``ambiguity.stats.compare`` is the function; the module's other
names come with ``from ambiguity.stats.compare import ...``.
"""

from __future__ import annotations

# The order matters only in that each module-named function is bound after its module
# was first imported, which isort's order gives (every module loads here, before any rebinding).
from ambiguity.stats.agreement import AgreementResult, agreement, cohen_kappa, fleiss, krippendorff_alpha
from ambiguity.stats.assign import assign_quadrants
from ambiguity.stats.boundary import boundary, boundary_arrays
from ambiguity.stats.compare import compare, compare_quadrant_frame, compare_quadrants
from ambiguity.stats.multitest import adjust
from ambiguity.stats.quadrants import (
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

__all__ = [
    "AgreementResult",
    "BoundaryResult",
    "ComparisonResult",
    "QuadrantComparison",
    "QuadrantResult",
    "adjust",
    "agreement",
    "assign_quadrants",
    "boundary",
    "boundary_arrays",
    "cohen_kappa",
    "compare",
    "compare_quadrant_frame",
    "compare_quadrants",
    "disagreement",
    "fleiss",
    "krippendorff_alpha",
    "load_quadrants",
    "performance",
    "quadrant_stability",
    "quadrants",
    "table1",
    "table2",
]
