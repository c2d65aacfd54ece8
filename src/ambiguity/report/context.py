"""What every report section shares: the settings, the store's results computed once (:class:`Report`),
and how a section is declared (:class:`SectionSpec`).

A section lives in its own module under ``report/sections/`` and is registered by one line in
``report/sections/__init__.py``; ``report/build.py`` runs them in that order.
"""

from __future__ import annotations

import dataclasses
import json
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import polars as pl

from ambiguity import tables as T
from ambiguity.constants import COMPARISON_PAIRS
from ambiguity.errors import AmbiguityError, MissingGroupError, StatsError
from ambiguity.models.predictions import model_summary
from ambiguity.report.html import Section
from ambiguity.stats.comparisons import compare_quadrants, join_quadrants
from ambiguity.stats.quadrant_tables import quadrants, resolve_model, unimodal_models
from ambiguity.stats.results import one_family
from ambiguity.stores.schema import table_name

if TYPE_CHECKING:
    from ambiguity.stats.results import QuadrantComparison
    from ambiguity.stores.lance import FeatureStore


# What to run when a section's inputs are missing (shared by the sections that need the same inputs).
TRAIN_HINT = "run `ambiguity train GROUPS...` to get predictions"
AUDIO_HINT = "run `ambiguity extract --modality audio` and train an audio model"
VIDEO_HINT = "run `ambiguity extract --modality video` (openface or landmarks) and train a video model"


@dataclass
class ReportSettings:
    """What the report compares; every field has a sensible default read from the store."""

    fusion: str = "fusion"
    unimodal: list[str] | None = None  # default: every unimodal model in the predictions table
    splits: tuple[str, ...] | None = None  # default: test on the fixed scheme, every labelled segment on crossfit
    scheme: str = "auto"  # fixed | crossfit | auto (crossfit when every model has it)
    min_stability: float | None = None  # crossfit: compare only segments at least this stable
    threshold: float = 0.5
    audio_model: str | None = None  # the unimodal model whose quadrants Tables 3, 6, 7 use
    audio_groups: list[str] = field(default_factory=lambda: ["prosody"])
    audio_columns: list[str] | None = None
    video_model: str | None = None  # Tables 4, 8 and Figure 6
    au_groups: list[str] = field(default_factory=lambda: ["openface", "landmarks"])
    au_columns: str = r"(_c_rate|_rate)$"
    text_model: str | None = None  # Figure 3 (boundary, UMAP)
    text_group: str | None = None
    test: str = "welch"  # the two-group test of adjust="none"
    adjust: str = "label"  # feature comparisons within label (stats.adjusted) or "none" (the paper's test)
    group_by: str | None = None  # cluster the comparisons' errors by this segments column (speaker, dialog_id)
    family: str = "pair"  # correction family: each quadrant pair, or every feature comparison of the report
    correction: str = "holm"
    alpha: float = 0.05
    permutations: int = 10_000
    task: str | None = None  # annotation task for Table 5 (default: the newest)
    human_store: str | None = None  # a store of imported human judgments (default: the report's; relative: to its folder)
    flag: str | None = None  # a metadata column marking segments of interest (the demo's planted conflicts)
    title: str = "ambiguity report"
    skip: tuple[str, ...] = ()  # section keys left out (e.g. figure3, whose kNN covers every segment)


@dataclass(frozen=True)
class SectionSpec:
    """One section of the report: its key (anchor and log name), title, what builds it, and what to run
    when its inputs are missing. ``title`` may depend on the settings; ``enabled`` leaves it out of a report."""

    key: str
    title: str | Callable[[ReportSettings], str]
    build: Callable[[Report, Section], None]
    hint: str
    enabled: Callable[[ReportSettings], bool] = lambda s: True

    def title_for(self, settings: ReportSettings) -> str:
        return self.title if isinstance(self.title, str) else self.title(settings)


Compared = tuple[str, list[str], "QuadrantComparison"]


