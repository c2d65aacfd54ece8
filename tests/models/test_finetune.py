"""Fine-tuning with the paper's recipe on a tiny RoBERTa (CPU), and its use by the text extractor."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "extractors"))
import tiny_models  # noqa: E402  (tiny random models of the real architectures, saved by path)

from ambiguity.errors import ConfigError, ModelError  # noqa: E402
from ambiguity.models.finetune import FinetuneConfig, finetune, freeze_all_but_last  # noqa: E402
from ambiguity.stores import schema as S  # noqa: E402

ESSAYS = Path(__file__).resolve().parents[2] / "examples" / "data" / "empathic-reactions" / "messages.csv"


@pytest.fixture(scope="module")
def roberta4(tmp_path_factory) -> Path:
    return tiny_models.text_model("roberta", tmp_path_factory.mktemp("rob") / "roberta", layers=4, max_length=64)


def _essay_store(store, n=40):
    df = pl.read_csv(ESSAYS, infer_schema=False, n_rows=n)
    split = ["train"] * (n - 16) + ["val"] * 8 + ["test"] * 8
    store.upsert_segments(pa.table({
        "segment_id": df["message_id"].to_list(), "media": [None] * n, "audio": [None] * n, "start_s": [None] * n,
        "end_s": [None] * n, "transcript": df["essay"].to_list(), "label": df["empathy_bin"].to_list(),
        "split": split, "metadata": ["{}"] * n}, schema=S.SEGMENTS_SCHEMA))
    return store


def _weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def test_finetune_trains_only_the_last_two_layers_and_the_head(store, roberta4, tmp_path):
    _essay_store(store)
    out = tmp_path / "ft"
    rep = finetune(store, str(roberta4), out, FinetuneConfig(epochs=2, max_length=64, device="cpu", batch_size=8))
    assert rep.n_train == 24 and rep.n_val == 8 and len(rep.history) == 2
    assert rep.classes == ("0", "1")
    before, after = _weights(roberta4), _weights(out)
    changed, same = set(), set()
    for k, v in before.items():
        k2 = k if k in after else f"roberta.{k}"
        if k2 not in after:
            continue  # the pooler: not part of a classifier
        (same if torch.equal(v, after[k2]) else changed).add(k)
    layer = lambda k: int(k.split("encoder.layer.")[1].split(".")[0]) if "encoder.layer." in k else None  # noqa: E731
    # Embeddings and layers 0-1 are frozen: nothing outside layers 2-3 moved ...
    assert changed and all(layer(k) in (2, 3) for k in changed), sorted(changed)
    # ... and every weight matrix of layers 2-3 did.
    assert not [k for k in same if layer(k) in (2, 3) and k.endswith("weight") and "LayerNorm" not in k]
    # The trainable count is the last two blocks plus the classification head, counted here independently.
    from transformers import AutoModelForSequenceClassification

    ref = AutoModelForSequenceClassification.from_pretrained(str(out))
    expect = sum(p.numel() for n, p in ref.named_parameters()
                 if n.startswith(("roberta.encoder.layer.2.", "roberta.encoder.layer.3.", "classifier.")))
    assert rep.trainable == expect
    meta = json.loads((out / "finetune.json").read_text())
    assert meta["recipe"]["lr"] == 5e-6 and meta["best_epoch"] == rep.best_epoch


def test_the_text_extractor_embeds_with_the_finetuned_model(store, roberta4, tmp_path):
    from ambiguity.extractors.runner import run
    from ambiguity.extractors.text import TextEmbedder

    _essay_store(store, n=24)
    out = tmp_path / "ft"
    finetune(store, str(roberta4), out, FinetuneConfig(epochs=1, max_length=64, device="cpu"))
    report = run(store, TextEmbedder(model=str(out), max_length=64, device="cpu"), group="text.ft", progress=False)
    assert report.failed == 0
    ids, X = store.vectors("text.ft")
    assert X.shape == (24, 32)


def test_freeze_on_an_audio_encoder(tmp_path):
    from transformers import AutoModelForAudioClassification

    path = tiny_models.audio_model("hubert", tmp_path / "hubert")
    net = AutoModelForAudioClassification.from_pretrained(str(path), num_labels=2)
    trainable, total, what = freeze_all_but_last(net, 1)
    assert "encoder.layers[1:2] of 2" in what
    names = {n for n, p in net.named_parameters() if p.requires_grad}
    assert all(n.startswith(("hubert.encoder.layers.1.", "projector.", "classifier.")) for n in names), names
    assert not any("feature_extractor" in n for n in names)


def test_errors(store, roberta4, tmp_path):
    with pytest.raises(ConfigError):
        FinetuneConfig(modality="smell")
    out = tmp_path / "full"
    out.mkdir()
    (out / "x").write_text("keep me")
    _essay_store(store, n=20)
    with pytest.raises(ConfigError, match="not empty"):
        finetune(store, str(roberta4), out)
    store.upsert_segments(store.segments().with_columns(pl.lit("train").alias("split")).to_arrow().cast(S.SEGMENTS_SCHEMA))
    with pytest.raises(ModelError, match="train and val"):
        finetune(store, str(roberta4), tmp_path / "new")


def _media_store(store, rows):
    n = len(rows)
    store.upsert_segments(pa.table({
        "segment_id": [r[0] for r in rows], "media": [r[1] for r in rows], "audio": [None] * n,
        "start_s": [r[2] for r in rows], "end_s": [r[3] for r in rows], "transcript": [None] * n,
        "label": [r[4] for r in rows], "split": [r[5] for r in rows], "metadata": ["{}"] * n}, schema=S.SEGMENTS_SCHEMA))
    return store


def test_finetune_audio_and_video_models(store, tmp_path, speech_dir, faces_dir):
    """Audio decodes the segment at 16 kHz, video samples the model's frames; both save a usable directory."""
    from transformers import AutoModel

    splits = ["train", "train", "train", "train", "val", "val"]
    wavs = [(f"a{i}", str(speech_dir / f"{i:02d}.wav"), None, None, "hi" if i % 2 else "lo", s) for i, s in enumerate(splits)]
    _media_store(store, wavs)
    hub = tiny_models.audio_model("hubert", tmp_path / "hubert")
    rep = finetune(store, str(hub), tmp_path / "hub-ft", FinetuneConfig(modality="audio", epochs=1, max_seconds=2.0, device="cpu"))
    assert rep.n_train == 4 and "encoder.layers[0:2]" in rep.layers
    assert (tmp_path / "hub-ft" / "preprocessor_config.json").is_file()
    AutoModel.from_pretrained(str(tmp_path / "hub-ft"))

    clip = str(faces_dir / "single_face.mp4")
    vids = [(f"v{i}", clip, 0.4 * i, 0.4 * i + 0.4, "x" if i % 2 else "y", s) for i, s in enumerate(splits)]
    store.delete("segments", "segment_id LIKE 'a%'")
    _media_store(store, vids)
    vm = tiny_models.video_model("videomae", tmp_path / "videomae")
    rep = finetune(store, str(vm), tmp_path / "vm-ft", FinetuneConfig(modality="video", epochs=1, device="cpu"))
    assert rep.n_val == 2 and rep.classes == ("x", "y")
    assert (tmp_path / "vm-ft" / "preprocessor_config.json").is_file()
    AutoModel.from_pretrained(str(tmp_path / "vm-ft"))


