"""Tiny randomly initialised models of the real architectures, saved the way users save models.

Nothing here touches the hub: configs come from ``transformers`` config classes,
the tokenizer is trained offline with ``tokenizers`` on the essays in
examples/data, and each model is written with ``save_pretrained`` to a folder
that the extractors then load by path, as a user's local model would be.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

DATA = Path(__file__).resolve().parents[2] / "examples" / "data"


def corpus(n: int = 300) -> list[str]:
    df = pl.read_csv(DATA / "empathic-reactions" / "messages.csv", infer_schema=False, n_rows=n)
    return df["essay"].to_list()


def train_tokenizer(out: Path, vocab_size: int = 400, model_max_length: int = 64):
    """A byte-level BPE tokenizer with RoBERTa's special tokens, trained here, saved to ``out``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(corpus(), trainer)
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", bos), ("</s>", eos)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        model_max_length=model_max_length,
    )
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out)
    return fast


def _seeded(seed: int = 0) -> None:
    import torch

    torch.manual_seed(seed)


def text_model(kind: str, out: Path, *, hidden: int = 32, layers: int = 2, max_length: int = 64) -> Path:
    """A tiny RoBERTa or DeBERTa-v2 encoder plus the trained tokenizer in ``out``."""
    from transformers import AutoModel, DebertaV2Config, RobertaConfig

    tok = train_tokenizer(out, model_max_length=max_length)
    common = dict(
        vocab_size=len(tok),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=64,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    if kind == "roberta":
        cfg = RobertaConfig(max_position_embeddings=max_length + tok.pad_token_id + 1, **common)
    elif kind == "deberta-v2":
        cfg = DebertaV2Config(max_position_embeddings=max_length, relative_attention=True, position_biased_input=False, **common)
    else:
        raise ValueError(kind)
    _seeded()
    AutoModel.from_config(cfg).save_pretrained(out)
    return out


def audio_config(kind: str, **kw):
    from transformers import HubertConfig, Wav2Vec2Config

    tiny = dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
    )
    tiny.update(kw)
    if kind == "hubert":  # hubert-base style: group norm over time, no attention mask
        return HubertConfig(feat_extract_norm="group", do_stable_layer_norm=False, **tiny)
    if kind == "wav2vec2":  # wav2vec2-large(-robust) style: layer norm, takes an attention mask
        return Wav2Vec2Config(feat_extract_norm="layer", do_stable_layer_norm=True, **tiny)
    raise ValueError(kind)


def feature_extractor(out: Path, *, mask: bool) -> None:
    from transformers import Wav2Vec2FeatureExtractor

    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True, return_attention_mask=mask
    ).save_pretrained(out)


def audio_model(kind: str, out: Path) -> Path:
    """A tiny HuBERT (group norm) or wav2vec2 (layer norm) encoder plus its feature extractor."""
    from transformers import AutoModel

    cfg = audio_config(kind)
    _seeded()
    AutoModel.from_config(cfg).save_pretrained(out)
    feature_extractor(out, mask=cfg.feat_extract_norm == "layer")
    return out


def model_card_class():
    """The regressor as the published model card writes it (audeering/wav2vec2-large-robust-12-ft-emotion-msp-dim,
    README "Usage": EmotionModel = Wav2Vec2PreTrainedModel with `wav2vec2` and a RegressionHead `classifier`
    of dense -> tanh -> out_proj, fed the mean of the last hidden states). Written here, independently of
    ambiguity.extractors.vad, so that the tests check our class against the published architecture."""
    import torch
    from torch import nn
    from transformers.models.wav2vec2.modeling_wav2vec2 import Wav2Vec2Model, Wav2Vec2PreTrainedModel

    class RegressionHead(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.dense = nn.Linear(config.hidden_size, config.hidden_size)
            self.dropout = nn.Dropout(config.final_dropout)
            self.out_proj = nn.Linear(config.hidden_size, config.num_labels)

        def forward(self, features):
            x = self.dropout(features)
            x = torch.tanh(self.dense(x))
            x = self.dropout(x)
            return self.out_proj(x)

    class EmotionModel(Wav2Vec2PreTrainedModel):
        def __init__(self, config):
            super().__init__(config)
            self.config = config
            self.wav2vec2 = Wav2Vec2Model(config)
            self.classifier = RegressionHead(config)
            self.post_init()

        def forward(self, input_values):
            hidden_states = self.wav2vec2(input_values)[0]
            hidden_states = torch.mean(hidden_states, dim=1)
            return hidden_states, self.classifier(hidden_states)

    return EmotionModel


def vad_model(out: Path, *, id2label: dict[int, str] | None = None, bias: tuple[float, ...] | None = None) -> Path:
    """A tiny regressor of the published architecture; ``bias`` hand-sets the head (zero weights, these biases)."""
    import torch

    id2label = id2label or {0: "arousal", 1: "dominance", 2: "valence"}
    cfg = audio_config("wav2vec2", num_labels=3, id2label=id2label, label2id={v: k for k, v in id2label.items()})
    _seeded()
    model = model_card_class()(cfg)
    if bias is not None:
        with torch.no_grad():
            model.classifier.out_proj.weight.zero_()
            model.classifier.out_proj.bias.copy_(torch.tensor(bias))
    model.save_pretrained(out)
    feature_extractor(out, mask=True)
    return out


def video_model(kind: str, out: Path, *, image_size: int = 32, frames: int = 4) -> Path:
    """A tiny VideoMAE or TimeSformer plus a VideoMAE image-processor config (shortest edge, crop)."""
    from transformers import AutoModel, TimesformerConfig, VideoMAEConfig
    from transformers.models.videomae.image_processing_pil_videomae import VideoMAEImageProcessorPil

    common = dict(
        image_size=image_size,
        patch_size=8,
        num_frames=frames,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
    )
    if kind == "videomae":
        cfg = VideoMAEConfig(tubelet_size=2, use_mean_pooling=True, **common)
    elif kind == "timesformer":
        cfg = TimesformerConfig(**common)
    else:
        raise ValueError(kind)
    _seeded()
    AutoModel.from_config(cfg).save_pretrained(out)
    VideoMAEImageProcessorPil(
        size={"shortest_edge": image_size + 8}, crop_size={"height": image_size, "width": image_size}
    ).save_pretrained(out)
    return out
