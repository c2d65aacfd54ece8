"""Fine-tune a unimodal encoder with the paper's recipe (its Appendix A.1).

Recipe: a classification head on the encoder, every parameter frozen except
the last two transformer layers and the head, 15 epochs, learning rate 5e-6,
batch size 8 (AdamW), the epoch with the lowest validation loss kept. Data:
the store's segments of split ``train`` (fitting) and ``val`` (choosing the
epoch), with their labels; text reads ``transcript``, audio decodes the
segment at 16 kHz, video samples the model's number of frames.

The result is written with ``save_pretrained`` (plus the tokenizer, feature
extractor or preprocessor config, and ``finetune.json`` with the recipe and
per-epoch history) to a directory that the ``text``, ``audio`` and ``video``
extractors load with ``--model DIR``: their ``AutoModel`` takes the encoder
and ignores the head. Models load offline only (a local directory or the
Hugging Face cache).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ambiguity.constants import MODALITIES
from ambiguity.devices import resolve_device
from ambiguity.errors import ConfigError, ModelError, ModelNotFoundError
from ambiguity.models.train import metrics
from ambiguity.stores.sql import quote

_AUDIO_RATE = 16000


@dataclass(frozen=True)
class FinetuneConfig:
    modality: str = "text"
    epochs: int = 15
    lr: float = 5e-6
    batch_size: int = 8
    trainable_layers: int = 2
    max_length: int = 512  # text: tokens
    max_seconds: float = 20.0  # audio: longer segments are cut
    seed: int = 0
    device: str = "auto"
    limit: int | None = None  # at most this many train (and val) segments: for quick checks

    def __post_init__(self):
        if self.modality not in MODALITIES:
            raise ConfigError(f"modality {self.modality!r}: choose one of {', '.join(MODALITIES)}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError(f"epochs={self.epochs}, batch_size={self.batch_size}, lr={self.lr}: all must be positive")
        if self.trainable_layers < 0:
            raise ConfigError(f"trainable_layers={self.trainable_layers}: use 0 or more")


@dataclass(frozen=True)
class FinetuneReport:
    out: Path
    base_model: str
    classes: tuple[str, ...]
    best_epoch: int
    history: list[dict[str, float]]
    trainable: int
    total: int
    layers: str
    n_train: int
    n_val: int

    def summary(self) -> str:
        last = self.history[self.best_epoch - 1]
        return (
            f"fine-tuned {self.base_model} -> {self.out}: best epoch {self.best_epoch}/{len(self.history)} "
            f"(val loss {last['val_loss']:.4f}, accuracy {last['val_accuracy']:.3f}); "
            f"{self.trainable:,} of {self.total:,} parameters trained ({self.layers}); "
            f"train {self.n_train}, val {self.n_val} segments"
        )


# -- freezing -----------------------------------------------------------------------------------
def transformer_layers(model) -> tuple[str, Any]:
    """The name and ModuleList of the encoder's transformer blocks (the longest ``layer``/``layers`` list)."""
    from torch import nn

    best = None
    for name, mod in model.named_modules():
        if isinstance(mod, nn.ModuleList) and name.split(".")[-1] in ("layer", "layers") and len(mod) > 0:
            if best is None or len(mod) > len(best[1]):
                best = (name, mod)
    if best is None:
        raise ModelError(f"cannot find the transformer layers of {type(model).__name__} (no 'layer' / 'layers' list)")
    return best


def freeze_all_but_last(model, n: int = 2) -> tuple[int, int, str]:
    """Freeze the encoder except its last ``n`` transformer layers; the head stays trainable.

    The head is every parameter outside ``model.base_model``. Returns
    (trainable parameters, all parameters, a description of what trains).
    """
    base = model.base_model
    name, layers = transformer_layers(base)
    for p in base.parameters():
        p.requires_grad = False
    keep = list(layers)[len(layers) - n :] if n else []
    for block in keep:
        for p in block.parameters():
            p.requires_grad = True
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    what = f"{name}[{len(layers) - len(keep)}:{len(layers)}] of {len(layers)} layers + head"
    return trainable, total, what


