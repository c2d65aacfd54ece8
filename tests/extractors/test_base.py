"""The extractor contract: the configuration key leaves out the declared runtime parameters."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from ambiguity.extractors.base import Extractor


@dataclass(frozen=True)
class _Params:
    scale: float = 1.0
    jobs: int = 2


class _Scaled(Extractor):
    name = "scaled"
    modality = "audio"
    Params = _Params
    runtime_params = frozenset({"jobs"})

    def columns(self):
        return [pa.field("x", pa.float32())]

    def process(self, batch):
        return [{"x": self.params.scale} for _ in batch]


def test_runtime_params_stay_out_of_the_config_key():
    assert _Scaled(jobs=8).config_key() == _Scaled().config_key()
    assert _Scaled(scale=2.0).config_key() != _Scaled().config_key()


def test_without_runtime_params_every_parameter_counts():
    class Plain(_Scaled):
        runtime_params = frozenset()

    assert Plain(jobs=8).config_key() != Plain().config_key()
