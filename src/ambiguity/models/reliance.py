"""Dataset-level reliance of a saved fusion model on each player, from stored features only.

Players are the model's feature groups (two audio groups are two players), or with
``pool`` one per modality holding its groups (:func:`ambiguity.models.shapley.players`,
the attribution's definition); rows give ``player``, ``modality`` and ``group`` (null
when pooled).

Perceptual Score (Gat et al. 2021): the accuracy lost when one player's features
are permuted across the segments (breaking their link with the other modalities and
the label), averaged over P seeded permutations. Per segment i,
delta_i = correct_i - mean_p correct_{i,p}; the score is mean_i delta_i (an accuracy
drop), ``relative`` divides it by the unpermuted accuracy, and the interval is a
percentile bootstrap of the mean of delta over segments.

Counterfactual swap: each segment's features of one player are replaced by those
of a random segment (seeded) of another class. ``follows`` is the share of segments
whose prediction becomes the donor's class, ``keeps`` the share still predicting
their own class, with Wilson intervals. Any number of classes.

Out of sample only. On the ``fixed`` scheme the fixed-split model runs on the
test split (by default). On the ``crossfit`` scheme each (repeat, fold) model
runs on the segments its fold held out, permutations and donors drawn among
those segments only; a segment's delta is the mean over repeats, and the
swap's counts pool every repeat (``n`` = segments x repeats). ``auto``:
crossfit when the model has fold models.

Missing inputs: a player's inputs move with their presence (a permuted or swapped-in
absent input stays absent, masked as in training); a segment left with no present
input is predicted as the model with no input would, by its training class prior.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import torch

from ambiguity.errors import ConfigError, ModelError
from ambiguity.models.shapley import players

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore



@torch.inference_mode()
def _predict(pr, Z: Sequence[np.ndarray], present: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Predicted class per row of a prepared unit's inputs ``Z`` with ``present`` (n, M) masking absent inputs;
    a row with no present input gets the class the training prior favours (the model's v(∅))."""
    net, n = pr.model.model, len(Z[0])
    out = np.full(n, int(np.argmax(pr.model.class_prior)), dtype=np.int64)
    rows = np.flatnonzero(present.any(axis=1))
    for s in range(0, len(rows), chunk):
        r = rows[s : s + chunk]
        xs = [torch.from_numpy(np.ascontiguousarray(z[r])) for z in Z]
        out[r] = net(xs, present=torch.from_numpy(present[r])).logits.argmax(1).numpy()
    return out