# -- data ---------------------------------------------------------------------------------------
def _rows(store, split: str, modality: str, limit: int | None) -> list[dict[str, Any]]:
    segs = store.segments(where=f"split = {quote(split)}").filter(_usable(modality)).sort("segment_id")
    return segs.head(limit).to_dicts() if limit else segs.to_dicts()


def _usable(modality: str):
    import polars as pl

    need = pl.col("label").is_not_null()
    if modality == "text":
        return need & pl.col("transcript").is_not_null()
    return need & (pl.col("media").is_not_null() | pl.col("audio").is_not_null())


class _Inputs:
    """Turns segment rows into model inputs for one modality."""

    def __init__(self, modality: str, path: Path, cfg: FinetuneConfig, model_config):
        self.modality, self.cfg = modality, cfg
        if modality == "text":
            from transformers import AutoTokenizer

            self.proc = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        elif modality == "audio":
            from transformers import AutoFeatureExtractor

            self.proc = AutoFeatureExtractor.from_pretrained(str(path), local_files_only=True)
        else:
            from ambiguity.extractors.inference import read_json
            from ambiguity.extractors.video import FrameTransform

            pre = read_json(path / "preprocessor_config.json") or read_json(path / "video_preprocessor_config.json")
            self.proc = FrameTransform.from_config(pre, int(getattr(model_config, "image_size", 224)))
            self.num_frames = int(getattr(model_config, "num_frames", 16))

    def __call__(self, rows: Sequence[dict[str, Any]], device) -> dict[str, Any]:
        import torch

        if self.modality == "text":
            enc = self.proc([r["transcript"] for r in rows], truncation=True, max_length=self.cfg.max_length,
                            padding=True, return_tensors="pt")
            return {k: v.to(device) for k, v in enc.items()}
        from ambiguity.extractors.runner import segment_inputs

        segs = segment_inputs(rows)
        if self.modality == "audio":
            cut = int(self.cfg.max_seconds * _AUDIO_RATE)
            waves = [s.audio(_AUDIO_RATE)[:cut] for s in segs]
            enc = self.proc(waves, sampling_rate=_AUDIO_RATE, padding=True, return_tensors="pt")
            return {k: v.to(device) for k, v in enc.items() if k in ("input_values", "attention_mask")}
        t = self.proc
        clips = []
        for s in segs:
            frames = [t.frame(rgb) for _, rgb in s.frames(num=self.num_frames)]
            if not frames:
                raise ModelError(f"segment {s.segment_id}: no video frames")
            frames += [frames[-1]] * (self.num_frames - len(frames))
            clips.append(np.stack(frames))
        x = torch.from_numpy(np.stack(clips)).permute(0, 1, 4, 2, 3).float()
        if t.rescale is not None:
            x = x * t.rescale
        if t.mean is not None and t.std is not None:
            x = (x - torch.tensor(t.mean).view(1, 1, 3, 1, 1)) / torch.tensor(t.std).view(1, 1, 3, 1, 1)
        return {"pixel_values": x.to(device)}

    def save(self, out: Path, src: Path) -> None:
        if self.modality in ("text", "audio"):
            self.proc.save_pretrained(out)
        else:
            for name in ("preprocessor_config.json", "video_preprocessor_config.json"):
                if (src / name).is_file():
                    shutil.copy(src / name, out / name)


def _auto_class(modality: str):
    import transformers as T

    return {"text": T.AutoModelForSequenceClassification, "audio": T.AutoModelForAudioClassification,
            "video": T.AutoModelForVideoClassification}[modality]


