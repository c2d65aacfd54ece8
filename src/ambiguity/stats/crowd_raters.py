"""Rater-level models when rater ids exist: Dawid-Skene posteriors and per-rater confusion matrices.

The EM is crowd-kit's ``DawidSkene`` (Ustalov et al., Toloka; the ``crowd``
extra), fitted once per condition on the votes one by one (item, rater, label).
Its posteriors are soft labels that weigh raters by their estimated accuracy;
the comparison with the plurality vote says how many items change label and how
each agrees with gold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from ambiguity.errors import StatsError, UnavailableError


@dataclass(frozen=True)
class RaterModel:
    posteriors: pl.DataFrame  # condition, item, ds_label, posterior (list aligned with classes)
    confusion: pl.DataFrame  # condition, rater, true, observed, p  (P(observed | true) per rater)
    comparison: pl.DataFrame  # per condition: items, agree (DS label = untied plurality), ds/plurality accuracy
    classes: tuple[str, ...]


def _crowdkit():
    try:
        from crowdkit.aggregation import DawidSkene  # optional: ambiguity[crowd]
    except ImportError:
        raise UnavailableError("Dawid-Skene needs crowd-kit: pip install 'ambiguity[crowd]'") from None
    return DawidSkene


def dawid_skene(ratings: pl.DataFrame, classes: Sequence[str], gold: pl.DataFrame | None = None, *,
                n_iter: int = 100, tol: float = 1e-5) -> RaterModel:
    """Fit Dawid-Skene per condition of ``ratings`` (item, condition, rater, label); ``gold`` (item, gold), if given,
    scores the DS labels and the plurality labels against it (a plurality tie counts as wrong)."""
    import pandas as pd  # optional: comes with ambiguity[crowd]

    DawidSkene = _crowdkit()
    classes = tuple(str(c) for c in classes)
    if ratings.height == 0:
        raise StatsError("no ratings with rater ids: Dawid-Skene needs a long table (item, rater, condition, label)")
    post, conf, comp = [], [], []
    for (cond,), g in ratings.group_by(["condition"], maintain_order=True):
        df = pd.DataFrame({"task": g["item"].to_list(), "worker": g["rater"].to_list(), "label": g["label"].to_list()})
        ds = DawidSkene(n_iter=n_iter, tol=tol).fit(df)
        probas = ds.probas_.reindex(columns=list(classes), fill_value=0.0).fillna(0.0)
        items = [str(i) for i in probas.index]
        p = probas.to_numpy(dtype=float)
        post.append(pl.DataFrame({"condition": [cond] * len(items), "item": items,
                                  "ds_label": [classes[i] for i in p.argmax(axis=1)], "posterior": p.tolist()}))
        err = ds.errors_.stack().reset_index()
        err.columns = ["rater", "observed", "true", "p"]
        conf.append(pl.DataFrame({"condition": [cond] * len(err), "rater": err["rater"].astype(str).tolist(),
                                  "true": err["true"].astype(str).tolist(), "observed": err["observed"].astype(str).tolist(),
                                  "p": err["p"].astype(float).tolist()}))
        counts = g.group_by("item").agg([(pl.col("label") == c).sum().alias(c) for c in classes])
        m = counts.select(classes).to_numpy()
        top = m.max(axis=1)
        single = (m == top[:, None]).sum(axis=1) == 1
        plural = pl.DataFrame({"item": counts["item"], "plurality": [classes[i] for i in m.argmax(axis=1)],
                               "untied": single})
        both = post[-1].join(plural, on="item")
        row = {"condition": cond, "items": both.height, "raters": g["rater"].n_unique(),
               "agree": float(np.mean((both["ds_label"] == both["plurality"]).to_numpy() & both["untied"].to_numpy()))}
        if gold is not None:
            b = both.join(gold.select("item", "gold"), on="item", how="inner")
            ds_right = (b["ds_label"] == b["gold"]).to_numpy()
            pl_right = ((b["plurality"] == b["gold"]) & b["untied"]).to_numpy()
            row["ds_accuracy"] = float(ds_right.mean()) if b.height else float("nan")
            row["plurality_accuracy"] = float(pl_right.mean()) if b.height else float("nan")
        comp.append(row)
    return RaterModel(pl.concat(post), pl.concat(conf), pl.DataFrame(comp), classes)
