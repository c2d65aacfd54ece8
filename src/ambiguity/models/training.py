"""Training unimodal and fusion models on feature groups of the store.

The fusion recipe is the paper's: Adam (lr 1e-4, weight decay 1e-3), a
one-cycle schedule that starts at lr and peaks at 1e-3, 10 epochs,
mini-batches of 32, and the epoch with the lowest validation loss kept ("best
epoch on validation"). Probes use the same loop with ten times the learning
rates (1e-3 peaking at 1e-2) and 20 epochs: at the fusion rates a logistic
regression is far from converged after 20 epochs. Features are
standardised with the mean and SD of the train split only; a NaN or infinite
value (e.g. a pitch feature of an unvoiced segment) becomes the train mean
after standardisation, and the number of such values is reported.

Segments without a label or a split are dropped and counted. Missing is
normal: a segment whose row in a feature group is not ``ok`` (failed, empty or
missing; e.g. no video track, so no landmarks) lacks that input. A unimodal
model trains and predicts on the segments that have its input; the fusion
model on every segment with at least one input, the absent ones masked out of
its attention (:mod:`ambiguity.models.fusion`). Each prediction records the
groups it saw (``inputs``). Segments with no input at all are dropped and
counted. Splits come from ``segments.split``.

Training dynamics (dataset cartography): after every epoch the model is
evaluated (eval mode, no dropout) on the train split and ``p_correct`` of
each training segment is recorded.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Unpack

import numpy as np
import torch
import torch.nn.functional as F

from ambiguity.devices import resolve_device
from ambiguity.errors import ModelError
from ambiguity.models import predictions as P
from ambiguity.models import saved
from ambiguity.models.dataset import (
    Dataset,
    load_dataset,
    standardise,
    standardiser,
)
from ambiguity.models.spec import ModelChoice, TrainConfig, build_model, plan_models
from ambiguity.stores import schema as S

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore

_EVAL_CHUNK = 4096


# -- fitting -----------------------------------------------------------------------------------
@dataclass
class FitResult:
    """A trained model and what it predicted at its best epoch (1-based)."""

    model: torch.nn.Module
    probs: np.ndarray  # (n, C) at the best epoch, every row of the dataset
    attention: np.ndarray | None  # (n, M) for fusion
    best_epoch: int
    history: list[dict[str, float]]
    train_idx: np.ndarray
    p_correct_epochs: np.ndarray  # (n_train, epochs)
    correct_epochs: np.ndarray  # (n_train, epochs) bool
    imputed: int
    device: str


def _batches(perm: torch.Tensor, size: int) -> list[torch.Tensor]:
    parts = list(torch.split(perm, size))
    if len(parts) > 1 and len(parts[-1]) == 1:  # batch norm cannot train on one sample
        last = parts.pop()  # (popping inside the assignment would index the shortened list)
        parts[-1] = torch.cat([parts[-1], last])
    return parts


def maskable(model: torch.nn.Module) -> bool:
    """True for a model that can leave absent inputs out (the fusion network), False for a probe."""
    return hasattr(model, "encode") and hasattr(model, "attention")


def _call(model: torch.nn.Module, xs: list[torch.Tensor], present: torch.Tensor | None):
    """The model on ``xs``; a fusion model is told which inputs are present."""
    if present is not None and maskable(model):
        return model(xs, present=present)
    return model(xs)


@torch.inference_mode()
def _predict(model: torch.nn.Module, X: list[torch.Tensor], present: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    model.eval()
    probs, att = [], []
    n = X[0].shape[0]
    for s in range(0, n, _EVAL_CHUNK):
        sl = slice(s, s + _EVAL_CHUNK)
        out = _call(model, [x[sl] for x in X], None if present is None else present[sl])
        probs.append(torch.softmax(out.logits.float(), dim=1).cpu().numpy())
        if out.attention is not None:
            att.append(out.attention.float().cpu().numpy())
    return np.concatenate(probs), (np.concatenate(att) if att else None)


def fit(ds: Dataset, cfg: TrainConfig, *, on_epoch: Callable[[dict[str, float]], None] | None = None) -> FitResult:
    """Train one model on ``ds`` (train split), choosing the best epoch on the val split."""
    tr, va = ds.index("train"), ds.index("val")
    if len(tr) < 2:
        raise ModelError(f"only {len(tr)} training segment(s): need at least 2 in split 'train'")
    if len(va) == 0:
        raise ModelError("no segment in split 'val': the best epoch is chosen on validation; re-ingest with a split column or let ingest assign one")
    if len(set(ds.y[tr].tolist())) < 2:
        raise ModelError(f"the train split of {', '.join(ds.groups)} holds one class only ({ds.labels[tr[0]]!r})")
    device = resolve_device(cfg.device)
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    was = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    # warn_only: an op without a deterministic CUDA kernel warns instead of aborting the run.
    torch.use_deterministic_algorithms(True, warn_only=True)
    threads = torch.get_num_threads()
    if device.type == "cpu":
        # These models are small: intra-op threads cost more in synchronisation than they
        # save (measured: 4 models on the demo set, 8 s with 1 thread vs 72 s with 2 on a busy 2-core machine).
        torch.set_num_threads(cfg.threads or 1)
    try:
        torch.manual_seed(cfg.seed)
        return _fit(ds, cfg, tr, va, device, on_epoch)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(was[0], warn_only=was[1])


def _fit(ds, cfg, tr, va, device, on_epoch) -> FitResult:
    Z, imputed = [], 0
    for j, x in enumerate(ds.X):
        z, _ = standardise(x, tr)
        Z.append(torch.from_numpy(z).to(device))
        imputed += int((~np.isfinite(x[ds.mask[:, j]])).sum())  # an absent input is not an imputed value
    y = torch.from_numpy(ds.y).to(device)
    model = build_model(cfg, [z.shape[1] for z in Z], len(ds.classes)).to(device)
    present = None if ds.mask.all() else torch.from_numpy(ds.mask).to(device)
    if present is not None and not maskable(model) and not bool(present.all()):
        raise ModelError(f"a {cfg.arch} model cannot leave absent inputs out; train it on rows that have all of {', '.join(ds.groups)}")
    opt = torch.optim.Adam(model.parameters(), lr=cfg.start_lr, weight_decay=cfg.weight_decay)
    epochs = cfg.n_epochs
    gen = torch.Generator().manual_seed(cfg.seed)
    steps = len(_batches(torch.arange(len(tr)), cfg.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.peak_lr, total_steps=epochs * steps, div_factor=cfg.peak_lr / cfg.start_lr
    )
    tr_t = torch.from_numpy(tr).to(device)
    history, pce, ce = [], np.zeros((len(tr), epochs), np.float32), np.zeros((len(tr), epochs), bool)
    best = None
    for epoch in range(epochs):
        model.train()
        total, seen = 0.0, 0
        for b in _batches(torch.randperm(len(tr), generator=gen), cfg.batch_size):
            idx = tr_t[b.to(device)]
            out = _call(model, [z[idx] for z in Z], None if present is None else present[idx])
            loss = F.cross_entropy(out.logits, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            seen += len(idx)
        probs, att = _predict(model, Z, present)
        p_true = probs[np.arange(len(ds.y)), ds.y]
        pce[:, epoch] = p_true[tr]
        ce[:, epoch] = probs[tr].argmax(1) == ds.y[tr]
        val_loss = float(-np.log(np.clip(p_true[va], 1e-12, None)).mean())
        val_acc = float((probs[va].argmax(1) == ds.y[va]).mean())
        rec = {"epoch": epoch + 1, "train_loss": total / max(seen, 1), "val_loss": val_loss, "val_accuracy": val_acc}
        history.append(rec)
        if on_epoch:
            on_epoch(rec)
        score = (val_loss, -val_acc) if cfg.select == "loss" else (-val_acc, val_loss)
        if best is None or score < best[0]:
            best = (score, epoch + 1, probs, att, copy.deepcopy(model.state_dict()))
    assert best is not None  # at least one epoch ran
    _, best_epoch, probs, att, state = best
    model.load_state_dict(state)
    model.eval()
    return FitResult(model, probs, att, best_epoch, history, tr, pce, ce, imputed, str(device))


def split_problem(ds: Dataset) -> str | None:
    """Why ``ds`` cannot be trained on the fixed split (an empty train or val split, one class in train), else None."""
    n = {s: int((ds.split == s).sum()) for s in S.SPLITS}
    counts = ", ".join(f"{k} {v}" for k, v in n.items())
    have = f"of the {len(ds.segment_ids)} segments that have {', '.join(ds.groups)} ({counts})"
    if n["train"] < 2 or n["val"] == 0:
        split = "train" if n["train"] < 2 else "val"
        return (f"too few segments in split {split!r} {have}; cross-fit instead (`ambiguity train GROUPS --folds K`), "
                "or give the segments that have it a split column")
    if len(set(ds.y[ds.split == "train"].tolist())) < 2:
        return f"the train split {have} holds one class only; cross-fit instead (`ambiguity train GROUPS --folds K`)"
    return None


# -- train into the store ----------------------------------------------------------------------
@dataclass(frozen=True)
class TrainReport:
    model: str
    kind: str
    arch: str
    groups: tuple[str, ...]
    modalities: tuple[str, ...]
    n: dict[str, int]
    dropped: dict[str, int]
    imputed: int
    best_epoch: int
    epochs: int
    metrics: dict[str, dict[str, float]]  # split -> accuracy, f1 (macro)
    mean_attention: dict[str, float] | None  # group -> mean weight on the test split (fusion)
    history: list[dict[str, float]]
    device: str

    def summary(self) -> str:
        parts = [f"{self.model} ({self.arch} on {', '.join(self.groups)}): best epoch {self.best_epoch}/{self.epochs}"]
        for s in ("val", "test"):
            if s in self.metrics:
                m = self.metrics[s]
                parts.append(f"{s} accuracy {m['accuracy']:.3f} F1 {m['f1']:.3f}")
        line = "; ".join(parts)
        n = ", ".join(f"{k} {v}" for k, v in self.n.items())
        line += f"\n  segments: {n}"
        if self.dropped:
            line += "; dropped: " + ", ".join(f"{v} ({k})" for k, v in self.dropped.items())
        if self.imputed:
            line += f"; {self.imputed} non-finite feature values set to the train mean"
        if self.mean_attention:
            line += "\n  mean attention (test): " + ", ".join(f"{g} {w:.3f}" for g, w in self.mean_attention.items())
        return line


def metrics(y_true: Sequence[str], y_pred: Sequence[str]) -> dict[str, float]:
    """Accuracy and macro-averaged F1 (any number of classes), from scikit-learn."""
    from sklearn.metrics import accuracy_score, f1_score  # 1.5 s CPU to import

    if len(y_true) == 0:
        return {"accuracy": float("nan"), "f1": float("nan"), "n": 0}
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "n": len(y_true),
    }


def train_model(
    store: FeatureStore, ds: Dataset, cfg: TrainConfig, *, name: str | None = None, write: bool = True,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> tuple[TrainReport, FitResult]:
    """Fit one model on ``ds`` and write its predictions and dynamics to the store."""
    name = name or (ds.groups[0] if len(ds.groups) == 1 else "fusion")
    res = fit(ds, cfg, on_epoch=on_epoch)
    run_id = P.new_run_id()
    config: dict[str, Any] = {
        **asdict(cfg), "epochs": cfg.n_epochs, "lr": cfg.start_lr, "max_lr": cfg.peak_lr,
        "best_epoch": res.best_epoch, "device": res.device,
    }
    if write:
        P.write_predictions(
            store,
            P.prediction_table(
                model=name, kind=cfg.kind, arch=cfg.arch, modalities=ds.modalities, groups=ds.groups,
                segment_ids=ds.segment_ids, splits=ds.split.tolist(), labels=ds.labels, classes=ds.classes,
                probs=res.probs, attention=res.attention, config=config, seed=cfg.seed, run_id=run_id,
                inputs=ds.inputs(),
            ),
        )

        saved.save_model(
            store, name, res.model, cfg, ds, res.train_idx,
            [standardiser(x, res.train_idx) for x in ds.X], run_id=run_id,
        )
        tr = res.train_idx
        P.write_dynamics(
            store,
            P.dynamics_table(
                model=name, segment_ids=[ds.segment_ids[i] for i in tr], splits=["train"] * len(tr),
                labels=[ds.labels[i] for i in tr], p_correct_epochs=res.p_correct_epochs,
                correct_epochs=res.correct_epochs, run_id=run_id,
            ),
        )
    pred = np.array(ds.classes)[res.probs.argmax(1)]
    lab = np.array(ds.labels)
    mets = {s: metrics(lab[ds.split == s].tolist(), pred[ds.split == s].tolist()) for s in S.SPLITS}
    att = None
    if res.attention is not None and len(ds.groups) > 1:
        te = ds.index("test")
        rows = te if len(te) else np.arange(len(ds.y))
        att = {g: float(res.attention[rows, i].mean()) for i, g in enumerate(ds.groups)}
    report = TrainReport(
        name, cfg.kind, cfg.arch, ds.groups, ds.modalities, {s: int((ds.split == s).sum()) for s in S.SPLITS},
        dict(ds.dropped), res.imputed, res.best_epoch, cfg.n_epochs, mets, att, res.history, res.device,
    )
    return report, res


def train(
    store: FeatureStore,
    groups: Sequence[str],
    *,
    on_report: Callable[[TrainReport], None] | None = None,
    on_skip: Callable[[str, str], None] | None = None,
    **choice: Unpack[ModelChoice],
) -> list[TrainReport]:
    """One unimodal model per group (named after the group) and one fusion model over all groups, or the
    models ``choice`` asks for (see :class:`~ambiguity.models.spec.ModelChoice`).

    Missing is normal: a unimodal model sees the segments that have its group; the fusion model sees every
    segment with at least one of its groups, the absent ones masked (see the module notes). Comparisons
    pair models segment by segment over the segments both predicted.

    A unimodal model whose segments leave a split empty or the train split with one class (a group that
    only a few segments have) is skipped: ``on_skip(name, reason)`` is told and the other models train.
    """
    specs = plan_models(groups, choice)
    ds = load_dataset(store, list(dict.fromkeys(groups)), partial=True)
    reports = []
    for spec in specs:
        sub = ds.for_model(spec.groups, spec.cfg.arch == "fusion")
        reason = split_problem(sub)
        if reason and spec.cfg.arch != "fusion" and len(specs) > 1:
            if on_skip:
                on_skip(spec.name, reason)
            continue
        if reason:
            raise ModelError(f"model {spec.name!r}: {reason}")
        rep, _ = train_model(store, sub, spec.cfg, name=spec.name)
        reports.append(rep)
        if on_report:
            on_report(rep)
    return reports
