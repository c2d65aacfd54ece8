"""The human analysis of imported judgments: one call from a store (or a votes frame) to every table.

Accuracy per condition, agreement per condition, the human quadrants (each
unimodal condition against the audio-visual one), the agreement change per
quadrant (the Table 5 analogue), the human green and red by intensity and class,
what makes items hard (metadata tests adjusted for gold), Dawid-Skene where
rater ids exist, and the model-versus-human test where the store also holds
cross-fitted models. The statistics live in :mod:`ambiguity.stats.crowd`,
:mod:`ambiguity.stats.crowd_items` and :mod:`ambiguity.stats.crowd_raters`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from ambiguity.annotate.judgments import read_judgments, read_ratings
from ambiguity.annotate.records import read_answers
from ambiguity.annotate.tasks import load_task
from ambiguity.stats import crowd as C
from ambiguity.stats.crowd_items import hardness, model_vs_human
from ambiguity.stats.crowd_raters import dawid_skene
from ambiguity.stats.quadrant_tables import load_quadrants
from ambiguity.tables import to_markdown

if TYPE_CHECKING:
    from ambiguity.stats.crowd_raters import RaterModel
    from ambiguity.stores.lance import FeatureStore

#: CREMA-D's published human recognition rates (Cao et al. 2014, all 91 actors): share of responses naming the
#: intended emotion, per condition.
CREMA_PUBLISHED = {"voice": 0.409, "face": 0.582, "audio-visual": 0.636}
TIE_NOTE = "a condition is right when the gold label alone has the most votes; a tie with another class counts as wrong"


@dataclass
class HumanAnalysis:
    classes: tuple[str, ...]
    accuracy: pl.DataFrame
    agreement: pl.DataFrame
    quadrant_counts: pl.DataFrame
    green_red: pl.DataFrame
    green_red_by: dict[str, pl.DataFrame]
    agreement_change: pl.DataFrame
    hardness: pl.DataFrame
    cluster: str | None  # accuracy and green/red resample these clusters; agreement resamples items
    n_boot: int
    raters: RaterModel | None = None
    anchor: pl.DataFrame | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def interval_note(self, clustered: bool = True) -> str:
        """Accuracy and green/red: percentile over clusters (or items); agreement: BCa over items (stats.intervals)."""
        if not clustered:
            return f"95% BCa bootstrap intervals over items, {self.n_boot} resamples"
        over = f"{self.cluster}s (whole {self.cluster}s resampled)" if self.cluster else "items"
        return f"95% percentile bootstrap intervals over {over}, {self.n_boot} resamples"

    def to_markdown(self) -> str:
        ci, ci_items = self.interval_note(), self.interval_note(clustered=False)
        parts = [
            to_markdown(self.accuracy, caption=f"Human accuracy per condition: per vote (every vote counts once) and "
                        f"by plurality ({TIE_NOTE}); {ci}."),
            to_markdown(self.agreement, caption=f"Agreement per condition from the counts: Fleiss' kappa with each "
                        f"item's own number of raters, Krippendorff's alpha (nominal); {ci_items}."),
            to_markdown(self.quadrant_counts, caption=f"Human quadrants: each unimodal condition against the "
                        f"audio-visual one (red: unimodal right, audio-visual wrong; green: the reverse; {TIE_NOTE})."),
            to_markdown(self.agreement_change, caption=f"Table 5 analogue: Fleiss' kappa of the unimodal and the "
                        f"audio-visual votes on the items of each human quadrant, and the change (audio-visual minus "
                        f"unimodal), paired; {ci_items}. The quadrants are chosen by the same votes, so kappa within a "
                        "quadrant is conditioned on its outcome: compare changes, not levels, across quadrants."),
            to_markdown(self.green_red, caption=f"Does seeing everything help? Share of items where audio-visual is "
                        f"right and the unimodal condition wrong (green) and the reverse (red); {ci}."),
        ]
        for by, df in self.green_red_by.items():
            parts.append(to_markdown(df, caption=f"Human green and red by {by}; {ci}."))
        if self.hardness.height:
            hits = self.hardness.filter(pl.col("p_adjusted") <= 0.05).sort("p_adjusted")
            top = hits.head(20)
            parts.append(to_markdown(top, caption="What makes an item hard for people: quadrant x metadata, "
                                     "Cochran-Mantel-Haenszel tests adjusted for the gold class (pooled odds ratio of "
                                     "being in the quadrant at the level vs not), Holm within each modality; gold "
                                     f"itself by chi-square and Cramér's V. {hits.height} of {self.hardness.height} "
                                     "tests at adjusted p <= 0.05 (the first 20 shown). Clips are counted as "
                                     "independent: for actor-level factors (sex, age) the p-values are too small."))
        if self.anchor is not None:
            parts.append(to_markdown(self.anchor, caption="Per-vote accuracy here against the CREMA-D paper's "
                                     "published rates (Cao et al. 2014, all 91 actors)."))
        if self.raters is not None:
            parts.append(to_markdown(self.raters.comparison, caption="Dawid-Skene (crowd-kit) against the plurality "
                                     "vote: share of items where they agree, and each one's accuracy against gold."))
        return "\n\n".join(parts) + "\n"


def analyse(votes: pl.DataFrame, classes: Sequence[str], *, ratings: pl.DataFrame | None = None,
            cluster: str | None = None, n_boot: int = C.N_BOOT, seed: int = C.SEED,
            by: Sequence[str] = ("intensity", "gold")) -> HumanAnalysis:
    """Every table of the human analysis for a votes frame (see :mod:`ambiguity.stats.crowd`)."""
    cluster = cluster if cluster in votes.columns else None
    soft = C.soft_labels(votes, classes)
    meta = [c for c in votes.columns if c not in ("condition", "modality", "counts") and c != "item"]
    quads = C.human_quadrants(soft, keep=meta)
    gr_by = {b: C.green_red(quads, [b], cluster=cluster, n_boot=n_boot, seed=seed) for b in by if b in quads.columns}
    anchor = None
    conds = set(soft["condition"].to_list())
    if conds <= set(CREMA_PUBLISHED):
        acc = C.accuracy(soft, ["condition"], n_boot=0)
        anchor = acc.select("condition", "items", "votes", pl.col("vote_accuracy").alias("here"),
                            pl.col("condition").replace_strict(CREMA_PUBLISHED, return_dtype=pl.Float64).alias("published"))
        anchor = anchor.with_columns((pl.col("here") - pl.col("published")).alias("difference"))
    raters = None
    if ratings is not None and ratings.height:
        raters = dawid_skene(ratings, classes, votes.select("item", "gold").unique("item"))
    return HumanAnalysis(
        classes=tuple(classes),
        accuracy=C.accuracy(soft, cluster=cluster, n_boot=n_boot, seed=seed),
        agreement=C.agreement_by(soft, n_boot=n_boot, seed=seed),
        quadrant_counts=C.quadrant_counts(quads),
        green_red=C.green_red(quads, cluster=cluster, n_boot=n_boot, seed=seed),
        green_red_by=gr_by,
        agreement_change=C.agreement_change(soft, quads, n_boot=n_boot, seed=seed),
        hardness=hardness(quads),
        cluster=cluster, n_boot=n_boot, raters=raters, anchor=anchor,
        extra={"soft": soft, "quadrants": quads},
    )


def analyse_store(store: FeatureStore, *, cluster: str | None = "actor", n_boot: int = C.N_BOOT,
                  seed: int = C.SEED) -> HumanAnalysis:
    """:func:`analyse` on the store's judgments (and its ratings, when rater ids were imported)."""
    votes, classes = read_judgments(store)
    return analyse(votes, classes, ratings=read_ratings(store), cluster=cluster, n_boot=n_boot, seed=seed)


