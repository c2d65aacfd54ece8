"""People as predictors: accuracy, agreement and human quadrants from imported judgments (many raters per item).

Reads the judgments of the report's store, or of ``human_store`` (a store folder; relative to the folder that
holds the report's store), e.g. the CREMA-D tables imported by ``ambiguity annotations import --preset crema-d``.
"""

from __future__ import annotations

from pathlib import Path

from ambiguity.annotate.human import analyse_store
from ambiguity.annotate.judgments import JUDGMENTS
from ambiguity.errors import MissingGroupError
from ambiguity.report.context import Report, SectionSpec
from ambiguity.report.html import Section

#: Bootstrap resamples of the section's intervals.
N_BOOT = 1000


def _store(rep: Report):
    from ambiguity.stores.lance import FeatureStore

    if not rep.s.human_store:
        return rep.store
    path = Path(rep.s.human_store)
    if not path.is_absolute():
        path = Path(rep.store.uri).parent / path
    if not path.exists():
        raise MissingGroupError(f"no store of human judgments at {path}")
    return FeatureStore(str(path), create=False)


def build(rep: Report, sec: Section) -> None:
    store = _store(rep)
    if not store.has_table(JUDGMENTS):
        raise MissingGroupError("no human judgments in the store")
    res = analyse_store(store, n_boot=N_BOOT)
    ci, ci_items = res.interval_note(), res.interval_note(clustered=False)
    tables = {
        "human_accuracy": (res.accuracy, f"Human accuracy per condition (per vote; plurality, a tie is wrong); {ci}."),
        "human_agreement": (res.agreement, f"Fleiss' kappa (n_i per item) and Krippendorff's alpha per condition; {ci_items}."),
        "human_quadrants": (res.quadrant_counts, "Human quadrants: unimodal condition vs audio-visual (a tie is wrong)."),
        "human_agreement_change": (res.agreement_change, f"Table 5 analogue: kappa unimodal vs audio-visual per human quadrant; {ci_items}."),
        "human_green_red": (res.green_red, f"Human green (audio-visual right, unimodal wrong) and red; {ci}."),
        "human_hardness": (res.hardness, "Quadrant x item metadata, CMH adjusted for gold, Holm per modality."),
    }
    if res.anchor is not None:
        tables["human_anchor"] = (res.anchor, "Per-vote accuracy here vs the CREMA-D paper (91 actors).")
    for stem, (df, caption) in tables.items():
        sec.files += rep.table(stem, df, caption)
    where = f" (store {store.uri})" if store is not rep.store else ""
    sec.markdown = f"Judgments{where}: {res.extra['soft']['item'].n_unique()} items.\n\n" + res.to_markdown()


SECTION = SectionSpec("human", "People as predictors: human accuracy, agreement and quadrants", build,
                      "run `ambiguity annotations import FILE --layout counts|long` (or --preset crema-d), "
                      "or set [report_settings] human_store")