def test_predictions_of_every_split_and_a_broken_segment_is_left_out(store, tmp_path, speech_dir):
    """The kept classifier predicts train, val and test; an unreadable file fails alone, with its reason."""
    from ambiguity.models.finetune import write_finetuned_predictions
    from ambiguity.models.predictions import read_predictions

    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00not audio at all")
    splits = ["train"] * 4 + ["val"] * 2 + ["test"] * 2
    rows = [(f"a{i}", str(speech_dir / f"{i:02d}.wav"), None, None, "hi" if i % 2 else "lo", s) for i, s in enumerate(splits)]
    rows.append(("bad", str(broken), None, None, "hi", "train"))
    _media_store(store, rows)
    hub = tiny_models.audio_model("hubert", tmp_path / "hubert")
    rep = finetune(store, str(hub), tmp_path / "ft", FinetuneConfig(modality="audio", epochs=2, max_seconds=2.0, device="cpu"))
    assert [sid for sid, _ in rep.failures] == ["bad"] and rep.failures[0][1]
    assert sorted(rep.segment_ids) == [f"a{i}" for i in range(8)]
    assert write_finetuned_predictions(store, rep, "audio.ft", "audio") == 8
    pred = read_predictions(store, ["audio.ft"])
    assert set(pred["kind"]) == {"finetuned"} and sorted(set(pred["split"])) == ["test", "train", "val"]
    # p_correct is the probability of the true label, from the stored class probabilities.
    for r in pred.iter_rows(named=True):
        assert r["p_correct"] == pytest.approx(r["probs"][r["classes"].index(r["label"])], abs=1e-6)
    # The stored val accuracy is the kept epoch's, as the pipeline's best-model choice reads it.
    val = pred.filter(pl.col("split") == "val")
    assert float((val["predicted"] == val["label"]).mean()) == pytest.approx(rep.val_accuracy)


def test_no_backward_through_the_frozen_conv_encoder(tmp_path):
    """A train step's FLOPs minus a forward's are the backward of the trainable part only (counted by torch)."""
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import AutoModelForAudioClassification

    path = tiny_models.audio_model("wav2vec2", tmp_path / "w2v")
    net = AutoModelForAudioClassification.from_pretrained(str(path), num_labels=2)
    freeze_all_but_last(net, 1)
    x = torch.randn(2, 16000)
    net.train()
    with FlopCounterMode(display=False) as fwd:
        with torch.no_grad():
            net(input_values=x)
    with FlopCounterMode(display=False) as conv:
        with torch.no_grad():
            net.wav2vec2.feature_extractor(x)
    with FlopCounterMode(display=False) as step:
        net(input_values=x).logits.sum().backward()
    backward = step.get_total_flops() - fwd.get_total_flops()
    assert backward < conv.get_total_flops()  # backward through the convolutions alone would cost ~2x their forward
