"""Errors that carry what the user must fix.

Every error a user can cause derives from :class:`AmbiguityError`; the CLI prints
its message as one line and exits non-zero. Each also subclasses the builtin a
caller would naturally catch (``ValueError``, ``FileNotFoundError``, ...).
"""

from __future__ import annotations


class AmbiguityError(Exception):
    """Base class of all errors the user can act on.

    ``param``: the parameter(s) at fault as the library names them (``folds``, ``group_by``), written where the
    message, one of a manifest's problems or a clause starts (``pass unlabelled``); the CLI shows each as its flag
    (``--folds``, ``--group-by``), the library's callers read them as they wrote them. A library message never
    names a flag (tests/test_architecture.py).
    """

    def __init__(self, *args: object, param: str | tuple[str, ...] | None = None):
        super().__init__(*args)
        self.param = param


class ManifestError(AmbiguityError, ValueError):
    """A manifest has problems; ``problems`` lists every one with its row number."""

    def __init__(self, source: str, problems: list[str], *, param: str | tuple[str, ...] | None = None):
        self.source = source
        self.problems = list(problems)
        n = len(self.problems)
        if n == 1:
            super().__init__(f"{source}: {self.problems[0]}", param=param)
        else:
            super().__init__(f"{source}: {n} problems\n" + "\n".join(f"  {p}" for p in self.problems), param=param)


class StoreError(AmbiguityError, RuntimeError):
    """The feature store cannot be opened, read or written as asked."""


class GroupConflictError(StoreError):
    """A feature group exists with another configuration of the extractor."""


class MissingGroupError(StoreError, KeyError):
    """A feature group or table that was asked for does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ExtractorError(AmbiguityError, ValueError):
    """An extractor is unknown, misconfigured or cannot run here."""


class RegistryError(AmbiguityError, TypeError):
    """A plugin registration is invalid (duplicate name, wrong type)."""


class UnavailableError(ExtractorError):
    """An extractor's dependency (a package, a binary, a model) is missing."""


class ModelNotFoundError(ExtractorError):
    """A model id is neither a local directory nor available offline."""


class StatsError(AmbiguityError, ValueError):
    """Input to a statistic is invalid (unknown group, too few values, ...)."""


class ConfigError(AmbiguityError, ValueError):
    """A project or pipeline configuration is invalid."""


class ModelError(AmbiguityError, ValueError):
    """Training data or a model cannot be used as asked (no validation split, one class, ...)."""
