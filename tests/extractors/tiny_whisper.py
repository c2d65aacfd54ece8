"""A tiny randomly initialised Whisper, built offline and saved as a user saves a model.

The tokenizer is a byte-level BPE trained here on the essays in examples/data, with Whisper's
special tokens added (two languages: English and German); the feature extractor is
transformers' WhisperFeatureExtractor with its defaults (80 mel bins, 30 s windows). The
generation config carries what Whisper's generate() needs: language and task tokens and one
alignment head for word timestamps.
"""

from __future__ import annotations

import json
from pathlib import Path

from tiny_models import corpus

LANGS = ("en", "de")
SPECIALS = [
    "<|endoftext|>", "<|startoftranscript|>", *[f"<|{lang}|>" for lang in LANGS],
    "<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>",
]


def build(out: Path, *, seed: int = 0, d_model: int = 32) -> Path:
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )

    out.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus(), vocab_size=400, min_frequency=2)
    bpe.save_model(str(out))
    tok = WhisperTokenizer(str(out / "vocab.json"), str(out / "merges.txt"), unk_token="<|endoftext|>",
                           bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": SPECIALS})
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIALS}
    eot = ids["<|endoftext|>"]
    processor = WhisperProcessor(WhisperFeatureExtractor(), tok)
    processor.save_pretrained(out)
    torch.manual_seed(seed)
    cfg = WhisperConfig(
        vocab_size=len(tok), num_mel_bins=80, d_model=d_model, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
        max_source_positions=1500, max_target_positions=64, pad_token_id=eot, bos_token_id=eot, eos_token_id=eot,
        decoder_start_token_id=ids["<|startoftranscript|>"], begin_suppress_tokens=None, suppress_tokens=None,
    )
    model = WhisperForConditionalGeneration(cfg).eval()
    gen = GenerationConfig(
        decoder_start_token_id=ids["<|startoftranscript|>"], eos_token_id=eot, pad_token_id=eot, bos_token_id=eot,
        max_length=64, is_multilingual=True,
        lang_to_id={f"<|{lang}|>": ids[f"<|{lang}|>"] for lang in LANGS},
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
        no_timestamps_token_id=ids["<|notimestamps|>"], alignment_heads=[[0, 0]],
    )
    model.generation_config = gen
    model.save_pretrained(out)
    (out / "tiny.json").write_text(json.dumps({"built_by": "tests/extractors/tiny_whisper.py", "seed": seed}))
    return out
