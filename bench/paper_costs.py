"""Per-segment compute of the paper's six encoders at their published sizes (randomly initialised).

Cost does not depend on the weights' values, so a model built from the published
architecture's config (no download) measures what a real checkpoint costs. For
each: one fine-tuning step of the paper's recipe (last two layers and the head
trainable) and one forward pass for embedding extraction, per segment, on this
machine's CPU. Inputs: TEXT_TOKENS tokens, AUDIO_S seconds of 16 kHz audio, the
model's own number of 224x224 frames. Decoding is not included (see
docs/scaling.md for decode costs). Prints a JSON list; docs/reproduce-paper.md
turns it into time estimates for the paper's 1,718 segments.

    .venv/bin/python bench/paper_costs.py [text|audio|video ...]

Besides seconds, each row has the GFLOP per segment that torch's FlopCounterMode
counts during the warm-up call (matrix products and convolutions): the
machine-independent part, from which GPU times are estimated.
"""

from __future__ import annotations

import json
import sys
import time

TEXT_TOKENS, AUDIO_S, BATCH = 64, 5.0, 2


def configs():
    from transformers import (
        DebertaV2Config,
        HubertConfig,
        RobertaConfig,
        TimesformerConfig,
        VideoMAEConfig,
        Wav2Vec2Config,
    )

    return {
        # FacebookAI/roberta-base and microsoft/deberta-v3-base (their config.json values)
        "roberta-base": ("text", RobertaConfig(vocab_size=50265, max_position_embeddings=514, type_vocab_size=1)),
        "deberta-v3-base": ("text", DebertaV2Config(
            vocab_size=128100, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
            max_position_embeddings=512, relative_attention=True, position_buckets=256, norm_rel_ebd="layer_norm",
            share_att_key=True, pos_att_type=["p2c", "c2p"], position_biased_input=False, max_relative_positions=-1)),
        "hubert-base-ls960": ("audio", HubertConfig()),  # the defaults are the base model
        "wav2vec2-base": ("audio", Wav2Vec2Config()),
        "videomae-base": ("video", VideoMAEConfig()),  # 16 frames, 224 px, tubelet 2
        "timesformer-base": ("video", TimesformerConfig()),  # 8 frames, 224 px
    }


def inputs(modality, cfg, n):
    import torch

    if modality == "text":
        return {"input_ids": torch.randint(5, 1000, (n, TEXT_TOKENS)), "attention_mask": torch.ones(n, TEXT_TOKENS, dtype=torch.long)}
    if modality == "audio":
        return {"input_values": torch.randn(n, int(AUDIO_S * 16000))}
    return {"pixel_values": torch.randn(n, cfg.num_frames, 3, cfg.image_size, cfg.image_size)}


def measure(name, modality, cfg, reps=2):
    import torch
    import transformers as T

    from ambiguity.models.finetune import freeze_all_but_last

    auto = {"text": T.AutoModelForSequenceClassification, "audio": T.AutoModelForAudioClassification,
            "video": T.AutoModelForVideoClassification}[modality]
    cfg.num_labels = 2
    torch.manual_seed(0)
    net = auto.from_config(cfg)
    trainable, total, _ = freeze_all_but_last(net, 2)
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=5e-6)
    x, y = inputs(modality, cfg, BATCH), torch.zeros(BATCH, dtype=torch.long)

    def step():
        net.train()
        loss = torch.nn.functional.cross_entropy(net(**x).logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def forward():
        net.eval()
        with torch.inference_mode():
            net(**x)

    out = {"model": name, "modality": modality, "parameters": total, "trainable": trainable, "batch": BATCH,
           "threads": torch.get_num_threads()}
    from torch.utils.flop_counter import FlopCounterMode

    for key, fn in (("train_step_s_per_segment", step), ("forward_s_per_segment", forward)):
        with FlopCounterMode(display=False) as fc:
            fn()  # warm-up, counted
        out[key.replace("_s_", "_gflop_")] = fc.get_total_flops() / 1e9 / BATCH
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) / BATCH)
        out[key] = sorted(times)[len(times) // 2]
    return out


def main(argv):
    want = set(argv) or {"text", "audio", "video"}
    rows = []
    for name, (modality, cfg) in configs().items():
        if modality in want:
            rows.append(measure(name, modality, cfg))
            print(json.dumps(rows[-1]), flush=True)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
