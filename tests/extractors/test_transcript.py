"""Speech recognition with a tiny randomly initialised Whisper (tests/extractors/tiny_whisper.py),
saved to a temporary folder and loaded by path as a user's model would be. Its words are
noise; what is tested is the path: language, text, word timings, failures, and a manifest
without transcripts going through ASR -> text embeddings -> training -> quadrants."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("torch")

import tiny_whisper  # noqa: E402
from speech_synth import RATE, write_wav  # noqa: E402

from ambiguity.errors import ExtractorError, ModelNotFoundError  # noqa: E402
from ambiguity.extractors.base import Empty, Failure  # noqa: E402
from ambiguity.extractors.transcript import Transcript, fill_transcripts  # noqa: E402
from ambiguity.inputs import SegmentInput  # noqa: E402


@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory):
    return tiny_whisper.build(tmp_path_factory.mktemp("tiny-whisper"))


def sound(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.1 * np.sin(2 * np.pi * rng.uniform(100, 300) * t) + rng.normal(0, 0.02, len(t))).astype(np.float32)


def seg(sid: str, x: np.ndarray) -> SegmentInput:
    return SegmentInput(sid, None, _audio_loader=lambda s, rate: x)


def test_language_text_and_word_times(whisper_dir):
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    x = sound(2.0, 0)
    [r] = Transcript(model=str(whisper_dir), device="cpu", max_new_tokens=6).process([seg("a", x)])
    assert isinstance(r, dict), r
    # Reference: the language as Whisper defines detection, written out here: softmax over the
    # language tokens of the first decoder step after <|startoftranscript|>.
    model = WhisperForConditionalGeneration.from_pretrained(whisper_dir).eval()
    feats = WhisperProcessor.from_pretrained(whisper_dir).feature_extractor(x, sampling_rate=RATE, return_tensors="pt").input_features
    with torch.no_grad():
        logits = model(input_features=feats, decoder_input_ids=torch.tensor([[model.config.decoder_start_token_id]])).logits[0, -1]
    lang_ids = model.generation_config.lang_to_id
    probs = torch.softmax(logits[list(lang_ids.values())], -1)
    assert r["language"] == list(lang_ids)[int(probs.argmax())].strip("<|>")
    assert r["language_prob"] == pytest.approx(float(probs.max()), abs=1e-5)
    assert r["text"] and r["n_tokens"] >= 1
    assert "".join(r["words"]).replace(" ", "") == r["text"].replace(" ", "")
    assert all(0 <= a <= b <= 2.0 for a, b in zip(r["word_start"], r["word_end"], strict=True))
    assert r["word_start"] == sorted(r["word_start"])


def test_language_given_is_used(whisper_dir):
    [r] = Transcript(model=str(whisper_dir), device="cpu", language="de", max_new_tokens=4).process([seg("a", sound(1.0, 1))])
    assert isinstance(r, dict) and r["language"] == "de" and math.isnan(r["language_prob"])
    with pytest.raises(ExtractorError, match="knows de, en"):
        Transcript(model=str(whisper_dir), device="cpu", language="fr").setup()


def test_bad_segments_fail_or_are_empty(whisper_dir):
    ex = Transcript(model=str(whisper_dir), device="cpu", language="en", max_new_tokens=4)
    r = ex.process([seg("long", sound(31.0, 2)), seg("silent", np.zeros(RATE, np.float32)), seg("short", sound(0.05, 3))])
    assert isinstance(r[0], Failure) and "30 s" in r[0].reason
    assert isinstance(r[1], Empty)
    assert isinstance(r[2], Failure)
    quiet = np.random.default_rng(4).normal(0, 1e-4, 2 * RATE).astype(np.float32)
    [r] = ex.process([seg("quiet", quiet)])
    assert isinstance(r, Empty) and "no speech" in r.reason
    [r] = Transcript(model=str(whisper_dir), device="cpu", language="en", max_new_tokens=4, require_speech=False).process([seg("quiet", quiet)])
    assert isinstance(r, (dict, Empty)) and not (isinstance(r, Empty) and "no speech" in r.reason)


def test_a_directory_that_is_not_whisper_is_refused(tmp_path, roberta_dir):
    with pytest.raises(ModelNotFoundError, match="roberta model, not Whisper"):
        Transcript(model=str(roberta_dir))
    with pytest.raises(ModelNotFoundError, match="config.json"):
        Transcript(model=str(tmp_path))
    with pytest.raises(ExtractorError, match="needs a Whisper model"):
        Transcript()


def test_manifest_without_transcripts_goes_to_quadrants(tmp_path, whisper_dir, roberta_dir, ingest_rows, store):
    """ASR -> text embeddings -> train -> quadrants, from a manifest with audio and labels only."""
    from ambiguity.extractors.prosody import Prosody
    from ambiguity.extractors.runner import run
    from ambiguity.extractors.text import TextEmbedder
    from ambiguity.models.spec import TrainConfig
    from ambiguity.models.training import train
    from ambiguity.stats.quadrant_tables import quadrants

    splits = ["train"] * 12 + ["val"] * 4 + ["test"] * 8
    rows = []
    for i, split in enumerate(splits):
        path = write_wav(tmp_path / f"{i}.wav", sound(1.0 + (i % 3) * 0.5, 10 + i))
        rows.append({"segment_id": f"s{i:02d}", "media": path, "label": str(i % 2), "split": split})
    rows[0]["transcript"] = "a transcript the manifest gave"
    ingest_rows(rows)

    asr = Transcript(model=str(whisper_dir), device="cpu", language="en", max_new_tokens=6)
    rep = run(store, asr, progress=False, workers=1)
    assert rep.ok == len(rows)
    assert fill_transcripts(store, asr.default_group()) == len(rows) - 1
    segs = store.segments().sort("segment_id")
    meta = [json.loads(m) for m in segs["metadata"]]
    assert meta[0]["transcript_source"] == "manifest" and segs["transcript"][0] == "a transcript the manifest gave"
    assert all(m["transcript_source"].startswith(f"asr:{whisper_dir} sha256:") and m["language"] == "en" for m in meta[1:])
    assert all(t for t in segs["transcript"])

    text = TextEmbedder(model=str(roberta_dir), device="cpu")
    assert run(store, text, progress=False, workers=1).ok == len(rows)
    assert run(store, Prosody(), progress=False, workers=1).ok == len(rows)
    train(store, [text.default_group(), "prosody"], config=TrainConfig(epochs=2, seed=0, device="cpu"))
    q = quadrants(store, text.default_group(), "fusion")
    assert q.frame.height == 8  # the test split
    assert set(q.counts) <= {"red", "green", "blue", "yellow"} and sum(q.counts.values()) == 8


def test_extract_transcript_fills_missing_transcripts_from_the_cli(tmp_path, whisper_dir, ingest_rows, store):
    from click.testing import CliRunner

    from ambiguity.cli import main

    rows = [{"segment_id": f"s{i}", "media": write_wav(tmp_path / f"{i}.wav", sound(1.0, 30 + i)), "label": "a"} for i in range(3)]
    rows[0]["transcript"] = "given"
    ingest_rows(rows)
    r = CliRunner().invoke(main, ["--store", store.uri, "extract", "--extractor", "transcript", "--model", str(whisper_dir),
                                  "--param", "language=en", "--param", "max_new_tokens=4", "--device", "cpu", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "2 segment(s) without a transcript now have the ASR text" in r.output
    segs = store.segments().sort("segment_id")
    assert segs["transcript"][0] == "given" and all(segs["transcript"].to_list())
