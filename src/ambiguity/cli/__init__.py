"""The ``ambiguity`` command. Thin: parses, calls the library, prints.

Each topic module registers its commands on :data:`main` when imported.
"""

from ambiguity.cli import core  # noqa: F401  (registers commands)
from ambiguity.cli import annotate  # noqa: F401  (registers commands)
from ambiguity.cli import models  # noqa: F401  (registers commands)
from ambiguity.cli import report  # noqa: F401  (registers commands)
from ambiguity.cli import stats  # noqa: F401  (registers commands)
from ambiguity.cli.app import main

__all__ = ["main"]
