"""Cross-fitting: every labelled segment predicted out of fold, by every model, in R repeats.

Folds are stratified by label and grouped by a column (a segments column such
as ``media``, or a metadata key such as ``dialog_id`` or ``speaker``): no group
is split across folds, so the model that predicts a segment was trained on no
segment of its group. Without a group column every segment is its own group.
scikit-learn's ``StratifiedGroupKFold`` (shuffled, seed ``S + r`` for repeat
``r``) makes the folds.

For held-out fold ``k`` of repeat ``r`` the other folds are split again, the
same way (stratified, grouped; ``max(K - 1, 4)`` inner folds, the first one
kept), into the part a model is fitted on and the inner validation part that
chooses its best epoch. The held-out fold is never seen before its prediction.
Every unimodal model and the fusion model of a run use the same folds and the
same inner split; each fit is seeded ``S + r``, so a fit's result depends only
on (settings, data, r, k), never on what ran before it.

What the store keeps, per run (``run_id`` is a fingerprint of the settings and
the data, so rerunning the same command continues the same run):

- ``folds``: the fold of every segment in every repeat, and its group;
- ``fits``: one row per finished (repeat, fold), with the ids the models were
  fitted on and validated on, written after that fold's predictions;
- ``predictions``: rows with ``scheme = 'crossfit'``, ``repeat`` and ``fold``.

A killed run, started again, skips every (repeat, fold) that has a ``fits``
row and resumes at the first unfinished one; a fold that was predicted but not
yet recorded is fitted again and overwrites its own rows (the keys include the
repeat), so there are never duplicates and the values equal an uninterrupted
run's. Starting a run with other settings first deletes the cross-fitted rows
of its models from earlier runs.

The cost is K x R fits per model. ``workers > 1`` runs (repeat, fold) units in
a pool of spawned processes (Lance is not fork-safe); the results are
bit-identical to ``workers = 1`` because every fit is seeded on its own and
runs on one CPU thread.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing as mp
import os
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Unpack

import numpy as np
import polars as pl
import pyarrow as pa

from ambiguity.constants import Scheme
from ambiguity.errors import ConfigError, MissingGroupError, ModelError
from ambiguity.leakage import fold_leakage, leakage_report
from ambiguity.models import predictions as P
from ambiguity.models.dataset import Dataset, load_dataset, standardiser
from ambiguity.models.spec import ModelChoice, ModelSpec, plan_models
from ambiguity.stores import schema as S
from ambiguity.stores.tables import FITS, FOLDS, PREDICTIONS, Not

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore

MIN_INNER = 4

FOLDS_SCHEMA = S.table_schema(["key", "run_id", "repeat", "segment_id", "group", "label", "fold"])

FITS_SCHEMA = S.table_schema(
    # train_ids: what the models were fitted on; val_ids: the inner validation, which chooses the best epoch;
    # test_ids: the held-out fold, predicted
    ["key", "run_id", "repeat", "fold", "models", "best_epochs", "train_ids", "val_ids", "test_ids", "seconds",
     "finished_at"],
    {"models": pa.list_(pa.string()), "best_epochs": pa.list_(pa.int32()), "train_ids": pa.list_(pa.string()),
     "val_ids": pa.list_(pa.string()), "test_ids": pa.list_(pa.string()), "seconds": pa.float64()},
)


@dataclass(frozen=True)
class CrossfitConfig:
    """K folds, R repeats with fold seeds ``seed .. seed + R - 1``, grouped by ``group_by``."""

    folds: int = 5
    repeats: int = 1
    group_by: str | None = None
    seed: int = 0
    workers: int = 1

    def __post_init__(self):
        if self.folds < 2:
            raise ConfigError(f"folds {self.folds}: cross-fitting needs at least 2 folds", param="folds")
        if self.repeats < 1:
            raise ConfigError(f"repeats {self.repeats}: run at least 1 repeat", param="repeats")
        if self.workers < 1:
            raise ConfigError(f"workers {self.workers}: use at least 1", param="workers")


# -- folds --------------------------------------------------------------------------------------
def segment_groups(store: FeatureStore, segment_ids: Sequence[str], column: str | None) -> np.ndarray:
    """The group of each segment: a segments column or a metadata key; each segment its own without one."""
    ids = list(segment_ids)
    if column is None:
        return np.array(ids, dtype=object)
    segs = store.segments()
    if column in segs.columns and column != "metadata":
        values = dict(zip(segs["segment_id"].to_list(), segs[column].cast(pl.String).to_list(), strict=True))
    else:
        meta = {s: json.loads(m or "{}") for s, m in zip(segs["segment_id"].to_list(), segs["metadata"].to_list(), strict=True)}
        keys = sorted({k for m in meta.values() for k in m})
        if column not in keys:
            cols = [c for c in segs.columns if c != "metadata"]
            raise ConfigError(f"group_by {column}: no such segments column or metadata key; "
                              f"columns: {', '.join(cols)}; metadata keys: {', '.join(keys) or 'none'}", param="group_by")
        values = {s: (None if m.get(column) is None else str(m[column])) for s, m in meta.items()}
    out = np.array([values.get(s) for s in ids], dtype=object)
    empty = int(sum(v is None or v == "" for v in out))
    if empty:
        raise ModelError(f"group_by {column}: {empty} labelled segment(s) have no value; fill it in or group by another column",
                         param="group_by")
    return out


def check_design(labels: Sequence[str] | np.ndarray, groups: Sequence[Any] | np.ndarray, folds: int, column: str | None = None) -> None:
    """Refuse a fold design that cannot work, in one line naming the class or column at fault."""
    lab = np.asarray(labels, dtype=object)
    grp = np.asarray(groups, dtype=object)
    classes, counts = np.unique(lab, return_counts=True)
    for c, n in zip(classes, counts, strict=True):
        if n == 1:
            sid = "" if column else f" ({grp[lab == c][0]})"
            raise ModelError(f"label {c!r} has a single segment{sid}: it cannot be both trained on and predicted; drop or merge it")
    n_groups = len(set(grp.tolist()))
    if folds > n_groups:
        what = f"groups in {column!r}" if column else "labelled segments"
        raise ModelError(f"folds {folds}: only {n_groups} {what}; use at most {n_groups} folds", param="folds")
    for c in classes:
        k = len(set(grp[lab == c].tolist()))
        if folds > k:
            where = f"{column!r} group(s)" if column else "segment(s)"
            raise ModelError(f"folds {folds}: class {c!r} has only {k} {where}, fewer than the folds; use at most {k} folds",
                             param="folds")


def _sgkf(n_splits: int, seed: int):
    from sklearn.model_selection import StratifiedGroupKFold  # 1.2 s CPU to import

    return StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed % (2**32))


def assign_folds(y: np.ndarray, groups: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The held-out fold (0 .. K-1) of each row: StratifiedGroupKFold, shuffled with ``seed``."""
    out = np.full(len(y), -1, dtype=np.int32)
    codes = np.unique(np.asarray(groups, dtype=str), return_inverse=True)[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class has fewer members than n_splits"
        for k, (_, te) in enumerate(_sgkf(folds, seed).split(np.zeros(len(y)), y, codes)):
            out[te] = k
    return out


def inner_validation(y: np.ndarray, groups: np.ndarray, train_idx: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Rows of ``train_idx`` kept for validation: the first fold of a grouped, stratified split of them."""
    codes = np.unique(np.asarray(groups, dtype=str)[train_idx], return_inverse=True)[1]
    n = min(max(folds - 1, MIN_INNER), int(codes.max()) + 1)
    if n < 2:
        raise ModelError("the training folds hold a single group: nothing is left for the inner validation part")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        _, va = next(_sgkf(n, seed).split(np.zeros(len(train_idx)), y[train_idx], codes))
    return np.sort(train_idx[va])


def _fewer(cv: CrossfitConfig) -> str:
    if cv.folds > 2:
        return f"use fewer folds ({cv.folds - 1}) or leave that group out"
    return "leave that group out or add segments that have it"


def missing_strata(ds: Dataset) -> np.ndarray:
    """Strata for the folds: the label and which groups a segment has ("a|101"), so that segments
    without a modality (audio-only clips) are spread over the folds like the others."""
    pattern = ["".join("1" if p else "0" for p in row) for row in ds.mask.tolist()]
    return np.array([f"{lab}|{pat}" for lab, pat in zip(ds.labels, pattern, strict=True)], dtype=object)


def check_units(ds: Dataset, specs: Sequence[ModelSpec], fold_arrays: Sequence[np.ndarray],
                vals: dict[tuple[int, int], np.ndarray], cv: CrossfitConfig) -> None:
    """Refuse, naming the repeat and fold, a (repeat, fold) where a model's fitting part holds one class
    only or its inner validation part is empty (a model sees only the segments that have its inputs)."""
    for spec in specs:
        m = ds.subset(spec.groups).mask
        have = np.asarray(m.any(axis=1) if spec.cfg.arch == "fusion" else m.all(axis=1))
        for (r, k), val in vals.items():
            fit_rows = have & (fold_arrays[r] != k)
            fit_rows[val] = False
            where = f"repeat {r}, fold {k}" if cv.repeats > 1 else f"fold {k}"
            classes = sorted(set(np.asarray(ds.labels, dtype=object)[fit_rows].tolist()))
            if len(classes) < 2:
                held = sorted(set(ds.classes) - set(classes))
                raise ModelError(
                    f"folds {cv.folds}: {where}: model {spec.name!r} would be fitted on "
                    f"{'class ' + ', '.join(map(repr, classes)) + ' only' if classes else 'no segment'} "
                    f"({', '.join(map(repr, held))} all held out or in the inner validation part, among the "
                    f"{int(have.sum())} segments that have {', '.join(spec.groups)}); {_fewer(cv)}", param="folds")
            if not have[val].any():
                raise ModelError(f"folds {cv.folds}: {where}: model {spec.name!r} has no segment in its inner validation part "
                                 f"(none of them has {', '.join(spec.groups)}); {_fewer(cv)}", param="folds")


# -- one (repeat, fold) ----------------------------------------------------------------------------
def _run_unit(ds: Dataset, specs: Sequence[ModelSpec], repeat: int, fold: int, folds: np.ndarray, val: np.ndarray) -> dict[str, Any]:
    """Fit every model on one (repeat, fold); top level so that a spawned worker can run it."""
    from ambiguity.models.saved import state_bytes  # imports torch: 1.2 s CPU to import
    from ambiguity.models.training import fit  # torch: the store readers below do without it

    t = time.perf_counter()
    split = np.where(folds == fold, "test", "train").astype(object)
    split[val] = "val"
    view = dataclasses.replace(ds, split=np.asarray(split, dtype=str))
    te = view.index("test")
    out: dict[str, Any] = {"repeat": repeat, "fold": fold, "models": {}}
    out["weights"] = {}
    for spec in specs:
        sub = view.for_model(spec.groups, spec.cfg.arch == "fusion")  # the segments that have its input(s)
        res = fit(sub, spec.cfg)
        st = sub.index("test")
        out["models"][spec.name] = (res.probs[st], None if res.attention is None else res.attention[st], res.best_epoch, res.device,
                                    [sub.segment_ids[i] for i in st], [sub.inputs()[i] for i in st])
        # kept so that attribution and reliance can run the model that never saw this fold
        out["weights"][spec.name] = (state_bytes(res.model), [standardiser(x, res.train_idx) for x in sub.X], res.train_idx)
    out["train"] = [ds.segment_ids[i] for i in view.index("train")]
    out["val"] = [ds.segment_ids[i] for i in view.index("val")]
    out["test"] = [ds.segment_ids[i] for i in te]
    out["seconds"] = time.perf_counter() - t
    return out


# -- the run -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CrossfitReport:
    """What a cross-fitting run did: fits run and skipped, out-of-fold accuracy and F1 per repeat."""

    run_id: str
    models: tuple[str, ...]
    folds: int
    repeats: int
    group_by: str | None
    n: int
    dropped: dict[str, int]
    fitted: int  # (repeat, fold) units fitted by this call
    skipped: int  # units already finished by an earlier call
    metrics: dict[str, list[dict[str, float]]] = field(default_factory=dict)  # model -> one dict per repeat
    leaks: tuple[str, ...] = ()  # media/audio files (or group values) in more than one fold (leakage.fold_leakage)

    def summary(self) -> str:
        grouped = f"grouped by {self.group_by}" if self.group_by else "each segment its own group"
        lines = [f"cross-fitting run {self.run_id}: {self.folds} folds x {self.repeats} repeat(s), {grouped}, "
                 f"{self.n} segments; {self.fitted} (repeat, fold) fitted now, {self.skipped} already done"]
        if self.dropped:
            lines[0] += "; dropped: " + ", ".join(f"{v} ({k})" for k, v in self.dropped.items())
        def sd(a: np.ndarray) -> str:
            return f" ± {a.std(ddof=1):.3f}" if len(a) > 1 else ""

        for m, per in self.metrics.items():
            acc = np.array([d["accuracy"] for d in per])
            f1 = np.array([d["f1"] for d in per])
            lines.append(f"  {m}: out-of-fold accuracy {acc.mean():.3f}{sd(acc)}, F1 {f1.mean():.3f}{sd(f1)}")
        for line in self.leaks:
            lines.append(f"  warning: {line}: a model predicts segments whose file it was trained on; group by a column "
                         "that keeps each file in one group")
        return "\n".join(lines)


def _fingerprint(store: FeatureStore, ds: Dataset, specs: Sequence[ModelSpec], cv: CrossfitConfig, groups: np.ndarray) -> str:
    prov = store.groups()
    h = hashlib.sha256()
    h.update(json.dumps({
        "specs": [(s.name, s.groups, dataclasses.asdict(s.cfg)) for s in specs],
        "cv": [cv.folds, cv.repeats, cv.group_by, cv.seed],
        "features": {g: [prov.get(g, {}).get("config_key"), prov.get(g, {}).get("created_at")] for g in ds.groups},
    }, sort_keys=True, default=str).encode())
    for sid, lab, grp in zip(ds.segment_ids, ds.labels, groups, strict=True):
        h.update(f"{sid}\t{lab}\t{grp}\n".encode())
    return "cf-" + h.hexdigest()[:16]


def finished_units(store: FeatureStore, run_id: str) -> set[tuple[int, int]]:
    if not store.has_table(FITS):
        return set()
    df = FITS.read(store, ["repeat", "fold"], run_id=run_id)
    return {(int(r), int(k)) for r, k in zip(df["repeat"].to_list(), df["fold"].to_list(), strict=True)}


def read_folds(store: FeatureStore, run_id: str | None = None) -> pl.DataFrame:
    """The saved fold of every segment per repeat (columns run_id, repeat, segment_id, group, label, fold)."""
    if not store.has_table(FOLDS):
        raise MissingGroupError("the store has no saved folds: run `ambiguity train GROUPS --folds K` first")
    return FOLDS.read(store, run_id=run_id).drop("key")


def read_fits(store: FeatureStore, run_id: str | None = None) -> pl.DataFrame:
    """One row per finished (repeat, fold): the ids fitted on, validated on and predicted."""
    if not store.has_table(FITS):
        raise MissingGroupError("the store has no cross-fitting record: run `ambiguity train GROUPS --folds K` first")
    return FITS.read(store, run_id=run_id).drop("key")


def _forget_other_runs(store: FeatureStore, models: Sequence[str], run_id: str) -> None:
    """Delete the cross-fitted rows and fold models of ``models`` from other runs, and the fold records nothing uses any more."""
    from ambiguity.models.saved import delete_fold_models  # imports torch: 1.2 s CPU to import

    delete_fold_models(store, models, run_id)
    if not store.has_table(PREDICTIONS) or "scheme" not in store.schema(PREDICTIONS).names:
        return
    rows = PREDICTIONS.read(store, ["model", "run_id"], scheme=Scheme.CROSSFIT)
    # Each delete is a Lance commit: only delete what is there.
    if rows.filter(pl.col("model").is_in(list(models)) & (pl.col("run_id") != run_id)).height:
        P.delete_crossfit(store, models, keep_run=run_id)
        rows = PREDICTIONS.read(store, ["model", "run_id"], scheme=Scheme.CROSSFIT)
    live = set(rows["run_id"].unique().to_list()) | {run_id}
    for table in (FOLDS, FITS):
        if store.has_table(table) and set(store.read(table, ["run_id"])["run_id"].unique().to_list()) - live:
            table.delete(store, run_id=Not(sorted(live)))


def _write_unit(store: FeatureStore, ds: Dataset, specs: Sequence[ModelSpec], out: dict[str, Any], run_id: str, cv: CrossfitConfig,
                fold_of: dict[str, int], row: dict[str, int]) -> None:
    tables = []
    for spec in specs:
        probs, att, best, device, te, inputs = out["models"][spec.name]
        idx = [row[s] for s in te]
        labels = [ds.labels[i] for i in idx]
        splits = [ds.split[i] for i in idx]
        sub = ds.subset(spec.groups)
        config = {**dataclasses.asdict(spec.cfg), "epochs": spec.cfg.n_epochs, "lr": spec.cfg.start_lr,
                  "max_lr": spec.cfg.peak_lr, "best_epoch": best, "device": device, "folds": cv.folds,
                  "repeats": cv.repeats, "group_by": cv.group_by, "cv_seed": cv.seed}
        tables.append(P.prediction_table(
            model=spec.name, kind=spec.cfg.kind, arch=spec.cfg.arch, modalities=sub.modalities, groups=sub.groups,
            segment_ids=te, splits=splits, labels=labels, classes=ds.classes, probs=probs, attention=att,
            config=config, seed=spec.cfg.seed, run_id=run_id, scheme="crossfit", fold=[fold_of[s] for s in te],
            repeat=out["repeat"], inputs=inputs,
        ))
    P.write_crossfit_rows(store, pa.concat_tables(tables))
    r, k = out["repeat"], out["fold"]
    from ambiguity.models.saved import model_row, write_models  # imports torch: 1.2 s CPU to import

    write_models(store, pa.concat_tables([
        model_row(spec.name, spec.cfg, ds.for_model(spec.groups, spec.cfg.arch == "fusion"), out["weights"][spec.name][2], out["weights"][spec.name][1],
                  out["weights"][spec.name][0], run_id=run_id, repeat=r, fold=k) for spec in specs]))
    store.upsert(FITS, pa.table({
        "key": [f"{run_id}|{r}|{k}"], "run_id": [run_id], "repeat": [r], "fold": [k],
        "models": [[s.name for s in specs]], "best_epochs": [[out["models"][s.name][2] for s in specs]],
        "train_ids": [out["train"]], "val_ids": [out["val"]], "test_ids": [out["test"]], "seconds": [out["seconds"]],
        "finished_at": [S.now()],
    }, schema=FITS_SCHEMA), key="key", schema=FITS_SCHEMA)


def crossfit(
    store: FeatureStore,
    groups: Sequence[str],
    *,
    cv: CrossfitConfig | None = None,
    on_fit: Callable[[int, int, float], None] | None = None,
    **choice: Unpack[ModelChoice],
) -> CrossfitReport:
    """Cross-fit one unimodal model per group and a fusion model over all groups, or the models ``choice``
    asks for (see :class:`~ambiguity.models.spec.ModelChoice` and the module notes).

    ``on_fit(repeat, fold, seconds)`` is called after each (repeat, fold) is written.
    """
    from ambiguity.models.finetune import check_not_finetuned  # imports torch: 1.4 s CPU to import

    cv = cv or CrossfitConfig()
    specs = plan_models(groups, choice)
    check_not_finetuned(store, list(dict.fromkeys(groups)))
    ds = load_dataset(store, list(dict.fromkeys(groups)), need_split=False, partial=True)
    grp = segment_groups(store, ds.segment_ids, cv.group_by)
    check_design(ds.labels, grp, cv.folds, cv.group_by)
    strata = missing_strata(ds)
    fold_arrays = [assign_folds(strata, grp, cv.folds, cv.seed + r) for r in range(cv.repeats)]
    vals = {(r, k): inner_validation(strata, grp, np.flatnonzero(fold_arrays[r] != k), cv.folds, cv.seed + r)
            for r in range(cv.repeats) for k in range(cv.folds)}
    check_units(ds, specs, fold_arrays, vals, cv)  # before anything is written
    run_id = _fingerprint(store, ds, specs, cv, grp)
    _forget_other_runs(store, [s.name for s in specs], run_id)

    n = len(ds.segment_ids)
    have = FOLDS.read(store, ["key"], run_id=run_id).height if store.has_table(FOLDS) else 0
    if have != n * cv.repeats:
        store.upsert(FOLDS, pa.table({
            "key": [f"{run_id}|{r}|{s}" for r in range(cv.repeats) for s in ds.segment_ids],
            "run_id": [run_id] * (n * cv.repeats),
            "repeat": np.repeat(np.arange(cv.repeats, dtype=np.int32), n),
            "segment_id": ds.segment_ids * cv.repeats,
            "group": [str(g) for g in grp] * cv.repeats,
            "label": ds.labels * cv.repeats,
            "fold": np.concatenate(fold_arrays).astype(np.int32),
        }, schema=FOLDS_SCHEMA), key="key", schema=FOLDS_SCHEMA)

    done = finished_units(store, run_id)
    todo = [(r, k) for r in range(cv.repeats) for k in range(cv.folds) if (r, k) not in done]
    row = {s: i for i, s in enumerate(ds.segment_ids)}

    def job(r: int, k: int) -> tuple:
        val = vals[(r, k)]
        rspecs = [dataclasses.replace(s, cfg=dataclasses.replace(s.cfg, seed=cv.seed + r)) for s in specs]
        return ds, rspecs, r, k, fold_arrays[r], val

    def written(out: dict[str, Any]) -> None:
        r = out["repeat"]
        rspecs = [dataclasses.replace(s, cfg=dataclasses.replace(s.cfg, seed=cv.seed + r)) for s in specs]
        fold_of = {s: int(f) for s, f in zip(ds.segment_ids, fold_arrays[r], strict=True)}
        _write_unit(store, ds, rspecs, out, run_id, cv, fold_of, row)
        if on_fit:
            on_fit(r, out["fold"], out["seconds"])

    workers = min(cv.workers, len(todo))
    if workers <= 1:
        for r, k in todo:
            written(_run_unit(*job(r, k)))
    else:

        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_run_unit, *job(r, k)) for r, k in todo]
            for fut in as_completed(futures):
                written(fut.result())

    folds_df = pl.DataFrame({"segment_id": ds.segment_ids * cv.repeats,
                             "repeat": np.repeat(np.arange(cv.repeats), n), "fold": np.concatenate(fold_arrays)})
    leaks = tuple(r.line() for r in fold_leakage(store.segments(), folds_df, [cv.group_by] if cv.group_by else None)
                  if r.shared)
    return CrossfitReport(run_id, tuple(s.name for s in specs), cv.folds, cv.repeats, cv.group_by, n, dict(ds.dropped),
                          len(todo), len(done), _oof_metrics(store, [s.name for s in specs], cv.repeats), leaks)


def _oof_metrics(store: FeatureStore, models: Sequence[str], repeats: int) -> dict[str, list[dict[str, float]]]:
    from ambiguity.models.training import metrics  # imports torch: 1.2 s CPU to import

    df = P.read_predictions(store, list(models), scheme="crossfit").select(["model", "repeat", "label", "predicted"])
    out: dict[str, list[dict[str, float]]] = {}
    for m in models:
        d = df.filter(pl.col("model") == m)
        out[m] = [metrics(x["label"].to_list(), x["predicted"].to_list()) for r in range(repeats)
                  if (x := d.filter(pl.col("repeat") == r)).height]
    return out


def default_workers() -> int:
    """Cores this process may use (the pool size a caller might choose)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def fixed_split_warning(store: FeatureStore, *, config: bool = False) -> str | None:
    """One line when the fixed split shares groups (dialog_id, speaker, video, source) across splits, else None.

    The suggestion names CLI options, or ``[train]`` keys with ``config=True``.
    """
    try:
        rows = [r for r in leakage_report(store.segments()) if r.shared and r.split != "train"]
    except Exception:  # a malformed metadata column must not stop training; ingest reports it
        return None
    if not rows:
        return None
    first = rows[0]
    more = f" (and {len(rows) - 1} more split/column pair(s))" if len(rows) > 1 else ""
    fix = f"[train] folds = 5, group_by = \"{first.column}\"" if config else f"--folds 5 --group-by {first.column}"
    return (f"warning: {first.line()}{more}: on the fixed split a model is evaluated on groups it was trained on; "
            f"cross-fit instead: {fix}")
