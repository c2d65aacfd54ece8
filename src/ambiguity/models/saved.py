"""Trained models kept in the store (table ``models``), so that later steps can run them again.

One row per fixed-split model, and one per (model, repeat, fold) of a cross-fitting
run: its architecture and hyper-parameters, the feature groups and modalities it
reads (in input order), its classes, the mean and SD per input column of the
segments it was fitted on (the standardisation it was trained with), their class
prior and the weights (``torch.save`` of the state dict). ``scheme`` is ``fixed``
or ``crossfit``; a cross-fitted row carries ``repeat`` and ``fold``, and its
``run_id`` is the cross-fitting run's (the ``fits`` row ``run_id|repeat|fold``
records which segments it was fitted on). Retraining a fixed model replaces its
row; a new cross-fitting run of a model deletes that model's fold rows of other runs.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa
import torch

from ambiguity.constants import Scheme
from ambiguity.errors import MissingGroupError, ModelError
from ambiguity.models.spec import TrainConfig, build_model
from ambiguity.stores import schema as S
from ambiguity.stores.tables import MODELS, Not

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore

MODELS_SCHEMA = S.table_schema(
    ["key", "model", "kind", "arch", "groups", "modalities", "classes", "input_dims", "hparams", "mean", "sd",
     "class_prior", "n_train", "state", "run_id", "created_at", "scheme", "repeat", "fold"],
    {
        "input_dims": pa.list_(pa.int64()),
        # hparams: JSON, what build_model needs
        "mean": pa.list_(pa.list_(pa.float64())),  # per group, per input column
        "sd": pa.list_(pa.list_(pa.float64())),
        "class_prior": pa.list_(pa.float64()),  # share of each class in the segments fitted on
        "n_train": pa.int64(),
        "state": pa.large_binary(),
        "repeat": pa.int32(),  # null on the fixed scheme
        "fold": pa.int32(),
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
    scheme: str = "fixed"
    repeat: int | None = None
    fold: int | None = None

    @property
    def can_mask(self) -> bool:
        """True if the model can leave modalities out of its attention (the fusion network)."""
        return hasattr(self.model, "encode") and hasattr(self.model, "attention")

    @property
    def fit_id(self) -> str:
        """The fit whose model this is: the fixed run's id, or ``run_id|repeat|fold`` (the ``fits`` key)."""
        return self.run_id if self.scheme == "fixed" else f"{self.run_id}|{self.repeat}|{self.fold}"


def state_bytes(model: torch.nn.Module) -> bytes:
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    return buf.getvalue()


def model_row(name: str, cfg, ds, train_idx: np.ndarray, stats: Sequence[tuple[np.ndarray, np.ndarray]], state: bytes, *,
              run_id: str, repeat: int | None = None, fold: int | None = None) -> pa.Table:
    """One row of the models table; ``repeat`` and ``fold`` given: a cross-fitted (repeat, fold) model."""
    counts = np.bincount(ds.y[train_idx], minlength=len(ds.classes)).astype(np.float64)
    crossfit = repeat is not None
    if crossfit and fold is None:
        raise ModelError("a cross-fitted model row needs both its repeat and its fold")
    return pa.table(
        {
            "key": [name if not crossfit else f"{name}|crossfit|{run_id}|{repeat}|{fold}"], "model": [name],
            "kind": [cfg.kind], "arch": [cfg.arch],
            "groups": [list(ds.groups)], "modalities": [list(ds.modalities)], "classes": [list(ds.classes)],
            "input_dims": [[int(x.shape[1]) for x in ds.X]],
            "hparams": [json.dumps({k: getattr(cfg, k) for k in _HPARAMS}, sort_keys=True)],
            "mean": [[m.tolist() for m, _ in stats]], "sd": [[s.tolist() for _, s in stats]],
            "class_prior": [(counts / counts.sum()).tolist()], "n_train": [int(len(train_idx))],
            "state": [state], "run_id": [run_id], "created_at": [S.now()],
            "scheme": ["crossfit" if crossfit else "fixed"], "repeat": [repeat], "fold": [fold],
        },
        schema=MODELS_SCHEMA,
    )


def write_models(store: FeatureStore, table: pa.Table) -> None:
    """Upsert model rows (migrating a table written before schemes existed)."""
    migrate(store)
    store.upsert(MODELS, table, key="key", schema=MODELS_SCHEMA)


