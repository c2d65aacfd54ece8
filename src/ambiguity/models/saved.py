"""Trained models kept in the store (table ``models``), so that later steps can run them again.

One row per model name: its architecture and hyper-parameters, the feature groups
and modalities it reads (in input order), its classes, the train split's mean and
SD per input column (the standardisation it was trained with), the class prior of
the train split and the weights (``torch.save`` of the state dict). Retraining a
model replaces its row. The ``run_id`` is the one of its rows in ``predictions``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import torch

from ambiguity.errors import MissingGroupError, ModelError
from ambiguity.stores import schema as S
from ambiguity.stores.sql import quote

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore

MODELS = "models"

MODELS_SCHEMA = S.table_schema(
    ["key", "model", "kind", "arch", "groups", "modalities", "classes", "input_dims", "hparams", "mean", "sd",
     "class_prior", "n_train", "state", "run_id", "created_at"],
    {
        "input_dims": pa.list_(pa.int64()),
        # hparams: JSON, what build_model needs
        "mean": pa.list_(pa.list_(pa.float64())),  # per group, per input column
        "sd": pa.list_(pa.list_(pa.float64())),
        "class_prior": pa.list_(pa.float64()),  # share of each class in the train split
        "n_train": pa.int64(),
        "state": pa.large_binary(),
    },
)


_HPARAMS = ("arch", "latent", "hidden", "dropout", "modality_dropout", "probe_hidden")


@dataclass
class SavedModel:
    """A model as trained, in eval mode, with what is needed to feed it the store's features."""

    name: str
    kind: str
    arch: str
    model: torch.nn.Module
    groups: tuple[str, ...]
    modalities: tuple[str, ...]
    classes: tuple[str, ...]
    mean: list[np.ndarray]
    sd: list[np.ndarray]
    class_prior: np.ndarray
    run_id: str

    @property
    def can_mask(self) -> bool:
        """True if the model can leave modalities out of its attention (the fusion network)."""
        return hasattr(self.model, "encode") and hasattr(self.model, "attention")


def save_model(store: FeatureStore, name: str, model: torch.nn.Module, cfg, ds, train_idx: np.ndarray,
               stats: Sequence[tuple[np.ndarray, np.ndarray]], *, run_id: str) -> None:
    """Write (or replace) the row of model ``name``; ``stats`` is (mean, sd) per group of ``ds``."""
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    counts = np.bincount(ds.y[train_idx], minlength=len(ds.classes)).astype(np.float64)
    table = pa.table(
        {
            "key": [name], "model": [name], "kind": [cfg.kind], "arch": [cfg.arch],
            "groups": [list(ds.groups)], "modalities": [list(ds.modalities)], "classes": [list(ds.classes)],
            "input_dims": [[int(x.shape[1]) for x in ds.X]],
            "hparams": [json.dumps({k: getattr(cfg, k) for k in _HPARAMS}, sort_keys=True)],
            "mean": [[m.tolist() for m, _ in stats]], "sd": [[s.tolist() for _, s in stats]],
            "class_prior": [(counts / counts.sum()).tolist()], "n_train": [int(len(train_idx))],
            "state": [buf.getvalue()], "run_id": [run_id],
            "created_at": [S.now()],
        },
        schema=MODELS_SCHEMA,
    )
    store.upsert(MODELS, table, key="key", schema=MODELS_SCHEMA)


def saved_models(store: FeatureStore) -> list[str]:
    if not store.has_table(MODELS):
        return []
    return sorted(store.read(MODELS, ["model"])["model"].to_list())


def load_model(store: FeatureStore, name: str) -> SavedModel:
    """The model ``name`` as trained; a clear error if the store has no weights for it."""
    from ambiguity.models.spec import TrainConfig, build_model

    have = saved_models(store)
    if name not in have:
        raise MissingGroupError(
            f"the store has no saved weights for model {name!r} (saved: {', '.join(have) or 'none'}); "
            "models are saved by `ambiguity train` -- retrain it, imported predictions have no weights"
        )
    r = store.read(MODELS, where=f"model = {quote(name)}").row(0, named=True)
    hp = json.loads(r["hparams"])
    cfg = TrainConfig(**hp)
    model = build_model(cfg, r["input_dims"], len(r["classes"]))
    try:
        model.load_state_dict(torch.load(io.BytesIO(r["state"]), map_location="cpu", weights_only=True))
    except (RuntimeError, ValueError) as exc:
        raise ModelError(f"the saved weights of model {name!r} do not load: {str(exc).splitlines()[0]}") from None
    model.eval()
    return SavedModel(
        name, r["kind"], r["arch"], model, tuple(r["groups"]), tuple(r["modalities"]), tuple(r["classes"]),
        [np.asarray(m) for m in r["mean"]], [np.asarray(s) for s in r["sd"]], np.asarray(r["class_prior"]), r["run_id"],
    )