# -- training -----------------------------------------------------------------------------------
def finetune(
    store, model: str, out: str | Path, config: FinetuneConfig | None = None,
    *, on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> FinetuneReport:
    """Fine-tune ``model`` (a local directory or a cached hub id) on the store's labels; save to ``out``."""
    import torch
    import torch.nn.functional as F

    from ambiguity.extractors.inference import resolve_model

    cfg = config or FinetuneConfig()
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} exists and is not empty: choose a new directory for the fine-tuned model")
    src = resolve_model(model)
    train_rows = _rows(store, "train", cfg.modality, cfg.limit)
    val_rows = _rows(store, "val", cfg.modality, cfg.limit)
    if len(train_rows) < 2 or not val_rows:
        raise ModelError(f"need labelled {cfg.modality} segments in splits train and val; have {len(train_rows)} and {len(val_rows)}")
    classes = sorted({r["label"] for r in train_rows} | {r["label"] for r in val_rows})
    if len(classes) < 2:
        raise ModelError(f"one class only ({classes[0]!r}): nothing to fine-tune on")
    cidx = {c: i for i, c in enumerate(classes)}
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    try:
        net = _auto_class(cfg.modality).from_pretrained(
            str(src.path), local_files_only=True, num_labels=len(classes),
            id2label=dict(enumerate(classes)), label2id=cidx, ignore_mismatched_sizes=True,
        )
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"cannot load {model!r} as a {cfg.modality} classifier: {exc}") from None
    net.to(device)
    trainable, total, what = freeze_all_but_last(net, cfg.trainable_layers)
    inputs = _Inputs(cfg.modality, src.path, cfg, net.config)
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=cfg.lr)
    gen = np.random.default_rng(cfg.seed)
    y_val = [r["label"] for r in val_rows]

    def evaluate() -> tuple[float, list[str]]:
        net.eval()
        losses, preds = [], []
        with torch.inference_mode():
            for s in range(0, len(val_rows), cfg.batch_size):
                b = val_rows[s : s + cfg.batch_size]
                logits = net(**inputs(b, device)).logits.float()
                y = torch.tensor([cidx[r["label"]] for r in b], device=device)
                losses.append(float(F.cross_entropy(logits, y, reduction="sum")))
                preds += [classes[i] for i in logits.argmax(1).tolist()]
        return sum(losses) / len(val_rows), preds

    history, best = [], None
    for epoch in range(cfg.epochs):
        net.train()
        order = gen.permutation(len(train_rows))
        total_loss = 0.0
        for s in range(0, len(order), cfg.batch_size):
            b = [train_rows[i] for i in order[s : s + cfg.batch_size]]
            y = torch.tensor([cidx[r["label"]] for r in b], device=device)
            loss = F.cross_entropy(net(**inputs(b, device)).logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total_loss += float(loss.detach()) * len(b)
        val_loss, preds = evaluate()
        m = metrics(y_val, preds)
        rec = {"epoch": epoch + 1, "train_loss": total_loss / len(train_rows), "val_loss": val_loss,
               "val_accuracy": m["accuracy"], "val_f1": m["f1"]}
        history.append(rec)
        if on_epoch:
            on_epoch(rec)
        if best is None or val_loss < best[0]:
            state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            best = (val_loss, epoch + 1, state)
    _, best_epoch, state = best
    net.load_state_dict(state)
    out.mkdir(parents=True, exist_ok=True)
    net.save_pretrained(out)
    inputs.save(out, src.path)
    report = FinetuneReport(out, src.model, tuple(classes), best_epoch, history, trainable, total, what,
                            len(train_rows), len(val_rows))
    (out / "finetune.json").write_text(json.dumps(
        {"base_model": src.model, "base_revision": src.revision, "recipe": asdict(cfg), "classes": classes,
         "best_epoch": best_epoch, "history": history, "trainable_parameters": trainable,
         "total_parameters": total, "trainable": what}, indent=2, default=str))
    return report


__all__ = ["FinetuneConfig", "FinetuneReport", "finetune", "freeze_all_but_last", "transformer_layers"]
