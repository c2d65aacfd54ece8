"""A toy model extractor for the runner's model path: light to import, so spawn workers start fast."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ambiguity.extractors.inference import ModelExtractor, Prepared
from ambiguity.inputs import SegmentInput


@dataclass(frozen=True)
class ToyParams:
    device: str = "cpu"
    boom_on: str = "boom"


class Toy(ModelExtractor):
    """Embeds a text as [length, sum of byte values]; 'boom' breaks forward, 'bad' breaks prepare,
    'die' kills a decode worker process."""

    name = "toy"
    modality = "text"
    Params = ToyParams
    batch_size = 2
    requires = ("torch",)
    calls: list[list[int]] = []
    stop_after = 0  # raise KeyboardInterrupt in the Nth forward call (0: never); not a parameter

    def extra_provenance(self):
        return {}

    def default_group(self):
        return "toy"

    def columns(self):
        return [pa.field("vector", pa.list_(pa.float32(), 2))]

    def load(self, device):
        import torch

        return torch.nn.Identity()

    def prepare(self, batch: Sequence[SegmentInput]):
        out = []
        import multiprocessing
        import os

        for s in batch:
            if s.transcript == "bad":
                raise ValueError("cannot tokenize")
            if s.transcript == "die" and multiprocessing.parent_process() is not None:
                os._exit(1)  # a decode worker process crashing (a codec segfault, an OOM kill)
            b = np.frombuffer(s.transcript.encode(), dtype=np.uint8).astype(np.float32)
            out.append(Prepared(len(b), b))
        return out

    def forward(self, items):
        import torch

        Toy.calls.append([it.length for it in items])
        if Toy.stop_after and len(Toy.calls) >= Toy.stop_after:
            raise KeyboardInterrupt
        if any(it.data.tobytes() == np.frombuffer(self.params.boom_on.encode(), np.uint8).astype(np.float32).tobytes() for it in items):
            raise RuntimeError("model exploded")
        x = self.run_model(input=torch.tensor([[it.length, float(it.data.sum())] for it in items]))
        return [{"vector": x[i].numpy()} for i in range(len(items))]
