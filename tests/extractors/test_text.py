"""`text`: tiny RoBERTa and DeBERTa-v2 loaded by path, checked against transformers run directly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ambiguity.cli import main
from ambiguity.errors import ExtractorError
from ambiguity.extractors.base import Empty, Failure
from ambiguity.extractors.runner import run
from ambiguity.extractors.text import TextEmbedder
from ambiguity.inputs import SegmentInput

# Texts of many lengths (1 to ~60 tokens), so that a batch pads.
WORDS = "i feel so sad for the families of the people who drowned in the sea and i hope they find peace".split()
TEXTS = [" ".join(WORDS[: k]) for k in (1, 3, 20, 7, 2, 12, 5, 16, 9, 4)]


def segs(texts):
    return [SegmentInput(segment_id=f"t{i}", media=None, transcript_value=t) for i, t in enumerate(texts)]


def reference(model_dir, text, *, pooling="mean", layer=-1, max_length=64):
    """transformers directly on one unpadded text: the pooled vector we must reproduce."""
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    enc = tok(text, return_tensors="pt", truncation=True, max_length=max_length)
    with torch.no_grad():
        out = model(**enc, output_hidden_states=True)
    h = out.hidden_states[layer] if layer != -1 else out.last_hidden_state
    return (h[0, 0] if pooling == "cls" else h[0].mean(0)).numpy()


@pytest.mark.parametrize("arch", ["roberta", "deberta"])
@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_batch_invariance_and_reference(arch, pooling, request):
    d = request.getfixturevalue(f"{arch}_dir")
    ex = TextEmbedder(model=str(d), pooling=pooling, device="cpu")
    batch = np.stack([r["vector"] for r in ex.process(segs(TEXTS[:8]))])
    single = np.stack([ex.process([s])[0]["vector"] for s in segs(TEXTS[:8])])
    assert batch.shape == (8, 32) and batch.dtype == np.float32
    # A batch of 8 (padded, masked) equals one by one: catches padding and mask bugs.
    np.testing.assert_allclose(batch, single, atol=1e-5)
    # Reference: AutoModel on each unpadded text, pooled by hand (torch, no ambiguity code).
    for i in (0, 2, 5):
        np.testing.assert_allclose(batch[i], reference(str(d), TEXTS[i], pooling=pooling), atol=1e-5)


def test_padding_matters_so_the_invariance_test_can_fail(roberta_dir):
    """Mean pooling without the mask over a padded batch differs: the invariance check above has teeth."""
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(roberta_dir))
    model = AutoModel.from_pretrained(str(roberta_dir)).eval()
    enc = tok(TEXTS[:2], padding=True, return_tensors="pt")
    with torch.no_grad():
        unmasked = model(**enc).last_hidden_state[0].mean(0).numpy()
    assert np.abs(unmasked - reference(str(roberta_dir), TEXTS[0])).max() > 1e-3


def test_layer_truncation_determinism(roberta_dir):
    from transformers import AutoTokenizer

    long = " ".join(WORDS * 5)
    ex = TextEmbedder(model=str(roberta_dir), layer=1, max_length=16, device="cpu")
    a = ex.process(segs([long, "i feel sad"]))
    b = ex.process(segs([long, "i feel sad"]))
    np.testing.assert_array_equal(a[0]["vector"], b[0]["vector"])  # deterministic
    tok = AutoTokenizer.from_pretrained(str(roberta_dir))
    # n_tokens as the tokenizer counts them (with <s> and </s>), cut at max_length.
    assert a[0]["n_tokens"] == 16 and a[0]["truncated"] is True
    assert a[1]["n_tokens"] == len(tok("i feel sad")["input_ids"]) and a[1]["truncated"] is False
    np.testing.assert_allclose(a[0]["vector"], reference(str(roberta_dir), long, layer=1, max_length=16), atol=1e-5)


def test_missing_and_flagged_transcripts(roberta_dir):
    ex = TextEmbedder(model=str(roberta_dir), device="cpu")
    bad = SegmentInput(segment_id="b", media=None, transcript_value="x\ufffd", metadata={"_transcript_error": "not UTF-8"})
    out = ex.process([SegmentInput(segment_id="e", media=None, transcript_value="  "), bad, segs(["hello"])[0]])
    assert isinstance(out[0], Empty) and isinstance(out[1], Failure) and out[1].reason == "not UTF-8"
    assert out[2]["vector"].shape == (32,)


def test_needs_a_model_and_checks_layer(roberta_dir):
    with pytest.raises(ExtractorError, match="needs a model"):
        TextEmbedder()
    with pytest.raises(ExtractorError, match="layer=7"):
        TextEmbedder(model=str(roberta_dir), layer=7, device="cpu").setup()


def test_runner_store_provenance_and_resume(store, ingest_rows, deberta_dir):
    ingest_rows([{"segment_id": f"s{i}", "transcript": t, "label": str(i % 2)} for i, t in enumerate(TEXTS)])
    ex = TextEmbedder(model=str(deberta_dir), device="cpu")
    first = run(store, ex, limit=4, batch_size=3, progress=False)
    second = run(store, TextEmbedder(model=str(deberta_dir), device="auto"), batch_size=3, progress=False)
    # device is not part of the configuration: a run resumed elsewhere continues the group.
    assert (first.ok, second.ok, second.skipped) == (4, 6, 4)
    ids, vecs = store.vectors("text.deberta-v2")
    assert vecs.shape == (10, 32) and vecs.dtype == np.float32
    direct = {s.segment_id: r["vector"] for s, r in zip(segs(TEXTS), ex.process(segs(TEXTS)), strict=True)}
    for sid, v in zip(ids, vecs, strict=True):
        np.testing.assert_allclose(v, direct["t" + sid[1:]], atol=1e-5)
    prov = store.groups()["text.deberta-v2"]
    assert prov["model_path"] == str(deberta_dir.resolve())
    assert len(prov["weights_sha256"]) == 64 and prov["pooling"] == "mean" and prov["layer"] == -1
    assert prov["dtype"] == "float32" and prov["max_length"] == 64 and prov["revision"] is None


def test_cli_extract_resumes(store, ingest_rows, roberta_dir):
    ingest_rows([{"segment_id": f"s{i}", "transcript": t} for i, t in enumerate(TEXTS)])
    args = ["--store", store.uri, "extract", "--extractor", "text", "--model", str(roberta_dir), "--device", "cpu", "--quiet"]
    r1 = CliRunner().invoke(main, [*args, "--limit", "6"])
    r2 = CliRunner().invoke(main, args)
    assert r1.exit_code == 0 and "6 processed (6 ok" in r1.output, r1.output
    assert r2.exit_code == 0 and "4 processed (4 ok" in r2.output and "6 already done" in r2.output, r2.output
    assert store.vectors("text.roberta")[1].shape == (10, 32)
