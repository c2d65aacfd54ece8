"""Names shared by every layer: modalities, quadrants and their default pairs, schemes, multiple-testing corrections."""

from __future__ import annotations

#: The three modalities an extractor, a model or an annotation item belongs to.
MODALITIES: tuple[str, ...] = ("text", "audio", "video")

#: The four confidence quadrants of a unimodal model against the fusion model.
QUADRANTS: tuple[str, ...] = ("red", "green", "blue", "yellow")
QUADRANT_COLOURS = {"red": "#d62728", "green": "#2ca02c", "blue": "#1f77b4", "yellow": "#e6b800"}
QUADRANT_MEANING = {
    "red": "unimodal right, fusion wrong",
    "green": "unimodal wrong, fusion right",
    "blue": "both right",
    "yellow": "both wrong",
}


class Scheme:
    """How a predictor's predictions were made out of sample: the values of the predictions table's ``scheme``
    column, and what a reader may ask for. The one definition (plain strings, as stored).

    ``fixed``: one fit on the train split, predicting val and test. ``crossfit``: K folds x R repeats, every
    labelled segment predicted by fits that never saw it. ``human``: annotators' judgments as predictors, never
    mixed with the model schemes except in the model-versus-human comparison. ``auto`` is a request, not a stored
    value: crossfit when every model has it, else fixed, or human when every predictor is human
    (``ambiguity.stats.stability.resolve_scheme``).
    """

    FIXED = "fixed"
    CROSSFIT = "crossfit"
    HUMAN = "human"
    AUTO = "auto"
    #: The schemes a model is trained under.
    MODELS: tuple[str, ...] = (FIXED, CROSSFIT)
    #: Every value the predictions table's scheme column may hold.
    STORED: tuple[str, ...] = (FIXED, CROSSFIT, HUMAN)
    #: What a reader of model predictions (quadrants, comparisons, attributions, the CLI's --scheme) may ask for.
    CHOICES: tuple[str, ...] = (AUTO, FIXED, CROSSFIT)
    #: What the quadrant readers (quadrants, Tables 1-2, compare) may ask for: people run through them as models do
    #: (human unimodal conditions against the audio-visual one), one scheme at a time.
    WITH_HUMAN: tuple[str, ...] = (AUTO, FIXED, CROSSFIT, HUMAN)
    #: The fixed scheme's out-of-sample split: the models trained on train and val chose their epoch.
    HELD_OUT: tuple[str, ...] = ("test",)


#: The quadrant pairs compared by default, named by purpose.
#: Feature comparisons (Tables 3, 6, 7 and 4, 8): each disagreement quadrant against both right, and red vs green.
COMPARISON_PAIRS: tuple[tuple[str, str], ...] = (("red", "blue"), ("green", "blue"), ("red", "green"))
#: Attribution and boundary tests: each disagreement quadrant against both right.
AGAINST_BLUE_PAIRS: tuple[tuple[str, str], ...] = (("red", "blue"), ("green", "blue"))

#: Multiple-testing corrections (statsmodels method names, plus ``none``).
CORRECTIONS: tuple[str, ...] = ("holm", "fdr_bh", "fdr_by", "bonferroni", "hommel", "none")

#: How each correction is named in tables and captions.
CORRECTION_NAMES = {
    "holm": "Holm",
    "fdr_bh": "Benjamini-Hochberg",
    "fdr_by": "Benjamini-Yekutieli",
    "bonferroni": "Bonferroni",
    "hommel": "Hommel",
    "none": "no correction",
}
