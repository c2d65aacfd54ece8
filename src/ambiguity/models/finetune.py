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
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch import nn

from ambiguity.constants import MODALITIES
from ambiguity.devices import resolve_device
from ambiguity.errors import ConfigError, ModelError, ModelNotFoundError
from ambiguity.extractors.inference import read_json, resolve_model
from ambiguity.extractors.runner import segment_inputs
from ambiguity.extractors.text import TextEmbedder
from ambiguity.extractors.video import FrameTransform
from ambiguity.models import predictions as P
from ambiguity.models.predictions import read_predictions
from ambiguity.models.training import metrics
from ambiguity.stores.tables import PREDICTIONS

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore

_AUDIO_RATE = 16000
SMALL_MODEL = 10_000_000


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
    # CPU threads while training. None: one for a model under SMALL_MODEL parameters (measured on a busy
    # 2-core machine: a tiny RoBERTa epoch 0.2 s with one thread, 11 s with two), else torch's default.
    threads: int | None = None

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
    #: After training: the kept model's class probabilities for every usable labelled segment
    #: (train, val and test), in the order of ``segment_ids``.
    segment_ids: tuple[str, ...] = ()
    splits: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    probs: Any = None
    failures: tuple[tuple[str, str], ...] = ()  # (segment_id, reason): segments whose input could not be read
    arch: str = ""

    @property
    def val_accuracy(self) -> float:
        """Validation accuracy of the kept epoch: what the pipeline picks the best model per modality by."""
        return float(self.history[self.best_epoch - 1]["val_accuracy"])

    def summary(self) -> str:
        last = self.history[self.best_epoch - 1]
        return (
            f"fine-tuned {self.base_model} -> {self.out}: best epoch {self.best_epoch}/{len(self.history)} "
            f"(val loss {last['val_loss']:.4f}, accuracy {last['val_accuracy']:.3f}); "
            f"{self.trainable:,} of {self.total:,} parameters trained ({self.layers}); "
            f"train {self.n_train}, val {self.n_val} segments"
            + (f"; {len(self.failures)} segment(s) failed ({self.failures[0][0]}: {self.failures[0][1]})" if self.failures else "")
        )


# -- freezing -----------------------------------------------------------------------------------
def transformer_layers(model) -> tuple[str, Any]:
    """The name and ModuleList of the encoder's transformer blocks (the longest ``layer``/``layers`` list)."""
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
    # wav2vec2 / HuBERT mark the conv encoder's output as requiring grad in train mode unless told
    # otherwise, so backward ran through the frozen convolutions (measured by bench/paper_costs.py:
    # 145 GFLOP per 5 s segment per step, twice the forward's 69).
    for m in (model, base):
        if hasattr(m, "freeze_feature_encoder"):
            m.freeze_feature_encoder()
            break
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    what = f"{name}[{len(layers) - len(keep)}:{len(layers)}] of {len(layers)} layers + head"
    return trainable, total, what


# -- data ---------------------------------------------------------------------------------------
def _rows(store: FeatureStore, split: str, modality: str, limit: int | None) -> list[dict[str, Any]]:
    segs = store.segments(split=split).filter(_usable(modality)).sort("segment_id")
    return segs.head(limit).to_dicts() if limit else segs.to_dicts()


def _usable(modality: str):
    need = pl.col("label").is_not_null()
    if modality == "text":
        return need & pl.col("transcript").is_not_null()
    return need & (pl.col("media").is_not_null() | pl.col("audio").is_not_null())


