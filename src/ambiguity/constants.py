"""Names shared by every layer: modalities, quadrants, multiple-testing corrections."""

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