def report_quadrants(store: FeatureStore, model: str, s: ReportSettings):
    """``model``'s quadrants against the fusion model, as the report's settings say."""
    return quadrants(store, model, s.fusion, s.splits, s.threshold, scheme=s.scheme, min_stability=s.min_stability)


def quadrant_key(model: str) -> str:
    """Where :class:`Report` caches ``model``'s quadrants."""
    return f"q:{model}"


class Report:
    """The store, the output folder and the settings, plus the results several sections share (cached)."""

    def __init__(self, store: FeatureStore, out: Path, settings: ReportSettings):
        self.store, self.out, self.s = store, Path(out), settings
        self.sections: list[Section] = []
        self.cache: dict[str, Any] = {}
        #: quadrant results another process computed: cache key -> (Arrow file of the frame, the result without it)
        self.shared: dict[str, tuple[Path, Any]] = {}

    def table(self, stem: str, df: pl.DataFrame, caption: str, latex: str | None = None) -> list[Path]:
        d = self.out / "tables"
        d.mkdir(parents=True, exist_ok=True)
        md, tex, csv = d / f"{stem}.md", d / f"{stem}.tex", d / f"{stem}.csv"
        md.write_text(T.to_markdown(df, caption=caption))
        tex.write_text(latex or T.to_latex(df, caption=caption, label=f"tab:{stem}"))
        df.write_csv(csv)
        return [md, tex, csv]

    def run(self, spec: SectionSpec) -> Section:
        """Build one section; missing inputs become a note, a bug an error note and errors.log, never a lost report."""
        sec = Section(spec.key, spec.title_for(self.s))
        try:
            spec.build(self, sec)
        except AmbiguityError as exc:
            sec.note = f"{str(exc).splitlines()[0]} — {spec.hint}"
        except Exception as exc:  # a bug in one section must not lose the others
            sec.note = f"could not build this section: {type(exc).__name__}: {exc}"
            sec.error = True
            with (self.out / "errors.log").open("a") as log:
                log.write(f"[{spec.key}]\n{traceback.format_exc()}\n")
        self.sections.append(sec)
        return sec

    def models(self) -> list[str]:
        if "models" not in self.cache:
            names = self.s.unimodal or sorted(unimodal_models(self.store))
            self.cache["models"] = [resolve_model(self.store, m) for m in names]
        return self.cache["models"]

    def summary(self) -> dict[str, dict[str, Any]]:
        if "summary" not in self.cache:
            self.cache["summary"] = {r["model"]: r for r in model_summary(self.store).iter_rows(named=True)}
        return self.cache["summary"]

    def pick(self, explicit: str | None, modality: str) -> str:
        """The named model, else the first unimodal model of ``modality`` (from the predictions table)."""
        if explicit:
            return explicit
        for m in self.models():
            if list(self.summary().get(m, {}).get("modalities") or []) == [modality]:
                return m
        raise StatsError(f"no unimodal {modality} model in the predictions table")

    def quadrant_result(self, model: str):
        key = quadrant_key(model)
        if key not in self.cache:
            if key in self.shared:  # computed by another process (report/apart.py): its Arrow file, mapped
                path, meta = self.shared[key]
                self.cache[key] = dataclasses.replace(meta, frame=pl.read_ipc(path))
            else:
                self.cache[key] = report_quadrants(self.store, model, self.s)
        return self.cache[key]

    def quadrants(self, model: str) -> pl.DataFrame:
        return self.quadrant_result(model).frame

    def scheme(self):
        """The scheme of the report's quadrants (of its first unimodal model)."""
        key = quadrant_key(self.models()[0])
        return self.shared[key][1].scheme if key in self.shared else self.quadrant_result(self.models()[0]).scheme

    def how(self) -> str:
        return self.scheme().caption()

    def groups_present(self, groups: Sequence[str]) -> list[str]:
        have = [g for g in groups if self.store.has_group(g)]
        if not have:
            raise MissingGroupError(f"none of the feature groups {', '.join(groups)} is in the store")
        return have

    def comparison(self, key: str, model: str | None, modality: str, groups: list[str], columns) -> Compared:
        """(model, groups, quadrant comparison) behind a table section and its figure: computed once.
        With ``family="report"`` every comparison of the report is computed first and corrected as one family."""
        if key not in self.cache:
            if self.s.family == "report":
                self._one_family()
            else:
                self.cache[key] = self._compare(model, modality, groups, columns)
        hit = self.cache[key]
        if isinstance(hit, Exception):  # family="report": this section's inputs were missing
            raise hit
        return hit

    def _compare(self, model: str | None, modality: str, groups: list[str], columns) -> Compared:
        chosen = self.pick(model, modality)
        present = self.groups_present(groups)
        qc = compare_quadrants(
            self.store, chosen, self.s.fusion, present, COMPARISON_PAIRS, threshold=self.s.threshold,
            columns=columns, test=self.s.test, correction=self.s.correction, alpha=self.s.alpha,
            quadrants=self.quadrants(chosen), quadrants_note=self.quadrant_result(chosen).scheme.caption(),
            adjust=self.s.adjust, group_by=self.s.group_by,
        )
        return chosen, present, qc

    def _one_family(self) -> None:
        """Every feature comparison of the report (audio and AU tables), then one correction over all of them."""
        specs = {"audio_qc": (self.s.audio_model, "audio", self.s.audio_groups, self.s.audio_columns),
                 "au_qc": (self.s.video_model, "video", self.s.au_groups, self.s.au_columns)}
        done: dict[str, Any] = {}
        for key, spec in specs.items():
            try:
                done[key] = self._compare(*spec)
            except AmbiguityError as exc:  # that section reports its own missing inputs
                self.cache[key] = exc
        joint = one_family([qc for _, _, qc in done.values()], self.s.correction, self.s.alpha)
        for (key, (chosen, present, _)), qc in zip(done.items(), joint, strict=True):
            self.cache[key] = (chosen, present, qc)

    def audio_comparison(self) -> Compared:
        return self.comparison("audio_qc", self.s.audio_model, "audio", self.s.audio_groups, self.s.audio_columns)

    def au_comparison(self) -> Compared:
        return self.comparison("au_qc", self.s.video_model, "video", self.s.au_groups, self.s.au_columns)

    def significant(self, full: pl.DataFrame) -> pl.DataFrame:
        """The features with an adjusted p <= alpha in some pair."""
        return full.filter(pl.any_horizontal([pl.col(c) <= self.s.alpha for c in full.columns if c.startswith("p_adj")]))

    def feature_figure(self, sec: Section, compared: Compared, columns: Callable[[pl.DataFrame], list[str]], write) -> None:
        """Figure 5 or 6: the compared features by quadrant, with the comparison's results."""
        model, groups, qc = compared
        cols = columns(self._feature_columns(groups))
        feats = self.store.features(groups, columns=cols)  # only the drawn ones: 12 of 88 for Figure 5
        frame = join_quadrants(feats, self.quadrants(model), cols)
        sec.files += write(frame, self.out / "figures", columns=cols, comparison=qc)

    def _feature_columns(self, groups: list[str]) -> pl.DataFrame:
        """An empty frame with the columns and types that ``store.features(groups)`` returns (no row read)."""
        if len(groups) == 1:
            return cast(pl.DataFrame, pl.from_arrow(self.store.schema(table_name(groups[0])).empty_table()))
        return self.store.features(groups, segment_ids=[])  # several groups: their shared columns get prefixed

    def flags(self) -> dict[str, str]:
        """segment_id -> the value of the settings' flag column in the segment's metadata ("" when unset)."""
        seg = self.store.segments(["segment_id", "metadata"])
        return {r["segment_id"]: str(json.loads(r["metadata"] or "{}").get(self.s.flag) or "") for r in seg.iter_rows(named=True)}
