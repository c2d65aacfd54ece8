"""openSMILE functionals (eGeMAPSv02 by default, ComParE_2016 as an option), through openSMILE's
public API: one ``opensmile.Smile`` per worker, called on each segment's samples."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import pyarrow as pa

from ambiguity.extractors.base import Result
from ambiguity.extractors.segment_audio import SegmentAudio
from ambiguity.inputs import SegmentInput

FEATURE_SETS = {"eGeMAPSv02": "egemaps", "ComParE_2016": "compare"}


@dataclass(frozen=True)
class OpenSmileParams:
    feature_set: Literal["eGeMAPSv02", "ComParE_2016"] = "eGeMAPSv02"
    sample_rate: int = 16000


@lru_cache(maxsize=2)
def _names(feature_set: str) -> tuple[str, ...]:
    """The feature names of a set, cached on disk by openSMILE version: the run's parent then needs
    neither to import opensmile nor to build a Smile (about 0.5 s of CPU) just for the schema."""
    from ambiguity.extractors import diskcache

    key = f"{_opensmile_version()}|{feature_set}"
    names = diskcache.load("opensmile-names").get(key)
    if not names:
        names = list(smile(feature_set).feature_names)
        diskcache.put("opensmile-names", key, names)
    return tuple(names)


def column_name(feature: str) -> str:
    """Lance forbids '.' in column names: F0semitoneFrom27.5Hz -> F0semitoneFrom27_5Hz."""
    return feature.replace(".", "_")


def smile(feature_set: str):
    """openSMILE's own ``Smile`` for the functionals of ``feature_set`` (its public API)."""
    import opensmile

    return opensmile.Smile(
        feature_set=getattr(opensmile.FeatureSet, feature_set),
        feature_level=opensmile.FeatureLevel.Functionals,
    )


class OpenSmile(SegmentAudio):
    """openSMILE functionals, one float32 column per feature."""

    name = "opensmile"
    version = "1"
    Params = OpenSmileParams
    requires = ("opensmile",)
    what = "openSMILE"

    def default_group(self) -> str:
        return f"opensmile.{FEATURE_SETS[self.params.feature_set]}"

    def columns(self) -> list[pa.Field]:
        return [pa.field(column_name(n), pa.float32()) for n in _names(self.params.feature_set)]

    def extra_provenance(self) -> dict:
        return {"opensmile_version": _opensmile_version(), "column_names": "openSMILE names with '.' replaced by '_'"}

    def setup(self) -> None:
        # One Smile per worker; calling it returns the raw array (process_signal would build a
        # pandas frame per segment, about 5% of the time of eGeMAPS functionals).
        self._smile = smile(self.params.feature_set)
        self._columns = [column_name(n) for n in _names(self.params.feature_set)]

    def process(self, batch: Sequence[SegmentInput]) -> list[Result]:
        if not hasattr(self, "_smile"):
            self.setup()
        return super().process(batch)

    def measure_samples(self, x: np.ndarray) -> Result:
        with warnings.catch_warnings():  # "Segment too short, filling with NaN": the NaNs say it
            warnings.simplefilter("ignore", UserWarning)
            y = self._smile(x[np.newaxis, :], self.params.sample_rate).reshape(-1)
        return {c: float(v) for c, v in zip(self._columns, y.tolist(), strict=True)}


def _opensmile_version() -> str:
    from importlib.metadata import version

    return version("opensmile")
