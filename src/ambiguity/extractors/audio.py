"""Audio embeddings from HuBERT / wav2vec2 encoders: mean-pooled hidden states of one layer.

Long segments are cut into chunks of ``max_seconds`` and pooled over all their
frames. Batches are padded with an attention mask where the model takes one
(``feat_extract_norm="layer"``); models whose first convolution normalises over
time (``"group"``, e.g. hubert-base, wav2vec2-base) give different outputs when
padded, so their chunks are only batched with chunks of exactly the same length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ambiguity.devices import Device, DType
from ambiguity.errors import ExtractorError
from ambiguity.extractors.base import Empty, Failure, Result
from ambiguity.extractors.inference import (
    ModelExtractor,
    Prepared,
    checked,
    exact_buckets,
    length_buckets,
    model_config,
    read_json,
)
from ambiguity.inputs import SegmentInput


@dataclass(frozen=True)
class AudioParams:
    model: str = ""
    layer: int = -1
    max_seconds: float = 30.0
    revision: str | None = None
    dtype: DType = "auto"
    device: Device = "auto"
    threads: int | None = None


def receptive_field(cfg: dict[str, Any]) -> int:
    """Samples one output frame of the convolutional feature encoder sees (400 for wav2vec2)."""
    kernels = cfg.get("conv_kernel", [10, 3, 3, 3, 3, 2, 2])
    strides = cfg.get("conv_stride", [5, 2, 2, 2, 2, 2, 2])
    field, jump = 1, 1
    for k, s in zip(kernels, strides, strict=False):
        field += (k - 1) * jump
        jump *= s
    return field


class AudioEmbedder(ModelExtractor):
    """Mean-pooled hidden states of a HuBERT / wav2vec2 encoder at 16 kHz mono.

    ``layer``: hidden-state index (-1: last layer; 0: the input of the first
    transformer layer); ``max_seconds``: chunk length for long segments.
    """

    name = "audio"
    modality = "audio"
    version = "1"
    Params: ClassVar[type] = AudioParams
    batch_size = 8
    missing_model = "a model: --model HUB_ID_OR_DIRECTORY (e.g. facebook/hubert-base-ls960)"

    def validate(self) -> None:
        super().validate()
        if not self.params.max_seconds > 0.1:
            raise ExtractorError(f"max_seconds={self.params.max_seconds}: use more than 0.1 s")

    def layer(self) -> int:
        return self.params.layer

    def uses_mask(self) -> bool:
        """Padding with an attention mask is exact only without group norm over time."""
        cfg = model_config(self.source())
        norm = cfg.get("feat_extract_norm")
        if norm is not None:
            return norm == "layer"
        return bool(read_json(self.source().path / "preprocessor_config.json").get("return_attention_mask", False))

    def extra_provenance(self) -> dict[str, Any]:
        return {
            **super().extra_provenance(),
            "pooling": "mean",
            "layer": self.layer(),
            "sample_rate": self._rate_from_config(),
            "max_seconds": self.params.max_seconds,
            "batching": "padded with attention mask" if self.uses_mask() else "equal-length chunks only",
        }

    def _rate_from_config(self) -> int:
        return int(read_json(self.source().path / "preprocessor_config.json").get("sampling_rate", 16000))

    # -- loading ----------------------------------------------------------------------
    def setup_prepare(self) -> None:
        from transformers import AutoFeatureExtractor

        self._fe = self.from_pretrained(AutoFeatureExtractor, "the feature extractor (preprocessor_config.json)")
        self._rate = int(getattr(self._fe, "sampling_rate", 16000))
        self._min_samples = receptive_field(model_config(self.source()))
        self._mask = self.uses_mask()

    def load(self, device):
        from transformers import AutoModel

        return self.check_layer(self.from_pretrained(AutoModel), self.layer()).to(device)

    def encoder(self):
        """The wav2vec2 / HuBERT module whose hidden states are pooled."""
        return self._model

    # -- the two halves ---------------------------------------------------------------
    def prepare(self, batch: Sequence[SegmentInput]) -> list[Prepared | Failure | Empty]:
        self.ensure_prepare()
        out: list[Prepared | Failure | Empty] = []
        chunk = int(round(self.params.max_seconds * self._rate))
        for seg in batch:
            x = seg.audio(self._rate)
            if len(x) < self._min_samples:
                out.append(Empty(f"{len(x)} samples: shorter than the model's {self._min_samples}-sample receptive field"))
                continue
            # The feature extractor's own normalisation (zero mean, unit variance when do_normalize).
            x = np.asarray(self._fe(x, sampling_rate=self._rate)["input_values"][0], dtype=np.float32)
            pieces = [x[i : i + chunk] for i in range(0, len(x), chunk)]
            if len(pieces) > 1 and len(pieces[-1]) < self._min_samples:
                pieces[-2] = np.concatenate([pieces[-2], pieces.pop()])
            out.append(Prepared(len(x), pieces))
        return out

    def pooled(self, items: Sequence[Prepared]):
        """Per item, the mean of the chosen layer's frames over all its chunks: (n, hidden) float32 tensor."""
        import torch

        self.setup()
        enc = self.encoder()
        chunks = [(i, c) for i, it in enumerate(items) for c in it.data]
        lengths = [len(c) for _, c in chunks]
        size = max(1, len(items))
        buckets = length_buckets(lengths, size) if self._mask else exact_buckets(lengths, size)
        dim = enc.config.hidden_size
        sums = torch.zeros(len(items), dim, dtype=torch.float32)
        counts = torch.zeros(len(items), dtype=torch.float32)
        layer = self.layer()
        for bucket in buckets:
            n = max(lengths[j] for j in bucket)
            x = np.zeros((len(bucket), n), dtype=np.float32)
            m = np.zeros((len(bucket), n), dtype=np.int64)
            for r, j in enumerate(bucket):
                x[r, : lengths[j]] = chunks[j][1]
                m[r, : lengths[j]] = 1
            xt = torch.from_numpy(x).to(self.device)
            mt = torch.from_numpy(m).to(self.device)
            with torch.inference_mode():
                inputs: dict[str, Any] = {"input_values": xt, "output_hidden_states": layer != -1}
                if self._mask:
                    inputs["attention_mask"] = mt
                out = self._run_encoder(enc, inputs)
                h = (out.last_hidden_state if layer == -1 else out.hidden_states[layer]).float()
                frames = enc._get_feat_extract_output_lengths(torch.tensor([lengths[j] for j in bucket]))
                frames = frames.clamp(max=h.shape[1]).to(h.device)
                fm = (torch.arange(h.shape[1], device=h.device)[None, :] < frames[:, None]).to(h.dtype)
                s = (h * fm.unsqueeze(-1)).sum(1).cpu()
                for r, j in enumerate(bucket):
                    i = chunks[j][0]
                    sums[i] += s[r]
                    counts[i] += float(frames[r])
        return sums / counts.clamp(min=1.0).unsqueeze(-1)

    def _run_encoder(self, enc, inputs):
        import torch

        from ambiguity.extractors.inference import autocast

        with torch.inference_mode(), autocast(self.device, self.dtype):
            return enc(**inputs)

    def forward(self, items: Sequence[Prepared]) -> list[Result]:
        vecs = self.pooled(items).numpy().astype(np.float32)
        return [checked({"vector": vecs[i]}) for i in range(len(items))]
