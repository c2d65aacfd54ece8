"""The ``ambiguity`` command. Thin: parses, calls the library, prints.

Each topic module registers its commands on :data:`main` when imported.
"""

from ambiguity.cli import annotate, attribution, core, explore, models, report, stats  # noqa: F401  (register their commands)
from ambiguity.cli.app import main

__all__ = ["main"]
