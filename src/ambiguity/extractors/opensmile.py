"""openSMILE functionals (eGeMAPSv02 by default, ComParE_2016 as an option)."""

from __future__ import annotations

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
        names = list(_smile(feature_set).feature_names)
        diskcache.put("opensmile-names", key, names)
    return tuple(names)


def column_name(feature: str) -> str:
    """Lance forbids '.' in column names: F0semitoneFrom27.5Hz -> F0semitoneFrom27_5Hz."""
    return feature.replace(".", "_")


class Functionals:
    """openSMILE's functionals of one mono signal, computed as ``Smile`` computes them (its
    ``_extract``: the feature set's config, openSMILE's external-source and single-level-sink
    configs, 16-bit samples) through openSMILE's C API (``opensmile.core.lib.OpenSMILE``).

    Not a ``Smile``: its constructor serialises itself with audobject, which scans the file
    list of every installed package (about 0.2 s, 95% of it; once per process, on a run's
    critical path), and ``process_signal`` builds a pandas frame per segment (about 5% of the
    time of eGeMAPS functionals). The values equal ``Smile.process_file``'s
    (tests/extractors/test_opensmile.py).
    """

    def __init__(self, feature_set: str):
        import os

        import opensmile
        from opensmile.core.config import config as C
        from opensmile.core.lib import OpenSMILE

        self._lib = OpenSMILE
        self._C = C
        self._n = len(_names(feature_set))
        root = os.path.join(os.path.dirname(os.path.realpath(opensmile.core.smile.__file__)), C.CONFIG_ROOT)
        self._config = os.path.join(root, getattr(opensmile.FeatureSet, feature_set).value + C.CONFIG_EXT)
        if not os.path.exists(self._config):
            raise FileNotFoundError(self._config)
        self._options: dict[str, object] = {
            "sink": os.path.join(root, C.EXTERNAL_OUTPUT_SINGLE_CONFIG),
            "sinkLevel": opensmile.FeatureLevel.Functionals.value,
            "bufferModeRbConf": os.path.join(root, "shared/BufferModeRb.conf.inc"),
            "frameModeFunctionalsConf": os.path.join(root, "shared/FrameModeFunctionals.conf.inc"),
            "source": os.path.join(root, C.EXTERNAL_INPUT_CONFIG),
            "nBits": 16,
        }

    def __call__(self, x: np.ndarray, rate: int) -> np.ndarray:
        """The functionals of mono float samples in [-1, 1] at ``rate`` (NaN if too short for any)."""
        pcm = (np.asarray(x, dtype=np.float32) * 32768).astype(np.int16)  # as Smile: no clipping
        got: list[np.ndarray] = []
        smile = self._lib()
        smile.initialize(config_file=self._config, options={**self._options, "sampleRate": rate}, loglevel=2)
        try:
            smile.external_sink_set_callback_ex(self._C.EXTERNAL_OUTPUT_COMPONENT, lambda data, meta: got.append(data.copy()))
            smile.external_audio_source_write_data(self._C.EXTERNAL_SOURCE_COMPONENT, pcm.tobytes())
            smile.external_audio_source_set_eoi(self._C.EXTERNAL_SOURCE_COMPONENT)
            smile.run()
        finally:
            smile.free()
        if not got:  # Smile warns "Segment too short, filling with NaN"
            return np.full(self._n, np.nan, np.float32)
        return got[0].reshape(-1)


def _smile(feature_set: str):
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
        super().setup()
        self._smile = Functionals(self.params.feature_set)
        self._columns = [column_name(n) for n in _names(self.params.feature_set)]

    def process(self, batch: Sequence[SegmentInput]) -> list[Result]:
        if not hasattr(self, "_smile"):
            self.setup()
        return super().process(batch)

    def measure_samples(self, x: np.ndarray) -> Result:
        y = self._smile(x, self.params.sample_rate)
        return {c: float(v) for c, v in zip(self._columns, y.tolist(), strict=True)}


def _opensmile_version() -> str:
    from importlib.metadata import version

    return version("opensmile")