def model_vs_human_store(store: FeatureStore, unimodal: str, fusion: str, modality: str, *, entropy_of: str = "all",
                         n_boot: int = C.N_BOOT, ci: float = 0.95, seed: int = C.SEED) -> dict[str, Any]:
    """The models' cross-fitted disagreement probability and quadrant per segment (``load_quadrants``) against
    people: the entropy of the votes in condition ``entropy_of`` (``all``: audio-visual) and the human quadrant of
    ``modality`` against audio-visual. See :func:`ambiguity.stats.crowd_items.model_vs_human`."""
    m = load_quadrants(store, unimodal, fusion, scheme="crossfit", ci=ci)
    votes, classes = read_judgments(store)
    soft = C.soft_labels(votes, classes)
    quads = C.human_quadrants(soft).filter(pl.col("modality") == modality)
    ent = soft.filter(pl.col("modality") == entropy_of).select("item", "entropy")
    human = quads.select("item", "quadrant").join(ent, on="item", how="inner")
    return model_vs_human(m, human, n_boot=n_boot, ci=ci, seed=seed)


def task_ratings(store: FeatureStore, task: str) -> tuple[pl.DataFrame, pl.DataFrame, tuple[str, ...]]:
    """The answers of an annotation task (the app's, or imported) as ratings with rater ids: item (the task item),
    condition (the round), rater (the annotator), label; the gold of each item; and the task's choices."""

    t = load_task(store, task)
    answers = read_answers(store, task)
    ratings = answers.select("item", pl.col("round").alias("condition"), pl.col("round").alias("modality"),
                             pl.col("annotator").alias("rater"), pl.col("judgment").alias("label"))
    gold = t.items.select("item", pl.col("label").alias("gold"))
    return ratings, gold, tuple(t.choices)


def task_raters(store: FeatureStore, task: str) -> RaterModel:
    """Dawid-Skene per round of an annotation task: posteriors, per-annotator confusion matrices, and the
    comparison with the plurality vote (see :func:`ambiguity.stats.crowd_raters.dawid_skene`)."""
    ratings, gold, choices = task_ratings(store, task)
    return dawid_skene(ratings, choices, gold)
