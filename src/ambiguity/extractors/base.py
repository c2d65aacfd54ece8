"""The extractor contract: what a plugin implements and what it receives.

An extractor turns a batch of :class:`SegmentInput` into one result per input:
a ``dict`` of feature values, a :class:`Failure` or an :class:`Empty`. It never
raises for one bad segment; if it does, the runner retries the batch one
segment at a time so that only the bad segment fails.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from ambiguity.errors import ExtractorError
from ambiguity.inputs import SegmentInput


@dataclass(frozen=True)
class Failure:
    """The segment could not be processed; ``reason`` says why, in words."""

    reason: str


@dataclass(frozen=True)
class Empty:
    """The segment holds nothing to measure (silence, no face, no video or audio track, no
    transcript): a state with a reason, never retried."""

    reason: str


Result = dict[str, Any] | Failure | Empty


def check_samples(x: np.ndarray, rate: int, min_seconds: float, what: str) -> np.ndarray | Failure | Empty:
    """``x``, or the per-segment outcome when it cannot be measured: too short fails, digital silence is empty."""
    if len(x) < min_seconds * rate:
        return Failure(f"segment is {len(x) * 1000 // rate} ms long; {what} needs at least {min_seconds * 1000:.0f} ms")
    if not np.any(x):
        return Empty("digital silence: every sample is zero")
    if not np.all(np.isfinite(x)):
        return Failure("audio contains NaN or Inf samples")
    return x


def checked_audio(seg: SegmentInput, rate: int, min_seconds: float, what: str) -> np.ndarray | Failure | Empty:
    """The segment's audio at ``rate``, or a Failure (decoding, too short) or Empty (silence, no audio)."""
    from ambiguity.media import MissingTrack

    try:
        x = seg.audio(rate)
    except MissingTrack as exc:  # no audio at all: a missing modality, not an error
        return Empty(str(exc).splitlines()[0])
    except Exception as exc:  # decoding problems are per segment
        return Failure(str(exc).splitlines()[0])
    return check_samples(x, rate, min_seconds, what)


@dataclass(frozen=True)
class NoParams:
    """Parameters of an extractor that takes none."""


#: How a type reads in an error message ("is not a int" read as a typo).
_KINDS = {int: "an integer", float: "a number", bool: "true or false"}


def _coerce(value: Any, tp: Any, name: str) -> Any:
    """Turn a CLI string into the parameter's declared type."""
    if not isinstance(value, str):
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value.lower() in ("none", "null", "") and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], name) if len(inner) == 1 else value
    if origin is typing.Literal:
        if value not in args:
            raise ExtractorError(f"parameter {name}={value!r}: choose one of {', '.join(map(str, args))}")
        return value
    if origin in (tuple, list):
        return tuple(_coerce(v.strip(), args[0] if args else str, name) for v in value.split(","))
    try:
        if tp is bool:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if tp in (int, float):
            return tp(value)
    except ValueError:
        raise ExtractorError(f"parameter {name}={value!r} is not {_KINDS.get(tp, tp.__name__)}") from None
    return value


class Extractor(ABC):
    """Base class of every feature extractor, built-in or plugin.

    Subclasses set ``name``, ``modality``, ``version``, a frozen dataclass
    ``Params`` and implement :meth:`columns` and :meth:`process`. Heavy imports
    and model loading belong in :meth:`setup`, which runs once per worker.
    """

    name: ClassVar[str]
    modality: ClassVar[str]
    version: ClassVar[str] = "1"
    Params: ClassVar[type] = NoParams
    #: Python modules the extractor needs; used to say whether it can run here.
    requires: ClassVar[tuple[str, ...]] = ()
    #: "cpu": run in the process pool; "model": batched inference in one process per device.
    kind: ClassVar[str] = "cpu"
    #: Segments handed to one :meth:`process` call.
    batch_size: ClassVar[int] = 8
    #: Run by ``extract --modality`` without being named (False: needs a model or other setting).
    auto: ClassVar[bool] = True
    #: Parameters that change where or how fast it runs, not what it computes: left out of
    #: :meth:`config_key`, so a run resumed with other values continues the same group.
    runtime_params: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, **params: Any):
        hints = typing.get_type_hints(self.Params)
        known = {f.name for f in dataclasses.fields(self.Params)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ExtractorError(
                f"extractor {self.name!r} has no parameter {', '.join(unknown)}; "
                f"it takes: {', '.join(sorted(known)) or 'none'}"
            )
        coerced = {k: _coerce(v, hints.get(k, str), k) for k, v in params.items()}
        try:
            self.params = self.Params(**coerced)
        except (TypeError, ValueError) as exc:
            raise ExtractorError(f"extractor {self.name!r}: {exc}") from None
        self.validate()

    # -- what a subclass provides -------------------------------------------------
    def validate(self) -> None:
        """Reject impossible parameter combinations; raise ExtractorError naming both values."""

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why the extractor cannot run on this machine, or None if it can."""
        import importlib.util

        missing = [m for m in cls.requires if importlib.util.find_spec(m) is None]
        if missing:
            return f"missing Python package(s): {', '.join(missing)}"
        return None

    @abstractmethod
    def columns(self) -> list[pa.Field]:
        """The feature columns this configuration writes (not segment_id/status/error)."""

    def setup(self) -> None:
        """Load models or tools; called once per worker before the first batch."""

    @abstractmethod
    def process(self, batch: Sequence[SegmentInput]) -> list[Result]:
        """One result per input, in order."""

    def extra_provenance(self) -> dict[str, Any]:
        """Model id, revision, weights hash, dtype, ...: merged into the group's provenance."""
        return {}

    # -- derived ------------------------------------------------------------------
    def default_group(self) -> str:
        """The feature-group (table) name for this configuration."""
        return self.name

    def param_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self.params).items()}

    def config_key(self) -> str:
        """A short hash of (name, version, parameters but the runtime ones): two configurations never share a group."""
        params = {k: v for k, v in self.param_dict().items() if k not in self.runtime_params}
        blob = json.dumps([self.name, self.version, params], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def schema(self) -> pa.Schema:
        bad = [f.name for f in self.columns() if "." in f.name or f.name in ("segment_id", "status", "error")]
        if bad:
            raise ExtractorError(f"extractor {self.name!r} declares invalid column name(s) {bad}: no '.', no reserved names")
        base = [
            pa.field("segment_id", pa.string(), nullable=False),
            pa.field("status", pa.string(), nullable=False),
            pa.field("error", pa.string()),
        ]
        return pa.schema(base + list(self.columns()))
