"""`vad`: the Wagner et al. (2023) regressor; checkpoints written by the model card's own class load into it."""

from __future__ import annotations

import numpy as np
import pytest
import tiny_models
import torch
from click.testing import CliRunner

from ambiguity.cli import main
from ambiguity.errors import ExtractorError
from ambiguity.extractors.vad import VAD
from ambiguity.inputs import SegmentInput
from ambiguity.media import load_segment_audio


@pytest.fixture(scope="module")
def vad_dir(tiny_dir):
    return tiny_models.vad_model(tiny_dir / "vad")


def clips(speech_dir, n=8):
    return [SegmentInput(segment_id=f"c{i:02d}", media=str(speech_dir / f"{i:02d}.wav")) for i in range(n)]


def test_checkpoint_loads_with_every_key_and_matches_the_model_card(vad_dir, speech_dir):
    from ambiguity.extractors.vad import model_class

    # Our class takes the published parameter names: nothing missing, nothing unexpected.
    _, info = model_class().from_pretrained(str(vad_dir), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info

    ex = VAD(model=str(vad_dir), embedding=True, device="cpu")
    segs = clips(speech_dir)
    batch = ex.process(segs)
    single = [ex.process([s])[0] for s in segs]
    cols = ("valence", "arousal", "dominance")
    b = np.array([[r[c] for c in cols] for r in batch])
    s = np.array([[r[c] for c in cols] for r in single])
    np.testing.assert_allclose(b, s, atol=1e-5)  # batch of 8 == one by one
    assert batch[0]["vector"].shape == (32,) and batch[0]["vector"].dtype == np.float32

    # Reference: the model card's process_func: processor, EmotionModel (its class), [arousal, dominance, valence].
    from transformers import Wav2Vec2FeatureExtractor

    card = tiny_models.model_card_class().from_pretrained(str(vad_dir)).eval()
    fe = Wav2Vec2FeatureExtractor.from_pretrained(str(vad_dir))
    for i in (0, 4):
        x = load_segment_audio(segs[i], 16000)
        y = torch.tensor(fe(x, sampling_rate=16000)["input_values"][0]).reshape(1, -1)
        with torch.no_grad():
            pooled, logits = card(y)
        a, d, v = logits[0].tolist()
        np.testing.assert_allclose([batch[i]["arousal"], batch[i]["dominance"], batch[i]["valence"]], [a, d, v], atol=1e-5)
        np.testing.assert_allclose(batch[i]["vector"], pooled[0].numpy(), atol=1e-5)


@pytest.mark.parametrize(
    "id2label,want",
    [
        # The published head order: out 0 = arousal, 1 = dominance, 2 = valence.
        ({0: "arousal", 1: "dominance", 2: "valence"}, {"arousal": 0.1, "dominance": 0.2, "valence": 0.3}),
        # A checkpoint whose config orders the head differently is mapped by its id2label.
        ({0: "valence", 1: "arousal", 2: "dominance"}, {"valence": 0.1, "arousal": 0.2, "dominance": 0.3}),
    ],
)
def test_column_mapping_with_a_hand_set_head(tmp_path, speech_dir, id2label, want):
    # Zero weights: each output is exactly its bias, whatever the audio.
    d = tiny_models.vad_model(tmp_path / "vad", id2label=id2label, bias=(0.1, 0.2, 0.3))
    row = VAD(model=str(d), device="cpu").process(clips(speech_dir, 1))[0]
    assert set(row) == {"valence", "arousal", "dominance"}
    for k, v in want.items():
        assert row[k] == pytest.approx(v, abs=1e-6)


def test_needs_a_model():
    with pytest.raises(ExtractorError, match="Wagner"):
        VAD()


def test_cli_extract(store, ingest_rows, vad_dir, speech_dir):
    ingest_rows([{"segment_id": f"c{i:02d}", "media": str(speech_dir / f"{i:02d}.wav")} for i in range(4)])
    args = ["--store", store.uri, "extract", "--extractor", "vad", "--model", str(vad_dir), "--device", "cpu", "--quiet"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0 and "4 processed (4 ok" in r.output, r.output
    df = store.features("vad")
    assert set(df.columns) == {"segment_id", "status", "error", "valence", "arousal", "dominance"}
    assert store.groups()["vad"]["head_order"] == ["arousal", "dominance", "valence"]
