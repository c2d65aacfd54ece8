"""Extractors by name, from the ``ambiguity.extractors`` entry-point group.

Built-ins register through the same group as third-party plugins. A plugin
whose import fails is listed as unavailable with the reason, not hidden.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from ambiguity.constants import MODALITIES
from ambiguity.errors import ExtractorError, RegistryError, UnavailableError

if TYPE_CHECKING:
    from ambiguity.extractors.base import Extractor

GROUP = "ambiguity.extractors"


@dataclass(frozen=True)
class Entry:
    name: str
    target: str
    cls: type[Extractor] | None
    reason: str | None  # why it cannot run here; None if it can

    @property
    def available(self) -> bool:
        return self.reason is None


def check_class(name: str, cls: object) -> type[Extractor]:
    """Refuse a registration that is not an Extractor subclass of the entry's name."""
    from ambiguity.extractors.base import Extractor  # numpy and pyarrow: not before a class is loaded

    if not (isinstance(cls, type) and issubclass(cls, Extractor)):
        raise RegistryError(f"extractor entry point {name!r} is {cls!r}, not a subclass of ambiguity.Extractor")
    if getattr(cls, "name", None) != name:
        raise RegistryError(f"extractor entry point {name!r} points to a class named {getattr(cls, 'name', None)!r}")
    if getattr(cls, "modality", None) not in MODALITIES:
        raise RegistryError(f"extractor {name!r} has modality {getattr(cls, 'modality', None)!r}; use one of {MODALITIES}")
    return cls


@lru_cache(maxsize=1)
def _points() -> tuple[dict, dict[str, str]]:
    """Entry points by name, without importing them; and, by name, why one cannot be used (two
    packages register it). A broken entry point is listed with its error; the others still work."""
    out: dict = {}
    clash: dict[str, str] = {}
    for ep in entry_points(group=GROUP):
        if ep.name in out:
            clash[ep.name] = (f"two packages register an extractor named {ep.name!r} ({out[ep.name].value} and "
                              f"{ep.value}); uninstall one")
            continue
        out[ep.name] = ep
    return out, clash


@cache
def _import(name: str) -> tuple[type[Extractor] | None, str | None]:
    """The class behind an entry point, or why it cannot be used (imported once per process)."""
    points, clash = _points()
    if name in clash:
        return None, clash[name]
    ep = points[name]
    try:
        return check_class(ep.name, ep.load()), None
    except RegistryError as exc:
        return None, str(exc)
    except Exception as exc:  # a broken plugin must not break the others
        return None, f"cannot import {ep.value}: {type(exc).__name__}: {exc}"


def _load(name: str) -> Entry:
    # Availability is asked anew each time: it depends on the environment (OPENFACE_BIN, PATH,
    # ambiguity.toml), which may change after the first look in a long-lived process.
    cls, reason = _import(name)
    if cls is not None:
        reason = cls.unavailable_reason()
    return Entry(name, _points()[0][name].value, cls, reason)


def entries() -> dict[str, Entry]:
    """Every registered extractor, imported (for listings); a broken one with its reason."""
    return {name: _load(name) for name in _points()[0]}


entries.cache_clear = lambda: (_points.cache_clear(), _import.cache_clear())  # type: ignore[attr-defined,func-returns-value]  # a cache_clear for both caches


def get(name: str) -> type[Extractor]:
    """The extractor class registered as ``name``; raises if unknown or unavailable. Imports only it."""
    points = _points()[0]
    if name not in points:
        raise ExtractorError(f"unknown extractor {name!r}; known: {', '.join(sorted(points))}")
    entry = _load(name)
    if entry.cls is None or entry.reason:
        raise UnavailableError(f"extractor {name!r} cannot run here: {entry.reason}")
    return entry.cls


def for_modality(modality: str) -> list[Entry]:
    return [e for e in entries().values() if e.cls is not None and e.cls.modality == modality]
