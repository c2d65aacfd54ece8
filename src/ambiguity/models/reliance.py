"""Dataset-level reliance of a saved fusion model on each modality, from stored features only.

Perceptual Score (Gat et al. 2021): the accuracy lost when one modality's features
are permuted across the segments (breaking their link with the other modalities and
the label), averaged over P seeded permutations. Per segment i,
delta_i = correct_i - mean_p correct_{i,p}; the score is mean_i delta_i (an accuracy
drop), ``relative`` divides it by the unpermuted accuracy, and the interval is a
percentile bootstrap of the mean of delta over segments.

Counterfactual swap: each segment's features of one modality are replaced by those
of a random segment (seeded) of another class. ``follows`` is the share of segments
whose prediction becomes the donor's class, ``keeps`` the share still predicting
their own class, with Wilson intervals. Any number of classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import torch

from ambiguity.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore



@torch.inference_mode()
def _predict(net: torch.nn.Module, Z: Sequence[np.ndarray], chunk: int = 8192) -> np.ndarray:
    n = len(Z[0])
    out = []
    for s in range(0, n, chunk):
        out.append(net([torch.from_numpy(np.ascontiguousarray(z[s : s + chunk])) for z in Z]).logits.argmax(1).numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def _prepared(store: FeatureStore, model, splits):
    from ambiguity.models.attributions import prepare

    pr = prepare(store, model, splits)
    if len(pr.y) < 2:
        raise ModelError(f"reliance needs at least 2 segments; {len(pr.y)} usable in {', '.join(splits or ['all splits'])}")
    return pr


def perceptual_score(store: FeatureStore, model: str = "fusion", *, splits: Sequence[str] | None = ("test",),
                     n_permutations: int = 10, seed: int = 0, n_boot: int = 2000, ci: float = 0.95) -> pl.DataFrame:
    """One row per modality: modality, group, n, accuracy, permuted_accuracy, score (the accuracy drop),
    ci_low, ci_high, relative (score / accuracy), n_permutations."""
    if n_permutations < 1:
        raise ConfigError(f"n_permutations={n_permutations}: permute at least once")
    pr = _prepared(store, model, splits)
    net, n = pr.model.model, len(pr.y)
    correct = (_predict(net, pr.Z) == pr.y).astype(float)
    acc = float(correct.mean())
    rng = np.random.default_rng(seed)
    rows = []
    for m, (mod, group) in enumerate(zip(pr.model.modalities, pr.model.groups, strict=True)):
        perm_correct = np.zeros(n)
        for _ in range(n_permutations):
            Z = list(pr.Z)
            Z[m] = pr.Z[m][rng.permutation(n)]
            perm_correct += _predict(net, Z) == pr.y
        delta = correct - perm_correct / n_permutations
        boots = delta[rng.integers(0, n, (n_boot, n))].mean(1) if n_boot else np.array([np.nan])
        lo, hi = np.quantile(boots, [0.5 - ci / 2, 0.5 + ci / 2])
        rows.append({"modality": mod, "group": group, "n": n, "accuracy": acc,
                     "permuted_accuracy": float(perm_correct.mean() / n_permutations), "score": float(delta.mean()),
                     "ci_low": float(lo), "ci_high": float(hi), "relative": float(delta.mean() / acc) if acc else float("nan"),
                     "n_permutations": n_permutations})
    return pl.DataFrame(rows)


def counterfactual_swap(store: FeatureStore, model: str = "fusion", *, splits: Sequence[str] | None = ("test",), seed: int = 0,
                        ci: float = 0.95) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(summary, pairs). summary: modality, group, n, follows, follows_low, follows_high, keeps, keeps_low,
    keeps_high; pairs: segment_id, label, modality, donor_id, donor_label, predicted (after the swap)."""
    from statsmodels.stats.proportion import proportion_confint

    pr = _prepared(store, model, splits)
    net, n = pr.model.model, len(pr.y)
    classes = pr.model.classes
    if len(set(pr.y.tolist())) < 2:
        raise ModelError("a counterfactual swap needs segments of at least two classes")
    rng = np.random.default_rng(seed)
    by_class = {c: np.flatnonzero(pr.y != c) for c in set(pr.y.tolist())}
    summary, pairs = [], []
    for m, (mod, group) in enumerate(zip(pr.model.modalities, pr.model.groups, strict=True)):
        donors = np.array([by_class[c][rng.integers(0, len(by_class[c]))] for c in pr.y])
        Z = list(pr.Z)
        Z[m] = pr.Z[m][donors]
        pred = _predict(net, Z)
        k_f, k_k = int((pred == pr.y[donors]).sum()), int((pred == pr.y).sum())
        f_lo, f_hi = proportion_confint(k_f, n, alpha=1 - ci, method="wilson")
        k_lo, k_hi = proportion_confint(k_k, n, alpha=1 - ci, method="wilson")
        summary.append({"modality": mod, "group": group, "n": n, "follows": k_f / n, "follows_low": float(f_lo),
                        "follows_high": float(f_hi), "keeps": k_k / n, "keeps_low": float(k_lo), "keeps_high": float(k_hi)})
        pairs.append(pl.DataFrame({
            "segment_id": pr.segment_ids, "label": pr.labels, "modality": [mod] * n,
            "donor_id": [pr.segment_ids[j] for j in donors], "donor_label": [pr.labels[j] for j in donors],
            "predicted": [classes[k] for k in pred],
        }))
    return pl.DataFrame(summary), pl.concat(pairs)
