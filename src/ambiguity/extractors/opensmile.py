"""openSMILE functionals (eGeMAPSv02 by default, ComParE_2016 as an option)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import pyarrow as pa

from ambiguity.extractors.base import Empty, Extractor, Failure, Result, checked_audio
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
        names = list(_smile(feature_set).feature_names)
        diskcache.put("opensmile-names", key, names)
    return tuple(names)


def column_name(feature: str) -> str:
    """Lance forbids '.' in column names: F0semitoneFrom27.5Hz -> F0semitoneFrom27_5Hz."""
    return feature.replace(".", "_")


def _smile(feature_set: str):
    import opensmile

    return opensmile.Smile(
        feature_set=getattr(opensmile.FeatureSet, feature_set),
        feature_level=opensmile.FeatureLevel.Functionals,
    )


class OpenSmile(Extractor):
    """openSMILE functionals, one float32 column per feature."""

    name = "opensmile"
    modality = "audio"
    version = "1"
    Params = OpenSmileParams
    requires = ("opensmile",)
    batch_size = 8

    def default_group(self) -> str:
        return f"opensmile.{FEATURE_SETS[self.params.feature_set]}"

    def columns(self) -> list[pa.Field]:
        return [pa.field(column_name(n), pa.float32()) for n in _names(self.params.feature_set)]

    def extra_provenance(self) -> dict:
        return {"opensmile_version": _opensmile_version(), "column_names": "openSMILE names with '.' replaced by '_'"}

    def setup(self) -> None:
        self._smile = _smile(self.params.feature_set)

    def process(self, batch: Sequence[SegmentInput]) -> list[Result]:
        if not hasattr(self, "_smile"):
            self.setup()
        out: list[Result] = []
        for seg in batch:
            x = checked_audio(seg, self.params.sample_rate, 0.1, "openSMILE")
            if isinstance(x, (Failure, Empty)):
                out.append(x)
                continue
            df = self._smile.process_signal(x, self.params.sample_rate)
            out.append({column_name(k): float(v) for k, v in df.iloc[0].items()})
        return out


def _opensmile_version() -> str:
    from importlib.metadata import version

    return version("opensmile")
