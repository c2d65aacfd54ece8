"""`audio`: tiny HuBERT (group norm, no mask) and wav2vec2 (layer norm, mask) against transformers directly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ambiguity.cli import main
from ambiguity.extractors.audio import AudioEmbedder
from ambiguity.extractors.base import Empty
from ambiguity.inputs import SegmentInput
from ambiguity.media import load_segment_audio


def clips(speech_dir, n=8):
    return [SegmentInput(segment_id=f"c{i:02d}", media=str(speech_dir / f"{i:02d}.wav")) for i in range(n)]


def reference(model_dir, x: np.ndarray, layer: int = -1) -> np.ndarray:
    """transformers on one unpadded clip: feature extractor, then the mean of a layer's frames."""
    from transformers import AutoFeatureExtractor, AutoModel

    fe = AutoFeatureExtractor.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    inp = torch.tensor(np.asarray(fe(x, sampling_rate=16000)["input_values"][0]))[None]
    with torch.no_grad():
        out = model(inp, output_hidden_states=True)
    h = out.last_hidden_state if layer == -1 else out.hidden_states[layer]
    return h[0].mean(0).numpy()


@pytest.mark.parametrize("arch", ["hubert", "wav2vec2"])
def test_batch_invariance_and_reference(arch, request, speech_dir):
    d = request.getfixturevalue(f"{arch}_dir")
    ex = AudioEmbedder(model=str(d), device="cpu")
    segs = clips(speech_dir)  # 1.5 to 4 s: every clip a different length
    batch = np.stack([r["vector"] for r in ex.process(segs)])
    single = np.stack([ex.process([s])[0]["vector"] for s in segs])
    assert batch.shape == (8, 32) and batch.dtype == np.float32
    np.testing.assert_allclose(batch, single, atol=1e-5)
    for i in (0, 5):
        x = load_segment_audio(segs[i], 16000)
        np.testing.assert_allclose(batch[i], reference(str(d), x), atol=1e-5)


def test_group_norm_model_would_differ_if_padded(hubert_dir, speech_dir):
    """Why hubert-base-style models batch only equal lengths: zero padding changes their output."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(hubert_dir)).eval()
    x = load_segment_audio(clips(speech_dir, 1)[0], 16000)
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    padded = np.concatenate([x, np.zeros(16000, np.float32)])
    with torch.no_grad():
        a = model(torch.tensor(x)[None]).last_hidden_state[0, :10]
        b = model(torch.tensor(padded)[None]).last_hidden_state[0, :10]
    assert (a - b).abs().max() > 1e-3


def test_layer_chunks_and_short_audio(wav2vec2_dir, speech_dir):
    seg = clips(speech_dir)[5]  # 3.8 s
    x = load_segment_audio(seg, 16000)
    ex = AudioEmbedder(model=str(wav2vec2_dir), layer=1, device="cpu")
    np.testing.assert_allclose(ex.process([seg])[0]["vector"], reference(str(wav2vec2_dir), x, layer=1), atol=1e-5)

    # max_seconds=1: chunks of 16000 samples (the last one merged if too short), pooled over all frames.
    from transformers import AutoFeatureExtractor, AutoModel

    fe = AutoFeatureExtractor.from_pretrained(str(wav2vec2_dir))
    model = AutoModel.from_pretrained(str(wav2vec2_dir)).eval()
    xn = np.asarray(fe(x, sampling_rate=16000)["input_values"][0], dtype=np.float32)
    with torch.no_grad():
        frames = [model(torch.tensor(xn[i : i + 16000])[None]).last_hidden_state[0] for i in range(0, len(xn), 16000)]
    want = torch.cat(frames).mean(0).numpy()
    chunked = AudioEmbedder(model=str(wav2vec2_dir), max_seconds=1.0, device="cpu").process([seg])[0]["vector"]
    np.testing.assert_allclose(chunked, want, atol=1e-5)

    short = SegmentInput(segment_id="s", media=seg.media, start_s=0.0, end_s=0.01)  # 160 samples
    assert isinstance(AudioEmbedder(model=str(wav2vec2_dir), device="cpu").process([short])[0], Empty)


def test_cli_extract_resume_and_bad_media(store, ingest_rows, hubert_dir, speech_dir, tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really a wav")
    rows = [{"segment_id": f"c{i:02d}", "media": str(speech_dir / f"{i:02d}.wav")} for i in range(5)]
    ingest_rows([*rows, {"segment_id": "zz", "media": str(bad)}])
    args = ["--store", store.uri, "extract", "--extractor", "audio", "--model", str(hubert_dir), "--device", "cpu", "--quiet"]
    r1 = CliRunner().invoke(main, [*args, "--limit", "3"])
    assert r1.exit_code == 0 and "3 processed" in r1.output, r1.output
    done_first = 3 - r1.output.count("failed zz")  # segments are planned by source path: zz may come first or last
    r2 = CliRunner().invoke(main, args)
    # The broken file fails alone, with the reason; a rerun retries it and does the rest.
    assert f"{6 - done_first} processed" in r2.output and f"{done_first} already done" in r2.output, r2.output
    assert "failed zz: cannot open" in r1.output + r2.output
    st = store.group_status("audio.hubert")
    assert st.filter(st["status"] == "failed")["segment_id"].to_list() == ["zz"]
    assert store.vectors("audio.hubert")[1].shape == (5, 32)
    prov = store.groups()["audio.hubert"]
    assert prov["batching"] == "equal-length chunks only" and prov["layer"] == -1 and prov["sample_rate"] == 16000