def save_model(store: FeatureStore, name: str, model: torch.nn.Module, cfg, ds, train_idx: np.ndarray,
               stats: Sequence[tuple[np.ndarray, np.ndarray]], *, run_id: str) -> None:
    """Write (or replace) the fixed-split row of model ``name``; ``stats`` is (mean, sd) per group of ``ds``."""
    write_models(store, model_row(name, cfg, ds, train_idx, stats, state_bytes(model), run_id=run_id))


def migrate(store: FeatureStore) -> None:
    """Give a models table written before schemes existed its scheme, repeat and fold columns (all fixed)."""
    if not store.has_table(MODELS) or "scheme" in store.schema(MODELS).names:
        return
    old = store.read(MODELS).to_arrow()
    n = old.num_rows
    cols = {c: old.column(c) for c in old.column_names}
    cols.update({"scheme": pa.array(["fixed"] * n), "repeat": pa.array([None] * n, pa.int32()),
                 "fold": pa.array([None] * n, pa.int32())})
    store.drop(MODELS)
    if n:
        store.upsert(MODELS, pa.table(cols).select(MODELS_SCHEMA.names).cast(MODELS_SCHEMA), key="key", schema=MODELS_SCHEMA)


def _by_scheme(store: FeatureStore, scheme: str) -> dict[str, Any] | None:
    """The filters that select ``scheme``'s rows; None when the table (written before schemes: all fixed) has none."""
    if "scheme" not in store.schema(MODELS).names:
        return {} if scheme == Scheme.FIXED else None
    return {"scheme": scheme}


def saved_models(store: FeatureStore, scheme: str = "fixed") -> list[str]:
    """Names of the models with saved weights on ``scheme`` (fixed: one per name; crossfit: one per (repeat, fold))."""
    if not store.has_table(MODELS):
        return []
    by = _by_scheme(store, scheme)
    return [] if by is None else sorted(set(MODELS.read(store, ["model"], **by)["model"].to_list()))


def fold_models(store: FeatureStore, name: str) -> pl.DataFrame:
    """run_id, repeat, fold of every saved cross-fitted model ``name`` (empty when there is none)."""
    schema = {"run_id": pl.String, "repeat": pl.Int32, "fold": pl.Int32}
    if not store.has_table(MODELS) or "scheme" not in store.schema(MODELS).names:
        return pl.DataFrame(schema=schema)
    df = MODELS.read(store, ["run_id", "repeat", "fold"], scheme=Scheme.CROSSFIT, model=name)
    return df.cast(schema).sort(["repeat", "fold"])  # type: ignore[arg-type]


def delete_fold_models(store: FeatureStore, models: Sequence[str], keep_run: str) -> None:
    """Delete the cross-fitted rows of ``models`` from runs other than ``keep_run``."""
    if not models or not store.has_table(MODELS) or "scheme" not in store.schema(MODELS).names:
        return
    stale: dict[str, Any] = {"scheme": Scheme.CROSSFIT, "model": list(models), "run_id": Not(keep_run)}
    if MODELS.read(store, ["key"], **stale).height:  # each delete is a Lance commit
        MODELS.delete(store, **stale)


def load_model(store: FeatureStore, name: str, *, repeat: int | None = None, fold: int | None = None,
               run_id: str | None = None) -> SavedModel:
    """The model ``name`` as trained (fixed split; with ``repeat`` and ``fold``: that cross-fitted fit);
    a clear error if the store has no weights for it."""
    if repeat is None:
        have = saved_models(store)
        if name not in have:
            folds = saved_models(store, "crossfit")
            hint = (f"; {name!r} has cross-fitted weights only: use scheme crossfit" if name in folds else
                    "; models are saved by `ambiguity train` -- retrain it, imported predictions have no weights")
            raise MissingGroupError(f"the store has no saved fixed-split weights for model {name!r} "
                                    f"(saved: {', '.join(have) or 'none'}){hint}", param="scheme")
        which: dict[str, Any] = {"model": name, **(_by_scheme(store, Scheme.FIXED) or {})}
    else:
        which = {"model": name, "scheme": Scheme.CROSSFIT, "repeat": int(repeat), "fold": int(fold or 0), "run_id": run_id}
        if not store.has_table(MODELS) or "scheme" not in store.schema(MODELS).names or not MODELS.read(store, ["key"], **which).height:
            raise MissingGroupError(f"the store has no saved weights for model {name!r}, repeat {repeat}, fold {fold}: "
                                    "rerun `ambiguity train GROUPS --folds K` (this version keeps every fold's model)")
    r = MODELS.read(store, **which).row(0, named=True)
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
        r.get("scheme") or "fixed", r.get("repeat"), r.get("fold"),
    )