class _Inputs:
    """Turns segment rows into model inputs for one modality."""

    def __init__(self, modality: str, path: Path, cfg: FinetuneConfig, model_config):
        self.modality, self.cfg = modality, cfg
        if modality == "text":
            from transformers import AutoTokenizer  # optional: ambiguity[text], [audio] or [video]


            self.proc: Any = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            # Capped as the text extractor caps it: by the tokenizer and the position embeddings.
            self.max_length = TextEmbedder(model=str(path), max_length=cfg.max_length).max_length(resolve_model(str(path)))
        elif modality == "audio":
            from transformers import AutoFeatureExtractor  # optional: ambiguity[text], [audio] or [video]

            self.proc = AutoFeatureExtractor.from_pretrained(str(path), local_files_only=True)
        else:

            pre = read_json(path / "preprocessor_config.json") or read_json(path / "video_preprocessor_config.json")
            self.proc = FrameTransform.from_config(pre, int(getattr(model_config, "image_size", 224)))
            self.num_frames = int(getattr(model_config, "num_frames", 16))

    def __call__(self, rows: Sequence[dict[str, Any]], device) -> dict[str, Any]:
        if self.modality == "text":
            enc = self.proc([r["transcript"] for r in rows], truncation=True, max_length=self.max_length,
                            padding=True, return_tensors="pt")
            return {k: v.to(device) for k, v in enc.items()}

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

    def robust(self, rows: Sequence[dict[str, Any]], device, bad: dict[str, str]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """Inputs of the rows that can be read; a row that cannot is recorded in ``bad`` and left out.

        A whole batch is tried first; only a batch that fails is retried row by row.
        """
        rows = [r for r in rows if r["segment_id"] not in bad]
        if not rows:
            return [], None
        try:
            return rows, self(rows, device)
        except Exception:  # noqa: BLE001  (a broken file, a decode error: find the row)
            keep = []
            for r in rows:
                try:
                    self([r], device)
                    keep.append(r)
                except Exception as exc:  # noqa: BLE001
                    bad[r["segment_id"]] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
            return keep, (self(keep, device) if keep else None)

    def save(self, out: Path, src: Path) -> None:
        if self.modality in ("text", "audio"):
            self.proc.save_pretrained(out)
        else:
            for name in ("preprocessor_config.json", "video_preprocessor_config.json"):
                if (src / name).is_file():
                    shutil.copy(src / name, out / name)


def _auto_class(modality: str):
    import transformers as T  # optional: ambiguity[text], [audio] or [video]

    return {"text": T.AutoModelForSequenceClassification, "audio": T.AutoModelForAudioClassification,
            "video": T.AutoModelForVideoClassification}[modality]


# -- training -----------------------------------------------------------------------------------
def finetune(
    store: FeatureStore, model: str, out: str | Path, config: FinetuneConfig | None = None,
    *, on_epoch: Callable[[dict[str, float]], None] | None = None, predict_all: bool = True,
) -> FinetuneReport:
    """Fine-tune ``model`` (a local directory or a cached hub id) on the store's labels; save to ``out``.

    With ``predict_all`` the kept model then classifies every usable labelled
    segment (train, val, test): :func:`write_finetuned_predictions` stores
    them as the modality's unimodal model, as the paper's Table 1 uses the
    fine-tuned classifiers themselves. A segment whose audio or frames cannot
    be read is left out of training and prediction and listed in ``failures``.
    """
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
    threads_before = torch.get_num_threads()
    if device.type == "cpu" and (cfg.threads or total < SMALL_MODEL):
        torch.set_num_threads(cfg.threads or 1)
    try:
        return _train(store, cfg, src, net, classes, cidx, device, out, trainable, total, what, train_rows, val_rows,
                      on_epoch, predict_all)
    finally:
        torch.set_num_threads(threads_before)


def _train(store: FeatureStore, cfg, src, net, classes, cidx, device, out, trainable, total, what, train_rows, val_rows,
           on_epoch, predict_all) -> FinetuneReport:

    inputs = _Inputs(cfg.modality, src.path, cfg, net.config)
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=cfg.lr)
    gen = np.random.default_rng(cfg.seed)

    bad: dict[str, str] = {}

    def predict(rows) -> tuple[list[dict[str, Any]], np.ndarray]:
        net.eval()
        kept, probs = [], []
        with torch.inference_mode():
            for s in range(0, len(rows), cfg.batch_size):
                b, x = inputs.robust(rows[s : s + cfg.batch_size], device, bad)
                if x is None:
                    continue
                kept += b
                probs.append(torch.softmax(net(**x).logits.float(), dim=1).cpu().numpy())
        return kept, (np.concatenate(probs) if probs else np.zeros((0, len(classes))))

    def evaluate() -> tuple[float, list[str], list[str]]:
        kept, probs = predict(val_rows)
        if not kept:
            raise ModelError(f"no validation segment could be read ({len(bad)} failed, e.g. {next(iter(bad.items()), ('', ''))})")
        y = np.array([cidx[r["label"]] for r in kept])
        loss = float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None)).mean())
        return loss, [classes[i] for i in probs.argmax(1)], [r["label"] for r in kept]

    history, best = [], None
    for epoch in range(cfg.epochs):
        net.train()
        order = gen.permutation(len(train_rows))
        total_loss = 0.0
        seen = 0
        for s in range(0, len(order), cfg.batch_size):
            b, x = inputs.robust([train_rows[i] for i in order[s : s + cfg.batch_size]], device, bad)
            if x is None:
                continue
            y = torch.tensor([cidx[r["label"]] for r in b], device=device)
            loss = F.cross_entropy(net(**x).logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total_loss += float(loss.detach()) * len(b)
            seen += len(b)
        if not seen:
            raise ModelError(f"no training segment could be read ({len(bad)} failed, e.g. {next(iter(bad.items()))})")
        val_loss, preds, y_val = evaluate()
        m = metrics(y_val, preds)
        rec = {"epoch": epoch + 1, "train_loss": total_loss / seen, "val_loss": val_loss,
               "val_accuracy": m["accuracy"], "val_f1": m["f1"]}
        history.append(rec)
        if on_epoch:
            on_epoch(rec)
        if best is None or val_loss < best[0]:
            state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            best = (val_loss, epoch + 1, state)
    assert best is not None  # at least one epoch ran
    _, best_epoch, state = best
    net.load_state_dict(state)
    out.mkdir(parents=True, exist_ok=True)
    net.save_pretrained(out)
    inputs.save(out, src.path)
    pred_rows: list[dict[str, Any]] = []
    probs = None
    if predict_all:
        everything = sorted(train_rows + val_rows + _rows(store, "test", cfg.modality, None), key=lambda r: r["segment_id"])
        everything = [r for r in everything if r["label"] in cidx]  # a class unseen in train/val cannot be scored
        pred_rows, probs = predict(everything)
    report = FinetuneReport(
        out, src.model, tuple(classes), best_epoch, history, trainable, total, what, len(train_rows), len(val_rows),
        tuple(r["segment_id"] for r in pred_rows), tuple(r["split"] for r in pred_rows),
        tuple(r["label"] for r in pred_rows), probs, tuple(sorted(bad.items())), str(getattr(net.config, "model_type", "")),
    )
    (out / "finetune.json").write_text(json.dumps(
        {"base_model": src.model, "base_revision": src.revision, "recipe": asdict(cfg), "classes": classes,
         "best_epoch": best_epoch, "history": history, "trainable_parameters": trainable,
         "total_parameters": total, "trainable": what, "failures": dict(bad)}, indent=2, default=str))
    return report


def write_finetuned_predictions(store: FeatureStore, report: FinetuneReport, name: str, modality: str, *,
                                group: str | None = None, config: dict[str, Any] | None = None) -> int:
    """Store a fine-tuned classifier's predictions as model ``name`` (kind ``finetuned``).

    ``group`` is the feature group that holds this model's embeddings (for the
    boundary analysis of Figure 3). Returns the rows written.
    """
    if report.probs is None or not report.segment_ids:
        raise ModelError(f"{name}: the fine-tuned model predicted no segment")
    meta = {"base_model": report.base_model, "best_epoch": report.best_epoch, "val_accuracy": report.val_accuracy,
            "model_path": str(report.out), **(config or {})}
    table = P.prediction_table(
        model=name, kind="finetuned", arch=report.arch or "finetuned", modalities=[modality], groups=[group or name],
        segment_ids=report.segment_ids, splits=report.splits, labels=report.labels, classes=report.classes,
        probs=report.probs, config=meta, seed=(config or {}).get("seed"),
    )
    P.write_predictions(store, table)
    return table.num_rows


# -- fine-tuned groups and the schemes -----------------------------------------------------------------
STACKED_WARNING = ("warning: {groups} hold(s) embeddings of an encoder fine-tuned on the train split's labels; "
                   "the fusion model is fitted on those same train segments, so it is stacked in sample (the paper's "
                   "protocol): its train-split inputs are better separated than unseen ones would be")


def finetuned_groups(store: FeatureStore, groups: Sequence[str]) -> list[str]:
    """The ``groups`` whose embeddings come from a fine-tuned encoder: the extractor's ``model`` is a directory
    with ``finetune.json`` (written by :func:`finetune`), or a ``finetuned`` model in the predictions table
    names the group (``write_finetuned_predictions(group=...)``)."""
    prov = store.groups()
    named: set[str] = set()
    if PREDICTIONS.exists(store):
        df = read_predictions(store, scheme=None).filter(pl.col("kind") == "finetuned").select("groups").unique()
        named = {g for gs in df["groups"].to_list() for g in (gs or [])}
    out = []
    for g in groups:
        model = str(((prov.get(g) or {}).get("params") or {}).get("model") or "")
        if g in named or (model and (Path(model) / "finetune.json").is_file()):
            out.append(g)
    return out


def stacked_warning(store: FeatureStore, groups: Sequence[str]) -> str | None:
    """The one-line warning for fixed-split training on fine-tuned embeddings, or None."""
    ft = finetuned_groups(store, groups)
    return STACKED_WARNING.format(groups=", ".join(ft)) if ft else None


def check_not_finetuned(store: FeatureStore, groups: Sequence[str]) -> None:
    """Refuse to cross-fit on fine-tuned embeddings: the encoder saw the labels of segments of every fold."""
    ft = finetuned_groups(store, groups)
    if ft:
        raise ModelError(
            f"cannot cross-fit on {', '.join(ft)}: its encoder was fine-tuned on the train split's labels, so every "
            "fold's held-out segments of that split were seen with their labels; cross-fit on frozen (not fine-tuned) "
            "embeddings, or use the fixed split (`ambiguity train` without `--folds`; it is stacked in sample)")


__all__ = ["FinetuneConfig", "FinetuneReport", "check_not_finetuned", "finetune", "finetuned_groups", "stacked_warning", "freeze_all_but_last", "transformer_layers", "write_finetuned_predictions"]
