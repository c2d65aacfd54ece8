"""One segment as an extractor sees it: ids, times, text, and media decoded on demand."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ambiguity.media import MissingTrack, load_segment_audio, sample_frames


@dataclass
class SegmentInput:
    """One segment as an extractor sees it; media is decoded only when asked for.

    ``media`` is the video or audio file; ``audio_path`` a separate audio file
    if the manifest gave one. ``start_s`` / ``end_s`` are None for the whole file.
    """

    segment_id: str
    media: str | None
    start_s: float | None = None
    end_s: float | None = None
    audio_path: str | None = None
    transcript_value: str | None = None
    label: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # Set by the runner: decodes through a per-batch cache so that segments of
    # one source file share a decode.
    _audio_loader: Callable[[SegmentInput, int], np.ndarray] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def transcript(self) -> str | None:
        return self.transcript_value

    @property
    def audio_source(self) -> str | None:
        """The file the audio track comes from."""
        return self.audio_path or self.media

    @property
    def path(self) -> Path | None:
        """The media file, for tools that read files themselves."""
        return Path(self.media) if self.media else None

    def audio(self, rate: int = 16000) -> np.ndarray:
        """The segment's audio as float32 mono at ``rate`` Hz (raises as :meth:`frames` does)."""
        if self._audio_loader is not None:
            return self._audio_loader(self, rate)
        return load_segment_audio(self, rate)

    def frames(self, *, fps: float | None = None, num: int | None = None) -> list:
        """Sampled RGB frames of the segment: ``fps`` per second, or ``num`` evenly spaced.

        Raises :class:`~ambiguity.media.MissingTrack` when there is no video (the segment is then
        ``empty``), :class:`~ambiguity.media.MediaError` when the file cannot be decoded (``failed``)."""
        if self.media is None:
            raise MissingTrack(f"segment {self.segment_id} has no media file")
        return sample_frames(self.media, self.start_s, self.end_s, fps=fps, num=num)