def _moved(pr, inputs: Sequence[int], rows: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """The unit's inputs and presence with ``inputs`` (one player's) taken from ``rows`` (a permutation or donors)."""
    Z, present = list(pr.Z), np.array(pr.present, dtype=bool, copy=True)
    for i in inputs:
        Z[i] = pr.Z[i][rows]
        present[:, i] = pr.present[rows, i]
    return Z, present


def _players(units, pool: bool):
    first = units[0].model
    return players(first.groups, first.modalities, pool=pool)


def _units(store: FeatureStore, model, splits, scheme: str = "auto") -> tuple[list, str]:
    """The prepared inputs of each model that runs (one on fixed, one per (repeat, fold) on crossfit)."""
    from ambiguity.models.attributions import FIXED_DEFAULT_SPLITS, fold_units, prepare, resolve_scheme

    scheme = resolve_scheme(store, model, scheme)
    if scheme == "fixed":
        units = [prepare(store, model, splits or FIXED_DEFAULT_SPLITS)]
    else:
        units = [pr for sm, ids in fold_units(store, model) if len((pr := prepare(store, sm, splits, ids=ids)).y)]
    n = sum(len(pr.y) for pr in units)
    if n < 2 or any(len(pr.y) < 2 for pr in units):
        raise ModelError(f"reliance needs at least 2 segments per model; {n} usable in {', '.join(splits or ['all splits'])}")
    return units, scheme


def perceptual_score(store: FeatureStore, model: str = "fusion", *, splits: Sequence[str] | None = None,
                     n_permutations: int = 10, seed: int = 0, n_boot: int = 2000, ci: float = 0.95,
                     scheme: str = "auto", pool: bool = False) -> pl.DataFrame:
    """One row per player: player, modality, group (null when pooled), n, accuracy, permuted_accuracy, score
    (the accuracy drop), ci_low, ci_high, relative (score / accuracy), n_permutations, scheme."""
    if n_permutations < 1:
        raise ConfigError(f"n_permutations={n_permutations}: permute at least once")
    units, scheme = _units(store, model, splits, scheme)
    rng = np.random.default_rng(seed)
    rows = []
    for player in _players(units, pool):
        ids, correct, permuted = [], [], []
        for pr in units:
            n = len(pr.y)
            c = (_predict(pr, pr.Z, np.asarray(pr.present, bool)) == pr.y).astype(float)
            perm_correct = np.zeros(n)
            for _ in range(n_permutations):
                perm_correct += _predict(pr, *_moved(pr, player.inputs, rng.permutation(n))) == pr.y
            ids += pr.segment_ids
            correct.append(c)
            permuted.append(perm_correct / n_permutations)
        per = pl.DataFrame({"segment_id": ids, "c": np.concatenate(correct), "p": np.concatenate(permuted)})
        per = per.group_by("segment_id", maintain_order=True).agg(pl.col("c").mean(), pl.col("p").mean())  # mean over repeats
        cor, perm = per["c"].to_numpy(), per["p"].to_numpy()
        delta, n, acc = cor - perm, per.height, float(cor.mean())
        boots = delta[rng.integers(0, n, (n_boot, n))].mean(1) if n_boot else np.array([np.nan])
        lo, hi = np.quantile(boots, [0.5 - ci / 2, 0.5 + ci / 2])
        rows.append({"player": player.name, "modality": player.modality, "group": player.group, "n": n, "accuracy": acc,
                     "permuted_accuracy": float(perm.mean()), "score": float(delta.mean()),
                     "ci_low": float(lo), "ci_high": float(hi), "relative": float(delta.mean() / acc) if acc else float("nan"),
                     "n_permutations": n_permutations, "scheme": scheme})
    return pl.DataFrame(rows, schema_overrides={"group": pl.String})


def counterfactual_swap(store: FeatureStore, model: str = "fusion", *, splits: Sequence[str] | None = None, seed: int = 0,
                        ci: float = 0.95, scheme: str = "auto", pool: bool = False) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(summary, pairs). summary: player, modality, group (null when pooled), n, follows, follows_low, follows_high,
    keeps, keeps_low, keeps_high, scheme; pairs: segment_id, label, player, modality, donor_id, donor_label,
    predicted (after the swap), repeat."""
    from statsmodels.stats.proportion import proportion_confint

    units, scheme = _units(store, model, splits, scheme)
    rng = np.random.default_rng(seed)
    summary, pairs = [], []
    for player in _players(units, pool):
        k_f = k_k = n_all = 0
        for pr in units:
            n, classes = len(pr.y), pr.model.classes
            if len(set(pr.y.tolist())) < 2:
                raise ModelError("a counterfactual swap needs segments of at least two classes")
            by_class = {c: np.flatnonzero(pr.y != c) for c in set(pr.y.tolist())}
            donors = np.array([by_class[c][rng.integers(0, len(by_class[c]))] for c in pr.y])
            pred = _predict(pr, *_moved(pr, player.inputs, donors))
            k_f += int((pred == pr.y[donors]).sum())
            k_k += int((pred == pr.y).sum())
            n_all += n
            pairs.append(pl.DataFrame({
                "segment_id": pr.segment_ids, "label": pr.labels, "player": [player.name] * n, "modality": [player.modality] * n,
                "donor_id": [pr.segment_ids[j] for j in donors], "donor_label": [pr.labels[j] for j in donors],
                "predicted": [classes[k] for k in pred], "repeat": [pr.model.repeat] * n,
            }, schema_overrides={"repeat": pl.Int32}))
        f_lo, f_hi = proportion_confint(k_f, n_all, alpha=1 - ci, method="wilson")
        k_lo, k_hi = proportion_confint(k_k, n_all, alpha=1 - ci, method="wilson")
        summary.append({"player": player.name, "modality": player.modality, "group": player.group, "n": n_all, "follows": k_f / n_all, "follows_low": float(f_lo),
                        "follows_high": float(f_hi), "keeps": k_k / n_all, "keeps_low": float(k_lo), "keeps_high": float(k_hi),
                        "scheme": scheme})
    return pl.DataFrame(summary, schema_overrides={"group": pl.String}), pl.concat(pairs)
