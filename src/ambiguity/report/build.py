"""`ambiguity report`: every table and figure of the paper from the store, in one folder.

Each section is computed independently; a section whose inputs are missing (no
predictions, no AU features, no annotations) is written as a note that says what
to run, never as a failure of the whole report.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from ambiguity import tables as T
from ambiguity.constants import QUADRANTS
from ambiguity.errors import AmbiguityError
from ambiguity.report.html import Section, write_index
from ambiguity.version import __version__

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore


PAIRS = (("red", "blue"), ("green", "blue"), ("red", "green"))


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
    test: str = "welch"
    correction: str = "holm"
    alpha: float = 0.05
    permutations: int = 10_000
    task: str | None = None  # annotation task for Table 5 (default: the newest)
    flag: str | None = None  # a metadata column marking segments of interest (the demo's planted conflicts)
    title: str = "ambiguity report"


class Report:
    def __init__(self, store: FeatureStore, out: Path, settings: ReportSettings):
        self.store, self.out, self.s = store, Path(out), settings
        self.sections: list[Section] = []
        self.cache: dict[str, Any] = {}

    # -- helpers -----------------------------------------------------------------------
    def table(self, stem: str, df: pl.DataFrame, caption: str, latex: str | None = None) -> list[Path]:
        d = self.out / "tables"
        d.mkdir(parents=True, exist_ok=True)
        md, tex, csv = d / f"{stem}.md", d / f"{stem}.tex", d / f"{stem}.csv"
        md.write_text(T.to_markdown(df, caption=caption))
        tex.write_text(latex or T.to_latex(df, caption=caption, label=f"tab:{stem}"))
        df.write_csv(csv)
        return [md, tex, csv]

    def section(self, key: str, title: str, fn: Callable[[Section], None], missing_hint: str) -> None:
        sec = Section(key, title)
        try:
            fn(sec)
        except AmbiguityError as exc:
            sec.note = f"{str(exc).splitlines()[0]} — {missing_hint}"
        except Exception as exc:  # a bug in one section must not lose the others
            sec.note = f"could not build this section: {type(exc).__name__}: {exc}"
            sec.error = True
            (self.out / "errors.log").open("a").write(f"[{key}]\n{traceback.format_exc()}\n")
        self.sections.append(sec)

    def models(self) -> list[str]:
        if "models" not in self.cache:
            from ambiguity.stats.quadrant_tables import resolve_model, unimodal_models

            names = self.s.unimodal or sorted(unimodal_models(self.store))
            self.cache["models"] = [resolve_model(self.store, m) for m in names]
        return self.cache["models"]

    def summary(self) -> dict[str, dict[str, Any]]:
        if "summary" not in self.cache:
            from ambiguity.models.predictions import model_summary

            self.cache["summary"] = {r["model"]: r for r in model_summary(self.store).iter_rows(named=True)}
        return self.cache["summary"]

    def pick(self, explicit: str | None, modality: str) -> str:
        """The named model, else the first unimodal model of ``modality`` (from the predictions table)."""
        from ambiguity.errors import StatsError

        if explicit:
            return explicit
        for m in self.models():
            if list(self.summary().get(m, {}).get("modalities") or []) == [modality]:
                return m
        raise StatsError(f"no unimodal {modality} model in the predictions table")

    def quadrant_result(self, model: str):
        from ambiguity.stats.quadrant_tables import quadrants

        key = f"q:{model}"
        if key not in self.cache:
            self.cache[key] = quadrants(self.store, model, self.s.fusion, self.s.splits, self.s.threshold,
                                        scheme=self.s.scheme, min_stability=self.s.min_stability)
        return self.cache[key]

    def quadrants(self, model: str) -> pl.DataFrame:
        return self.quadrant_result(model).frame

    def scheme(self):
        """The scheme of the report's quadrants (of its first unimodal model)."""
        return self.quadrant_result(self.models()[0]).scheme

    def how(self) -> str:
        return self.scheme().caption()

    def groups_present(self, groups: Sequence[str]) -> list[str]:
        from ambiguity.errors import MissingGroupError

        have = [g for g in groups if self.store.has_group(g)]
        if not have:
            raise MissingGroupError(f"none of the feature groups {', '.join(groups)} is in the store")
        return have

    # -- sections ----------------------------------------------------------------------
    def table1(self, sec: Section) -> None:
        from ambiguity.stats.quadrant_tables import table1

        sch = self.scheme()
        df = table1(self.store, splits=self.s.splits, scheme=sch.name)
        extra = "; mean and SD over the repeats" if sch.name == "crossfit" else ""
        cap = f"Table 1: accuracy and macro F1 per model; {sch.caption()}{extra}."
        sec.files += self.table("table1_performance", df, cap)
        sec.markdown = T.to_markdown(df, caption=cap, digits=3)

    def table2(self, sec: Section) -> None:
        from ambiguity.stats.quadrant_tables import table2

        sch = self.scheme()
        res = table2(self.store, splits=self.s.splits, scheme=sch.name)
        wide = res.matrix()
        if sch.name == "crossfit":
            cap = f"Table 2: pairwise disagreement of predicted labels; {sch.caption()}; mean ± SD over the repeats."
        else:
            cap = (f"Table 2: pairwise disagreement of predicted labels; {sch.caption()}; "
                   f"with {res.ci:.0%} bootstrap CIs ({res.n_boot} resamples of segments).")
        sec.files += self.table("table2_disagreement", wide, cap)
        res.to_polars().write_csv(self.out / "tables" / "table2_disagreement_long.csv")
        sec.markdown = T.to_markdown(wide, caption=cap)

    def _quadrant_counts(self, sec: Section) -> None:
        rows = []
        for m in self.models():
            q = self.quadrants(m)
            counts: dict[str, float] = {c: int((q["quadrant"] == c).sum()) for c in QUADRANTS}
            if "share_red" in q.columns:  # crossfit: each segment's share of repeats in a quadrant, summed
                counts |= {f"{c}_per_repeat": round(float(q[f"share_{c}"].sum()), 1) for c in QUADRANTS}
            rows.append({"unimodal": m, **counts, "n": q.height})
        df = pl.DataFrame(rows)
        cap = f"Segments per quadrant (unimodal vs {self.s.fusion}; right means p(correct) > {self.s.threshold}); {self.how()}."
        if "red_per_repeat" in df.columns:
            cap += (" red .. yellow count each segment once, by its modal quadrant; *_per_repeat: the mean count per "
                    "repeat (each repeat places every segment once, as one fixed-split fit does).")
        sec.files += self.table("quadrant_counts", df, cap)
        sec.markdown = T.to_markdown(df, caption=cap)

    def figure2(self, sec: Section) -> None:
        from ambiguity.report.fig_quadrants import write_figure2

        sec.files += write_figure2(self.store, self.out / "figures", self.s.fusion, self.models(), self.s.splits, self.s.threshold,
                                   scheme=self.s.scheme, min_stability=self.s.min_stability)
        self._quadrant_counts(sec)

    def _compare(self, model: str, groups: list[str], columns) -> Any:
        from ambiguity.stats.comparisons import compare_quadrants

        return compare_quadrants(
            self.store, model, self.s.fusion, groups, PAIRS, threshold=self.s.threshold,
            columns=columns, test=self.s.test, correction=self.s.correction, alpha=self.s.alpha,
            quadrants=self.quadrants(model), quadrants_note=self.quadrant_result(model).scheme.caption(),
        )

    def comparison(self, key: str, model: str | None, modality: str, groups: list[str], columns) -> tuple[str, list[str], Any]:
        """(model, groups, quadrant comparison) behind a table section and its figure: computed once."""
        if key not in self.cache:
            chosen = self.pick(model, modality)
            present = self.groups_present(groups)
            self.cache[key] = (chosen, present, self._compare(chosen, present, columns))
        return self.cache[key]

    def audio_comparison(self) -> tuple[str, list[str], Any]:
        return self.comparison("audio_qc", self.s.audio_model, "audio", self.s.audio_groups, self.s.audio_columns)

    def au_comparison(self) -> tuple[str, list[str], Any]:
        return self.comparison("au_qc", self.s.video_model, "video", self.s.au_groups, self.s.au_columns)

    def significant(self, full: pl.DataFrame) -> pl.DataFrame:
        """The features with an adjusted p <= alpha in some pair."""
        return full.filter(pl.any_horizontal([pl.col(c) <= self.s.alpha for c in full.columns if c.startswith("p_adj")]))

    def feature_figure(self, sec: Section, compared: tuple[str, list[str], Any], columns: Callable[[pl.DataFrame], list[str]], write) -> None:
        """Figure 5 or 6: the compared features by quadrant, with the comparison's results."""
        from ambiguity.stats.comparisons import join_quadrants

        model, groups, qc = compared
        feats = self.store.features(groups)
        cols = columns(feats)
        frame = join_quadrants(feats, self.quadrants(model), cols)
        sec.files += write(frame, self.out / "figures", columns=cols, comparison=qc)

    def audio_tables(self, sec: Section) -> None:
        model, groups, qc = self.audio_comparison()
        full = qc.wide()
        sig = self.significant(full)
        head = f"audio model {model} vs {self.s.fusion}, features of {', '.join(groups)}. {qc.describe()}"
        sec.files += self.table("table3_audio_significant", sig.select([c for c in sig.columns if "green vs blue" in c or "red vs blue" in c or c == "feature"]) if sig.height else sig,
                                f"Table 3: audio features with an adjusted p <= {self.s.alpha} (red vs blue or green vs blue). {head}")
        sec.files += self.table("table7_audio_full", full, f"Table 7: every audio feature, red vs blue and green vs blue. {head}", qc.to_latex(label="tab:table7"))
        rg = qc[("red", "green")]
        sec.files += self.table("table6_red_vs_green", rg.display(), f"Table 6: red vs green. {rg.describe()}", rg.to_latex(label="tab:table6"))
        sec.markdown = qc.to_markdown()

    def figure5(self, sec: Section) -> None:
        from ambiguity.report.fig_features import write_figure5

        def numeric(feats: pl.DataFrame) -> list[str]:
            return self.s.audio_columns or [c for c, t in feats.schema.items() if t.is_numeric()]

        self.feature_figure(sec, self.audio_comparison(), numeric, write_figure5)

    def au_tables(self, sec: Section) -> None:
        model, groups, qc = self.au_comparison()
        full = qc.wide()
        head = f"video model {model} vs {self.s.fusion}, activation rates from {', '.join(groups)}. {qc.describe()}"
        sec.files += self.table("table4_au_significant", self.significant(full), f"Table 4: activation rates with an adjusted p <= {self.s.alpha}. {head}")
        sec.files += self.table("table8_au_full", full, f"Table 8: every activation rate, red vs blue and green vs blue. {head}", qc.to_latex(label="tab:table8"))
        sec.markdown = qc.to_markdown()

    def figure6(self, sec: Section) -> None:
        from ambiguity.report.fig_features import write_figure6
        from ambiguity.stats.frames import select_columns

        def rates(feats: pl.DataFrame) -> list[str]:
            return select_columns(feats, self.s.au_columns, exclude=("segment_id",))

        self.feature_figure(sec, self.au_comparison(), rates, write_figure6)

    def figure3(self, sec: Section) -> None:
        from ambiguity.report.fig_boundary import write_figure3
        from ambiguity.stats.boundary_tests import boundary

        model = self.pick(self.s.text_model, "text")
        group = self.s.text_group or (list(self.summary().get(model, {}).get("groups") or []) or [model])[0]
        res = boundary(self.store, group, quadrants=self.quadrants(model), umap=True,
                       quadrants_note=self.quadrant_result(model).scheme.caption(),
                       n_permutations=self.s.permutations)
        sec.files += write_figure3(res, self.out / "figures")
        sec.files += self.table("boundary_summary", res.summary, f"Nearest-neighbour boundary analysis of {group} by quadrant of {model}.")
        sec.files += self.table("boundary_tests", res.tests, res.describe())
        sec.markdown = res.to_markdown()

    def datamap(self, sec: Section) -> None:
        from ambiguity.report.fig_quadrants import write_datamap

        sec.files += write_datamap(self.store, self.out / "figures")

    def table5(self, sec: Section) -> None:
        from ambiguity.annotate.records import task_agreement
        from ambiguity.annotate.tasks import task_names
        from ambiguity.errors import StatsError

        names = task_names(self.store) if self.store.has_table("tasks") else []
        task = self.s.task or (names[-1] if names else None)
        if task is None or not self.store.has_table("annotations"):
            raise StatsError("no annotations in the store")
        res = task_agreement(self.store, task)
        sec.files += self.table("table5_kappa", res.to_polars(), f"Table 5: Cohen's kappa per quadrant and round (task {task}).", res.to_latex())
        sec.markdown = res.to_markdown()

    def flagged(self, sec: Section) -> None:
        """Share of flagged segments (e.g. planted conflicts) that land in red or green, vs the others."""
        from ambiguity.errors import StatsError

        if not self.s.flag:
            raise StatsError("no flag column configured")
        from ambiguity.stats.quadrant_tables import quadrants
        from ambiguity.stats.stability import wilson_interval

        flags = self._flags()
        rows = []
        for m in self.models():
            res = self.quadrant_result(m)
            runs = [(res.scheme.name, res.frame)]
            if res.scheme.name == "crossfit":  # beside it, the fixed split on every segment it did not train on
                try:
                    runs.append(("fixed", quadrants(self.store, m, self.s.fusion, ("test", "val"), self.s.threshold, scheme="fixed").frame))
                except AmbiguityError:
                    pass
            for scheme, frame in runs:
                q = frame.with_columns(pl.col("segment_id").replace_strict(flags, default="").alias("flag"))
                for value in sorted(set(q["flag"].to_list())):
                    sub = q.filter(pl.col("flag") == value)
                    dis = int(sub["quadrant"].is_in(["red", "green"]).sum())
                    lo, hi = wilson_interval(dis, sub.height)
                    rows.append({"unimodal": m, "scheme": scheme, self.s.flag: value or "(none)", "n": sub.height,
                                 "red_or_green": dis, "share": dis / sub.height if sub.height else float("nan"),
                                 "share_lo": float(lo), "share_hi": float(hi),
                                 "mean_disagreement_p": float(sub["disagreement_p"].mean()) if "disagreement_p" in sub.columns else None})
        df = pl.DataFrame(rows, infer_schema_length=None)
        cap = (f"Share of segments in a disagreement quadrant (red or green; crossfit: modal quadrant), by metadata column "
               f"{self.s.flag!r}, with a 95% Wilson interval over segments; {self.how()}"
               + ("; fixed rows: the fixed split's test+val segments" if df.height and "fixed" in df["scheme"].to_list() and self.scheme().name == "crossfit" else "")
               + ". mean_disagreement_p: the mean over segments of the share of repeats in red or green.")
        sec.files += self.table("flagged_disagreement", df, cap)
        sec.markdown = T.to_markdown(df, caption=cap, digits=3)
        self.cache["flagged"] = df

    def _flags(self) -> dict[str, str]:
        seg = self.store.segments(["segment_id", "metadata"])
        return {r["segment_id"]: str(json.loads(r["metadata"] or "{}").get(self.s.flag) or "") for r in seg.iter_rows(named=True)}

    def attribution(self, sec: Section) -> None:
        """Shapley values of the fusion model's p_correct per quadrant (stored ones, else computed now)."""
        from ambiguity.constants import CORRECTION_NAMES
        from ambiguity.errors import MissingGroupError
        from ambiguity.models.attributions import attribute, read_attributions, wide
        from ambiguity.report.fig_attribution import write_attribution_figures
        from ambiguity.stats.attribution_by_quadrant import auc_lower, quadrant_frame, summarise

        try:
            long = read_attributions(self.store, self.s.fusion, "p_correct", self.s.splits)
            how = "stored by `ambiguity attribute`"
        except MissingGroupError:
            long = attribute(self.store, self.s.fusion, splits=self.s.splits, write=False).frame
            how = "computed for this report"
        mods = list(dict.fromkeys(long["modality"].to_list()))
        w = wide(long)
        means, tests, doms, frames = [], [], [], {}
        for m in self.models():
            frame = quadrant_frame(w, self.quadrants(m))
            frames[m] = frame
            me, te, do = summarise(frame, mods, test=self.s.test, correction=self.s.correction, alpha=self.s.alpha)
            means.append(me.with_columns(pl.lit(m).alias("unimodal")))
            tests.append(te.with_columns(pl.lit(m).alias("unimodal")))
            doms.append(do.with_columns(pl.lit(m).alias("unimodal")))
        first = lambda dfs: pl.concat(dfs).select(["unimodal", *[c for c in dfs[0].columns if c != "unimodal"]])  # noqa: E731
        head = (f"Exact Shapley values of {self.s.fusion}'s p(correct label) per modality ({how}); "
                "v(∅) is the class prior of the training split.")
        sec.files += write_attribution_figures({m: d.drop("unimodal") for m, d in zip(frames, means, strict=True)},
                                               next(iter(frames.values())), mods, self.out / "figures", fusion=self.s.fusion)
        sec.files += self.table("attribution_dominant", first(doms),
                                f"Which modality dominated fusion (largest |phi|), per quadrant. {head}")
        sec.files += self.table("attribution_means", first(means), f"Mean phi per quadrant with 95% t intervals. {head}")
        n_tests = sum(int(t["p"].is_not_nan().sum()) for t in tests)
        sec.files += self.table("attribution_tests", first(tests),
                                f"Red vs blue and green vs blue per modality ({self.s.test} t-test); per unimodal model one "
                                f"correction family of its 2 x {len(mods)} tests ({CORRECTION_NAMES[self.s.correction]}; "
                                f"{n_tests} tests in all). {head}")
        md = [T.to_markdown(first(doms), caption="Dominant modality per quadrant.", digits=3)]
        if self.s.flag:
            flags = self._flags()
            wf = w.with_columns(pl.col("segment_id").replace_strict(flags, default="").alias("flag"))
            rows = []
            for v in sorted(set(wf["flag"].to_list()) & set(mods)):
                res = auc_lower(wf.filter(pl.col("flag") == v)[f"phi_{v}"].to_numpy(),
                                wf.filter(pl.col("flag") == "")[f"phi_{v}"].to_numpy())
                rows.append({self.s.flag: v, "phi_of": v, **res})
            if rows:
                df = pl.DataFrame(rows)
                cap = (f"phi of the flagged modality for segments flagged by {self.s.flag!r} vs unflagged ones: AUC = "
                       "P(flagged phi < unflagged phi), rank-biserial = 2 AUC - 1 (95% percentile bootstrap, 2000 resamples), "
                       "one-sided Mann-Whitney p.")
                sec.files += self.table("attribution_flagged", df, cap)
                md.append(T.to_markdown(df, caption=cap, digits=3))
                self.cache["attribution_flagged"] = df
        sec.markdown = "\n".join(md)

    def conflicts(self, sec: Section) -> None:
        """Conflict scores of the unimodal models: the conflict test set's size and the correlations."""
        from ambiguity.stats.conflicts import DEFAULT_THRESHOLD, conflict_correlations, conflict_scores

        sc = conflict_scores(self.store, self.models(), self.s.splits)
        if self.s.flag:
            flags = self._flags()
            sc = sc.with_columns(pl.col("segment_id").replace_strict(flags, default="").alias(self.s.flag))
        by = [self.s.flag] if self.s.flag else []
        agg = [pl.len().alias("n"), pl.col("jsd").mean().alias("mean_jsd"), pl.col("margin").mean().alias("mean_margin"),
               (pl.col("margin") >= DEFAULT_THRESHOLD).sum().alias("in_conflict_set")]
        summary = (sc.group_by(by).agg(agg).sort(by) if by else sc.select(agg))
        cap = (f"Conflict scores of {', '.join(self.models())}: jsd = Jensen-Shannon divergence of their class "
               f"distributions (bits), margin = the most confident opposing pair; the conflict test set "
               f"(`ambiguity conflicts`) has margin >= {DEFAULT_THRESHOLD}.")
        sec.files += self.table("conflict_summary", summary, cap)
        corr = conflict_correlations(self.store, sc.drop(by) if by else sc, unimodal=self.models(), fusion=self.s.fusion)
        cap2 = "Spearman correlation (95% bootstrap CI) of the conflict scores with crossfit stability and annotator disagreement."
        sec.files += self.table("conflict_correlations", corr, cap2)
        sec.markdown = T.to_markdown(summary, caption=cap, digits=3) + "\n" + T.to_markdown(corr, caption=cap2, digits=3)

    def ambiguous(self, sec: Section, top: int = 20) -> None:
        """The top of the ambiguity ranking (ambiguity.stats.score), components shown one by one."""
        from ambiguity.stats.score import ambiguity_scores, default_embedding, ranked

        res = ambiguity_scores(self.store, fusion=self.s.fusion, embedding=self.s.text_group or default_embedding(self.store))
        df = ranked(self.store, res, top).with_columns(
            pl.col("transcript").str.replace_all(r"[|\s]+", " ").str.slice(0, 80).alias("transcript"))
        missing = ", ".join(sorted(res.missing)) or "none"
        cap = (f"The {df.height} most ambiguous segments: the score is the weighted mean of the components a segment has "
               f"(weights {', '.join(f'{c} {w:g}' for c, w in res.weights.items() if c in res.available)}; "
               f"unavailable: {missing}); see docs/explore.md. `ambiguity rank` lists more, `ambiguity explore` shows them.")
        sec.files += self.table("most_ambiguous", df, cap)
        sec.markdown = T.to_markdown(df, caption=cap, digits=3)

    # -- the whole report --------------------------------------------------------------------
    def build(self) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "errors.log").unlink(missing_ok=True)
        train = "run `ambiguity train GROUPS...` to get predictions"
        self.section("table1", "Table 1: performance per model", self.table1, train)
        self.section("table2", "Table 2: disagreement between models", self.table2, train)
        self.section("figure2", "Figure 2: confidence quadrants", self.figure2, train)
        self.section("datamap", "Training dynamics (data map)", self.datamap, train)
        audio = "run `ambiguity extract --modality audio` and train an audio model"
        self.section("audio", "Tables 3, 6, 7: audio features between quadrants", self.audio_tables, audio)
        self.section("figure5", "Figure 5: audio feature distributions per quadrant", self.figure5, audio)
        video = "run `ambiguity extract --modality video` (openface or landmarks) and train a video model"
        self.section("au", "Tables 4, 8: facial activation rates between quadrants", self.au_tables, video)
        self.section("figure6", "Figure 6: activation rates per quadrant", self.figure6, video)
        self.section("figure3", "Figure 3: text embeddings near the class boundary", self.figure3,
                     "run `ambiguity extract --modality text` and train a text model")
        self.section("table5", "Table 5: annotator agreement (Cohen's kappa)", self.table5,
                     "run `ambiguity sample`, `ambiguity annotate serve` and collect two annotators' answers")
        self.section("attribution", "Modality attribution: which modality moved the fusion model", self.attribution,
                     "train a fusion model with `ambiguity train` (its weights are saved), then `ambiguity attribute`")
        self.section("conflicts", "Conflict score: how confidently the unimodal models disagree", self.conflicts, train)
        self.section("ambiguous", "The most ambiguous segments", self.ambiguous,
                     "run `ambiguity train` (the score needs at least one component; see docs/explore.md)")
        if self.s.flag:
            self.section("flagged", f"Disagreement among segments flagged by {self.s.flag!r}", self.flagged,
                         "set the flag column in the report settings")
        try:
            how = self.how()  # the scheme of the quadrants: fixed split, or crossfit with K, R and the stability cut
        except AmbiguityError:  # no predictions: every section says so already
            how = "splits " + ", ".join(self.s.splits or ("test",))
        subtitle = (f"store {self.store.uri} · ambiguity {__version__} · {how} · "
                    f"fusion model {self.s.fusion} · threshold {self.s.threshold}")
        return write_index(self.out, self.s.title, subtitle, self.sections)


def build_report(store: FeatureStore, out: str | Path, settings: ReportSettings | None = None) -> Report:
    rep = Report(store, Path(out), settings or ReportSettings())
    rep.build()
    return rep
