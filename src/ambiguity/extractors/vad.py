"""Valence, arousal and dominance from the dimensional wav2vec2 regressor of Wagner et al. (2023).

The architecture is the published one (audeering/wav2vec2-large-robust-12-ft-emotion-msp-dim):
a wav2vec2 encoder (``wav2vec2.*``), the mean of its last hidden states, and a
regression head ``classifier`` = dense -> tanh -> out_proj with three outputs in
the order arousal, dominance, valence. The module and parameter names match that
checkpoint, so a local copy of it loads as is. Outputs are about 0..1.

Reference: Wagner, Triantafyllopoulos, Wierstorf, Schmitt, Burkhardt, Eyben,
Schuller (2023), "Dawn of the transformer era in speech emotion recognition:
closing the valence gap", IEEE TPAMI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from ambiguity.devices import Device, DType
from ambiguity.errors import ExtractorError
from ambiguity.extractors.audio import AudioEmbedder
from ambiguity.extractors.base import Result
from ambiguity.extractors.inference import Prepared, checked, model_config

#: The head's output order in the published checkpoint (its config's id2label).
HEAD_ORDER = ("arousal", "dominance", "valence")
DIMENSIONS = ("valence", "arousal", "dominance")



@dataclass(frozen=True)
class VADParams:
    model: str = ""
    max_seconds: float = 30.0
    embedding: bool = False
    revision: str | None = None
    dtype: DType = "auto"
    device: Device = "auto"
    threads: int | None = None


@lru_cache(maxsize=1)
def model_class():
    """The regressor as a transformers model class (built lazily: torch and transformers are heavy)."""
    import torch
    from torch import nn
    from transformers.models.wav2vec2.modeling_wav2vec2 import Wav2Vec2Model, Wav2Vec2PreTrainedModel

    class RegressionHead(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.dense = nn.Linear(config.hidden_size, config.hidden_size)
            self.dropout = nn.Dropout(config.final_dropout)
            self.out_proj = nn.Linear(config.hidden_size, config.num_labels)

        def forward(self, pooled):
            x = torch.tanh(self.dense(self.dropout(pooled)))
            return self.out_proj(self.dropout(x))

    class DimensionalEmotionModel(Wav2Vec2PreTrainedModel):
        """wav2vec2 + mean pooling + regression head, named as in the published checkpoint."""

        def __init__(self, config):
            super().__init__(config)
            self.wav2vec2 = Wav2Vec2Model(config)
            self.classifier = RegressionHead(config)
            self.post_init()

        def forward(self, input_values, attention_mask=None):
            h = self.wav2vec2(input_values, attention_mask=attention_mask).last_hidden_state
            pooled = h.mean(dim=1)
            return pooled, self.classifier(pooled)

    return DimensionalEmotionModel


def head_order(config: dict[str, Any]) -> tuple[str, ...]:
    """Which dimension each head output is: the config's id2label when it names them, else the published order."""
    id2label = config.get("id2label") or {}
    names = tuple(str(id2label.get(str(i), id2label.get(i, ""))).strip().lower() for i in range(len(HEAD_ORDER)))
    if sorted(names) == sorted(HEAD_ORDER) and len(id2label) == len(HEAD_ORDER):
        return names
    return HEAD_ORDER


class VAD(AudioEmbedder):
    """valence, arousal, dominance (about 0..1) and, with ``embedding=true``, the pooled 1024-d states."""

    name = "vad"
    modality = "audio"
    version = "1"
    Params: ClassVar[type] = VADParams
    batch_size = 8
    missing_model = ("the model of Wagner et al. (2023): --model DIRECTORY holding "
                     "audeering/wav2vec2-large-robust-12-ft-emotion-msp-dim (licence CC BY-NC-SA 4.0)")

    def default_group(self) -> str:
        return "vad"

    def layer(self) -> int:
        return -1

    def columns(self) -> list[pa.Field]:
        cols = [pa.field(d, pa.float32()) for d in DIMENSIONS]
        return cols + super().columns() if self.params.embedding else cols

    def extra_provenance(self) -> dict[str, Any]:
        cfg = model_config(self.source())
        return {**super().extra_provenance(), "head_order": list(head_order(cfg))}

    def load(self, device):
        model = self.from_pretrained(model_class())
        n = getattr(model.config, "num_labels", None)
        if n != len(HEAD_ORDER):
            raise ExtractorError(f"{self.source().model}: the head has {n} outputs; the VAD regressor has 3")
        self._order = head_order(model.config.to_dict())
        return model.to(device)

    def encoder(self):
        return self._model.wav2vec2

    def forward(self, items: Sequence[Prepared]) -> list[Result]:
        import torch

        pooled = self.pooled(items).to(self.device)
        with torch.inference_mode():
            y = self._model.classifier(pooled).float().cpu().numpy()
        vecs = pooled.float().cpu().numpy().astype(np.float32)
        out: list[Result] = []
        for i in range(len(items)):
            row: dict[str, Any] = {name: float(y[i, k]) for k, name in enumerate(self._order)}
            if self.params.embedding:
                row["vector"] = vecs[i]
            out.append(checked(row))
        return out
