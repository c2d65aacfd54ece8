"""Transcripts from speech: Whisper through transformers, from a local directory (or the hub cache).

Why transformers rather than CTranslate2 (faster-whisper): transformers is already what every
model extractor here loads with (offline loading, weight hashes, devices, dtypes, batching), a
checkpoint saved with ``save_pretrained`` loads as is, and the tests can build a tiny random
Whisper and load it through the same path. faster-whisper is 2-4x faster on CPU but needs a
converted CTranslate2 copy of each model and a second inference stack.

Per segment (at most 30 s: Whisper's window): the language (``language`` parameter, or
detected from the first decoder step over the languages the model knows, with its
probability), the text, and word timings from Whisper's cross-attention (its
``alignment_heads``): approximate; for timings to 10 ms run ``align`` on the text.
:func:`fill_transcripts` copies the text into the segments that have no transcript, so that
``extract --modality text`` embeds it; each segment's ``transcript_source`` (metadata) says
``manifest`` or ``asr:<model> sha256:<weights> transformers <version>``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from ambiguity.devices import Device, DType
from ambiguity.errors import ExtractorError, ModelNotFoundError
from ambiguity.extractors.base import Empty, Failure, Result, checked_audio
from ambiguity.extractors.inference import ModelExtractor, Prepared, model_config
from ambiguity.inputs import SegmentInput

RATE = 16000
#: Whisper hears 30 s at a time.
MAX_SECONDS = 30.0


@dataclass(frozen=True)
class TranscriptParams:
    model: str = ""
    #: A language code the model knows ("en"), or "" to detect it per segment.
    language: str = ""
    max_new_tokens: int = 128
    #: Segments in which WebRTC voice activity hears no speech are empty, not transcribed
    #: (Whisper invents text on silence and noise).
    require_speech: bool = True
    revision: str | None = None
    dtype: DType = "auto"
    device: Device = "auto"
    threads: int | None = None


class Transcript(ModelExtractor):
    """Whisper speech recognition: text, language and word timings per segment."""

    name = "transcript"
    modality = "audio"
    version = "1"
    Params: ClassVar[type] = TranscriptParams
    batch_size = 8
    missing_model = "a Whisper model: --model DIRECTORY (a save_pretrained() folder of a Whisper checkpoint)"

    def validate(self) -> None:
        super().validate()
        if self.params.max_new_tokens < 1:
            raise ExtractorError(f"max_new_tokens={self.params.max_new_tokens}: use at least 1")
        kind = model_config(self.source()).get("model_type")
        if kind != "whisper":
            raise ModelNotFoundError(
                f"{self.source().path} holds a {kind or 'model of no declared type'} model, not Whisper: "
                "transcripts need a Whisper checkpoint (config.json model_type 'whisper')"
            )

    def columns(self) -> list[pa.Field]:
        return [
            pa.field("text", pa.string()),
            pa.field("language", pa.string()),
            pa.field("language_prob", pa.float64()),
            pa.field("n_tokens", pa.int32()),
            pa.field("words", pa.list_(pa.string())),
            pa.field("word_start", pa.list_(pa.float64())),
            pa.field("word_end", pa.list_(pa.float64())),
        ]

    def extra_provenance(self) -> dict[str, Any]:
        import transformers

        return {**super().extra_provenance(), "asr_backend": "transformers", "transformers": transformers.__version__}

    def setup_prepare(self) -> None:
        from transformers import WhisperProcessor

        self._proc = self.from_pretrained(WhisperProcessor, "the Whisper processor (feature extractor and tokenizer)")

    def load(self, device):
        from transformers import WhisperForConditionalGeneration

        model = self.from_pretrained(WhisperForConditionalGeneration).to(device)
        langs = getattr(model.generation_config, "lang_to_id", None) or {}
        if self.params.language and f"<|{self.params.language}|>" not in langs:
            known = ", ".join(sorted(k.strip("<|>") for k in langs)) or "none"
            raise ExtractorError(f"language={self.params.language!r}: the model knows {known}")
        return model

    def prepare(self, batch: Sequence[SegmentInput]) -> list[Prepared | Failure | Empty]:
        out: list[Prepared | Failure | Empty] = []
        for seg in batch:
            x = checked_audio(seg, RATE, 0.1, "speech recognition")
            if isinstance(x, (Failure, Empty)):
                out.append(x)
                continue
            if self.params.require_speech and not has_speech(x):
                out.append(Empty("no speech detected (WebRTC voice activity)"))
                continue
            if len(x) > MAX_SECONDS * RATE:
                out.append(Failure(f"segment is {len(x) / RATE:.1f} s; Whisper hears {MAX_SECONDS:.0f} s at a time: cut it shorter"))
                continue
            feats = self._proc.feature_extractor(x, sampling_rate=RATE, return_tensors="np", return_attention_mask=True)
            out.append(Prepared(len(x), (feats.input_features[0], feats.attention_mask[0]), {"seconds": len(x) / RATE}))
        return out

    def languages(self, features) -> tuple[list[str], list[float]]:
        """The most probable language of each item and its probability (first decoder step)."""
        import torch

        gen = self._model.generation_config
        if self.params.language:
            n = features.shape[0]
            return [self.params.language] * n, [float("nan")] * n
        codes = list(gen.lang_to_id)
        ids = torch.tensor([gen.lang_to_id[c] for c in codes], device=features.device)
        start = torch.full((features.shape[0], 1), gen.decoder_start_token_id, device=features.device)
        logits = self.run_model(input_features=features, decoder_input_ids=start).logits[:, -1, :]
        probs = logits.float()[:, ids].softmax(-1)
        best = probs.argmax(-1).tolist()
        return [codes[k].strip("<|>") for k in best], [float(probs[i, k]) for i, k in enumerate(best)]

    def forward(self, items: Sequence[Prepared]) -> list[Result]:
        import torch

        feats = torch.from_numpy(np.stack([it.data[0] for it in items])).to(self.device)
        mask = torch.from_numpy(np.stack([it.data[1] for it in items])).to(self.device)
        if self.dtype != "float32":
            feats = feats.to(getattr(torch, self.dtype))
        langs, probs = self.languages(feats)
        with torch.inference_mode():
            out = self._model.generate(
                feats, attention_mask=mask, task="transcribe", language=langs, return_token_timestamps=True,
                return_dict_in_generate=True, max_new_tokens=self.params.max_new_tokens,
            )
        seqs, stamps = out["sequences"].tolist(), out["token_timestamps"].float().cpu().numpy()
        return [self._row(seq, ts, lang, p, it.info["seconds"]) for seq, ts, lang, p, it in zip(seqs, stamps, langs, probs, items, strict=True)]

    def _row(self, seq: list[int], ts: np.ndarray, lang: str, prob: float, seconds: float) -> Result:
        tok = self._proc.tokenizer
        special = set(tok.all_special_ids)
        idx = [i for i, t in enumerate(seq) if t not in special]
        text = tok.decode([seq[i] for i in idx], skip_special_tokens=True).strip()
        if not text:
            return Empty(f"the model heard no words (language {lang})")
        words, starts, ends = [], [], []
        pieces = tok.convert_ids_to_tokens([seq[i] for i in idx])
        for k, (i, piece) in enumerate(zip(idx, pieces, strict=True)):
            new = k == 0 or piece.startswith(("Ġ", " "))
            if new:
                words.append([piece])
                starts.append(float(ts[i]))
                ends.append(float(ts[i]))
            else:
                words[-1].append(piece)
            ends[-1] = float(ts[i + 1]) if i + 1 < len(ts) else seconds
        texts = [tok.convert_tokens_to_string(w).strip() for w in words]
        keep = [j for j, w in enumerate(texts) if w]
        return {
            "text": text, "language": lang, "language_prob": prob, "n_tokens": len(idx),
            "words": [texts[j] for j in keep],
            "word_start": [min(starts[j], seconds) for j in keep],
            "word_end": [min(max(ends[j], starts[j]), seconds) for j in keep],
        }


def has_speech(x: np.ndarray) -> bool:
    """Whether WebRTC voice activity hears at least one run of speech (the speech_activity rules)."""
    from ambiguity.extractors.speech_activity import SpeechActivityParams, speech_frames, speech_runs

    p = SpeechActivityParams()
    flags = speech_frames(x, RATE, p.aggressiveness, p.frame_ms)
    return bool(speech_runs(flags, p.frame_ms / 1000, p.min_speech_s, p.min_gap_s))


def fill_transcripts(store, group: str) -> int:
    """Give segments without a transcript the ASR text of ``group``; returns how many got one.

    Every segment's metadata gains ``transcript_source``: ``manifest`` where the manifest gave
    the text, else the ASR model, its weights' sha256 and the transformers version (from the
    group's provenance), and ``language`` where ASR detected or was told it.
    """
    import polars as pl

    prov = store.groups().get(group)
    if prov is None:
        raise ExtractorError(f"no feature group {group!r}; run `extract --extractor transcript --model DIR` first")
    info = prov.get("provenance", prov)
    source = (
        f"asr:{info.get('model', '?')} sha256:{str(info.get('weights_sha256') or '?')[:12]} "
        f"transformers {info.get('transformers', '?')}"
    )
    asr = store.features(group, columns=["segment_id", "text", "language"])
    heard = {r["segment_id"]: (r["text"], r["language"]) for r in asr.iter_rows(named=True)}
    segs = store.segments()
    texts, metas, n = [], [], 0
    for r in segs.iter_rows(named=True):
        meta = json.loads(r["metadata"]) if r.get("metadata") else {}
        text = r.get("transcript")
        if text is not None and text.strip():
            meta.setdefault("transcript_source", "manifest")
        elif r["segment_id"] in heard:
            text, lang = heard[r["segment_id"]]
            meta.update({"transcript_source": source, "language": lang})
            n += 1
        texts.append(text)
        metas.append(json.dumps(meta) if meta else r.get("metadata"))
    updated = segs.with_columns(pl.Series("transcript", texts, pl.String), pl.Series("metadata", metas, pl.String))
    store.upsert_segments(updated.to_arrow())
    return n
