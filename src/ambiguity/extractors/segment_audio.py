"""The shape that Praat prosody and openSMILE share: each segment's audio on its own, measured."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from ambiguity.extractors.base import Empty, Extractor, Failure, Result, checked_audio
from ambiguity.inputs import SegmentInput


class SegmentAudio(Extractor):
    """An audio extractor that measures every segment by itself: its audio is decoded at
    ``params.sample_rate`` and checked (too short: failed; silent: empty), then measured
    (:meth:`measure_samples`). Subclasses set ``what`` (the name in failure reasons)."""

    modality = "audio"
    what: ClassVar[str]
    min_seconds: ClassVar[float] = 0.1

    def min_duration(self) -> float:
        """Shorter segments fail (``min_seconds``, unless a parameter says otherwise)."""
        return self.min_seconds

    @abstractmethod
    def measure_samples(self, x: np.ndarray) -> Result:
        """The features of one segment's checked samples (at ``params.sample_rate``)."""

    def process(self, batch: Sequence[SegmentInput]) -> list[Result]:
        out: list[Result] = []
        for seg in batch:
            x = checked_audio(seg, self.params.sample_rate, self.min_duration(), self.what)
            out.append(x if isinstance(x, (Failure, Empty)) else self.measure_samples(x))
        return out
