"""Computing an explorer entry: quadrants, scores and the points file, one step at a time.

Called by :func:`ambiguity.explore.data.load` when the store's cache has no entry for the options.
Above APART_ABOVE segments the quadrants and the scores each run in a spawned process, so what the
allocators keep after a step is not held through the next.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from ambiguity.apart import APART_ABOVE, opened, run_apart
from ambiguity.constants import QUADRANT_COLOURS, QUADRANT_MEANING, QUADRANTS, Scheme
from ambiguity.explore import points as P
from ambiguity.stores.tables import PREDICTIONS, SEGMENTS

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore

NO_PREDICTIONS = "the store has no predictions: run `ambiguity train` (or `ambiguity predictions import FILE`), then restart `ambiguity explore`"


def _counts(q: pl.DataFrame) -> dict[str, int]:
    got = dict(q.group_by("quadrant").len().iter_rows())
    return {k: int(got.get(k, 0)) for k in QUADRANTS}



def _quadrant_step(store: FeatureStore | str, folder: Path, models: list[str], fusion: str, scheme: str,
                   threshold: float) -> dict[str, dict[str, int]]:
    """Each model's quadrant frame written to the entry (and dropped); returns the exact counts."""
    from ambiguity.explore.cache import write_frame
    from ambiguity.stats.quadrant_tables import load_quadrants

    store, counts = opened(store), {}
    for i, m in enumerate(models):
        # fixed: the test split only (train and val are in sample), as every other number on the fixed scheme
        q = load_quadrants(store, m, fusion, splits=Scheme.HELD_OUT if scheme == "fixed" else None,
                           threshold=threshold, scheme=scheme)
        write_frame(folder, f"quadrants-{i}", q)
        counts[m] = _counts(q)
        del q  # read back slim later: nothing of ours is held while the scores are computed
    return counts


def _score_step(store: FeatureStore | str, folder: Path, fusion: str | None, embedding: str | None,
                weights: Mapping[str, Any] | None) -> tuple[dict[str, float], list[str], dict[str, str], list[str]]:
    """The scores written to the entry; returns (weights, available, missing, components in the frame)."""
    from ambiguity.explore.cache import write_frame
    from ambiguity.stats.score import ambiguity_scores

    scores = ambiguity_scores(opened(store), fusion=fusion, embedding=embedding, weights=weights)
    write_frame(folder, "scores", scores.frame)
    return scores.weights, list(scores.available), scores.missing, [c for c in scores.available if c in scores.frame.columns]


def entry(
    store: FeatureStore, folder: Path, scheme: str, fusion: str | None, unimodal: list[str] | None, threshold: float,
    embedding: str | None, weights: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Compute the entry's files into ``folder`` one step at a time (quadrants, scores, points; above
    APART_ABOVE segments the first two each in a process of their own); returns its summary."""
    from ambiguity.stats.quadrant_tables import resolve_model, unimodal_models
    from ambiguity.stats.score import fusion_model
    from ambiguity.stores.schema import table_name

    apart = store.count(SEGMENTS) > APART_ABOVE
    where: FeatureStore | str = store.uri if apart else store
    embedding_groups = [g for g in store.groups() if "vector" in store.schema(table_name(g)).names]
    quads: dict[str, pl.DataFrame] = {}
    counts: dict[str, dict[str, int]] = {}
    problem = None
    models: list[str] = []
    if not PREDICTIONS.exists(store):
        problem = NO_PREDICTIONS
    else:
        human = scheme == Scheme.HUMAN  # people (human:audio, human:video against human:all), never with models
        fusion = resolve_model(store, fusion) if fusion else "human:all" if human else fusion_model(store)
        models = [resolve_model(store, m) for m in unimodal] if unimodal else sorted(unimodal_models(store, human=human))
        if fusion is None or not models:
            problem = "the store needs a fusion model and at least one unimodal model: run `ambiguity train GROUP GROUP ...`"
            models = []
        if models:
            from ambiguity.models.predictions import model_summary
            from ambiguity.stats.stability import resolve_scheme

            # one scheme for every panel; crossfit: modal quadrant, mean p over repeats, stability
            scheme = resolve_scheme(model_summary(store), [*models, fusion], scheme, Scheme.WITH_HUMAN)
            assert fusion is not None  # models is emptied when there is no fusion model
            counts = run_apart(apart, _quadrant_step, where, folder, models, fusion, scheme, threshold)
    # the score is the models' (out of sample); people have their own numbers (`ambiguity annotations human`)
    weights, available, missing, components = run_apart(
        apart, _score_step, where, folder, fusion if models and scheme != Scheme.HUMAN else None, embedding, weights)
    for i, m in enumerate(models):
        lf = pl.scan_parquet(folder / f"quadrants-{i}.parquet")
        quads[m] = lf.select("segment_id", "p_unimodal", "p_fusion", "quadrant",
                             *(["stability"] if "stability" in lf.collect_schema().names() else [])).collect()
    frame, facts = P.build(SEGMENTS.read(store, ["segment_id", "label", "split", "metadata"]), quads,
                           pl.read_parquet(folder / "scores.parquet", columns=["segment_id", "score", *components]), components)
    del quads
    P.write(frame, folder / P.FILE)
    return {
        **facts, "scheme": scheme, "fusion": fusion if models else None, "unimodal": models, "threshold": threshold,
        "problem": problem, "embeddings": embedding_groups, "weights": weights, "available": available,
        "missing": missing, "quadrants": list(QUADRANTS), "colours": QUADRANT_COLOURS, "meaning": QUADRANT_MEANING,
        # exact counts over every segment, whatever the page draws (it may bin or sample points)
        "counts": counts,
    }
