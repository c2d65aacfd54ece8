"""`ambiguity run CONFIG.toml`: the whole pipeline from one file, each stage skipped when current.

Stages: ingest -> finetune (one per [[finetune]] model) -> extract (one per feature
group; a fine-tuned model's embeddings are the group of its name) -> train ->
sample -> report. ``best:MODALITY`` anywhere in [train], [sample] or
[report_settings] names the fine-tuned model of that modality with the highest
validation accuracy (the paper's choice of RoBERTa, HuBERT and VideoMAE). Each stage has
a fingerprint made of its own settings and its inputs' fingerprints; the last
fingerprint of every stage is kept in the store's ``runs`` table. A stage runs
again only when its fingerprint changed, so changing one extractor parameter
reruns that extraction and what depends on it, and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import time
import tomllib
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pyarrow as pa

from ambiguity.errors import ConfigError
from ambiguity.stores.tables import ANNOTATIONS, RUNS


@dataclass
class Extract:
    extractor: str
    params: dict[str, Any] = field(default_factory=dict)
    group: str | None = None


@dataclass
class Finetune:
    """One [[finetune]] entry: a base model fine-tuned with the paper's recipe (params override it)."""

    name: str  # the model's name in the predictions table and its embeddings' feature group
    modality: str
    model: str  # hub id (offline cache) or a local directory
    params: dict[str, Any] = field(default_factory=dict)  # FinetuneConfig fields
    extract: dict[str, Any] = field(default_factory=dict)  # parameters of the embedding extractor


@dataclass
class Pipeline:
    root: Path
    store: str
    manifest: Path | dict[str, Path]  # one file, or split -> file
    report: Path
    ingest: dict[str, Any]
    extract: list[Extract]
    train: dict[str, Any]
    report_settings: dict[str, Any]
    workers: int | None = None
    finetune: list[Finetune] = field(default_factory=list)
    sample: dict[str, Any] = field(default_factory=dict)
    models_dir: Path | None = None

    @property
    def manifests(self) -> dict[str | None, Path]:
        return cast("dict[str | None, Path]", dict(self.manifest)) if isinstance(self.manifest, dict) else {None: self.manifest}


def _fp(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def load_pipeline(path: str | Path) -> Pipeline:
    path = Path(path)
    try:
        cfg = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"no pipeline file {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    root = path.resolve().parent

    def rel(key: str, default: str | None = None) -> Path:
        value = cfg.get(key, default)
        if value is None:
            raise ConfigError(f"{path}: set {key} = \"...\"")
        p = Path(value)
        return p if p.is_absolute() else root / p

    known = {"title", "store", "manifest", "report", "workers", "ingest", "extract", "train", "report_settings",
             "finetune", "sample", "models_dir"}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    extracts = []
    for i, e in enumerate(cfg.get("extract", [])):
        if "extractor" not in e:
            raise ConfigError(f"{path}: [[extract]] #{i + 1} needs extractor = \"NAME\"")
        extracts.append(Extract(e["extractor"], dict(e.get("params", {})), e.get("group")))
    store = str(cfg.get("store", "store"))
    if "://" not in store:
        store = str(rel("store", "store"))
    settings = dict(cfg.get("report_settings", {}))
    if "title" in cfg:
        settings.setdefault("title", cfg["title"])
    manifest: Path | dict[str, Path]
    if isinstance(cfg.get("manifest"), dict):
        manifest = {}
        for split, f in cfg["manifest"].items():
            fp = Path(f)
            manifest[split] = fp if fp.is_absolute() else root / fp
        if not manifest:
            raise ConfigError(f"{path}: manifest = {{ train = \"train.csv\", ... }} names no file")
    else:
        manifest = rel("manifest")
    return Pipeline(root, store, manifest, rel("report", "report"), dict(cfg.get("ingest", {})), extracts,
                    dict(cfg.get("train", {})), settings, cfg.get("workers"), _finetunes(path, cfg.get("finetune", [])),
                    dict(cfg.get("sample", {})), rel("models_dir", "finetuned"))


def _finetunes(path: Path, entries: list[dict[str, Any]]) -> list[Finetune]:
    from ambiguity.models.finetune import MODALITIES

    out, seen = [], set()
    for i, e in enumerate(entries):
        missing = [k for k in ("name", "modality", "model") if k not in e]
        if missing:
            raise ConfigError(f"{path}: [[finetune]] #{i + 1} needs {', '.join(missing)}")
        unknown = sorted(set(e) - {"name", "modality", "model", "params", "extract"})
        if unknown:
            raise ConfigError(f"{path}: [[finetune]] {e['name']}: unknown key(s) {', '.join(unknown)}")
        if e["modality"] not in MODALITIES:
            raise ConfigError(f"{path}: [[finetune]] {e['name']}: modality {e['modality']!r}; use {', '.join(MODALITIES)}")
        if e["name"] in seen:
            raise ConfigError(f"{path}: two [[finetune]] entries are named {e['name']!r}")
        seen.add(e["name"])
        model = str(e["model"])
        if model.startswith((".", "/", "~")) or (path.parent / model).is_dir():
            model = str((path.parent / Path(model).expanduser()).resolve())
        out.append(Finetune(e["name"], e["modality"], model, dict(e.get("params", {})), dict(e.get("extract", {}))))
    return out


class Runner:
    def __init__(self, pipe: Pipeline, *, echo=print, force: bool = False):
        from ambiguity.stores.lance import open_store

        self.p, self.echo, self.force = pipe, echo, force
        self.store = open_store(pipe.store)
        self.done = self._read_runs()
        self.ran: list[str] = []
        self.skipped: list[str] = []

    def _read_runs(self) -> dict[str, str]:
        if not self.store.has_table(RUNS):
            return {}
        return {r["stage"]: r["fingerprint"] for r in self.store.read(RUNS).iter_rows(named=True)}

    def _record(self, stage: str, fp: str, seconds: float) -> None:
        row = pa.table({"stage": [stage], "fingerprint": [fp], "seconds": [seconds],
                        "finished_at": [datetime.now(UTC).isoformat(timespec="seconds")]})
        self.store.upsert(RUNS, row, key="stage")
        self.done[stage] = fp

    def stage(self, name: str, fp: str, fn, *, outputs_exist: bool = True) -> bool:
        if not self.force and outputs_exist and self.done.get(name) == fp:
            self.echo(f"[skip] {name}: up to date")
            self.skipped.append(name)
            return False
        self.echo(f"[run]  {name}")
        t = time.perf_counter()
        fn()
        dt = time.perf_counter() - t
        self._record(name, fp, dt)
        self.ran.append(name)
        self.echo(f"       {name} done in {dt:.1f} s")
        return True

    def run(self) -> dict[str, list[str]]:
        from ambiguity.extractors import registry
        from ambiguity.extractors.runner import run as run_extract

        p = self.p
        for f in p.manifests.values():
            if not f.exists():
                raise ConfigError(f"manifest not found: {f}")
        ingest_fp = _fp("ingest", {str(k): hashlib.sha256(f.read_bytes()).hexdigest() for k, f in p.manifests.items()}, p.ingest)
        self.stage("ingest", ingest_fp, self._ingest)

        ft_fp = self._finetune_stages(ingest_fp)
        group_fp: dict[str, str] = {}
        for ft in p.finetune:
            group_fp[ft.name] = self._extract_finetuned(ft, ft_fp[ft.name])
        for e in p.extract:
            ex = registry.get(e.extractor)(**e.params)
            group = e.group or ex.default_group()
            fp = _fp("extract", ingest_fp, e.extractor, ex.config_key())
            group_fp[group] = fp
            old = self.store.groups().get(group, {})
            recompute = bool(old) and old.get("config_key") != ex.config_key()

            def extract(ex=ex, group=group, recompute=recompute):
                rep = run_extract(self.store, ex, group=group, recompute=recompute, workers=p.workers, progress=False)
                self.echo(f"       {rep.summary()}")

            self.stage(f"extract:{group}", fp, extract, outputs_exist=self.store.has_group(group))

        best = self.best_models() if p.finetune else {}
        # A change to any candidate can change which one is best: all of them feed what follows.
        ft_part = (sorted(ft_fp.items()), sorted(best.items()))
        train_fp = None
        if p.train:
            train_cfg = self.resolve(p.train)
            groups = train_cfg.get("groups")
            if not groups:
                raise ConfigError("[train] needs groups = [...]")
            missing = [g for g in groups if g not in group_fp and not self.store.has_group(g)]
            if missing:
                raise ConfigError(f"[train] groups {missing} are neither extracted by this pipeline nor in the store")
            tuned = [g for g in groups if g in ft_fp]
            if tuned and train_cfg.get("unimodal", True):
                raise ConfigError(f"[train] unimodal = true would replace the fine-tuned classifiers {', '.join(tuned)} "
                                  "(the paper's unimodal models) with probes: set unimodal = false")
            train_fp = _fp("train", [group_fp.get(g) for g in groups], p.train, ft_part)
            self.stage("train", train_fp, lambda: self._train(train_cfg))

        sample_fp = None
        if p.sample:
            sample_fp = _fp("sample", train_fp, p.sample, ft_part)
            name = p.sample.get("name", "study")
            if self._annotated(name):
                # Judgments were given for these items: drawing again would orphan them.
                self.echo(f"[skip] sample: task {name!r} has annotations: kept as it is (name a new task to draw again)")
                self.skipped.append("sample")
                sample_fp = _fp("sample-kept", name)
            else:
                self.stage("sample", sample_fp, self._sample)

        if p.report_settings is not None:
            from ambiguity.version import __version__

            # Imported judgments add Table 5: the annotations table's version is an input.
            ann = self.store.version(ANNOTATIONS) if ANNOTATIONS.exists(self.store) else None
            rep_fp = _fp("report", train_fp, sorted(group_fp.items()), p.report_settings, str(p.report), __version__,
                         ft_part, sample_fp, ann)
            index = p.report / "index.html"
            self.stage("report", rep_fp, lambda: self._report(), outputs_exist=index.exists())
        return {"ran": self.ran, "skipped": self.skipped}

    # -- ingest -------------------------------------------------------------------------------
    def _ingest(self) -> None:
        from ambiguity.segments import get_preset, load_manifest

        cfg = self.p.ingest
        pre = get_preset(cfg["preset"]) if cfg.get("preset") else None
        columns = {**(pre.columns if pre else {}), **cfg.get("columns", {})}
        template = cfg.get("media_template") or (pre.media_template if pre else None)
        for split, path in self.p.manifests.items():
            table = load_manifest(path, columns=columns, media_template=template, seed=int(cfg.get("seed", 0)), split=split)
            self.store.upsert_segments(table)
            self.echo(f"       {table.num_rows} segments from {path.name}" + (f" (split {split})" if split else ""))
        from ambiguity.leakage import leakage_report

        groups = cfg.get("group_by") or ([pre.group] if pre and pre.group else None)
        for r in leakage_report(self.store.segments(), groups):
            self.echo(f"       leakage: {r.line()}")

    # -- finetune -----------------------------------------------------------------------------
    def _finetune_stages(self, ingest_fp: str) -> dict[str, str]:
        from ambiguity.extractors.inference import resolve_model, weights_sha256

        fps = {}
        for f in self.p.finetune:
            cfg = self._ft_config(f)
            src = resolve_model(f.model)
            recipe = {k: v for k, v in asdict(cfg).items() if k not in ("device", "threads")}  # where it runs is not what it computes
            fp = _fp("finetune", ingest_fp, f.name, f.modality, src.model, src.revision, weights_sha256(src.path), recipe)
            fps[f.name] = fp
            assert self.p.models_dir is not None  # loading the config sets it (default: finetuned/)
            out = self.p.models_dir / f.name
            self.stage(f"finetune:{f.name}", fp, lambda f=f, cfg=cfg, out=out: self._finetune(f, cfg, out),
                       outputs_exist=(out / "config.json").is_file())
        return fps

    def _ft_config(self, f: Finetune):
        from ambiguity.models.finetune import FinetuneConfig

        known = {x.name for x in fields(FinetuneConfig)} - {"modality"}
        unknown = sorted(set(f.params) - known)
        if unknown:
            raise ConfigError(f"[[finetune]] {f.name}: unknown param(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return FinetuneConfig(modality=f.modality, **f.params)

    def _finetune(self, f: Finetune, cfg, out: Path) -> None:
        import dataclasses
        import shutil

        from ambiguity.models.finetune import finetune, write_finetuned_predictions

        tmp = out.with_name(out.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)  # an interrupted earlier attempt
        rep = finetune(self.store, f.model, tmp, cfg)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
        rep = dataclasses.replace(rep, out=out)
        n = write_finetuned_predictions(self.store, rep, f.name, f.modality, group=f.name, config=asdict(cfg))
        self.echo(f"       {rep.summary()}; {n} predictions stored as model {f.name} (kind finetuned)")

    def _extract_finetuned(self, f: Finetune, ft_fp: str) -> str:
        from ambiguity.extractors import registry
        from ambiguity.extractors.inference import weights_sha256
        from ambiguity.extractors.runner import run as run_extract

        assert self.p.models_dir is not None  # loading the config sets it (default: finetuned/)
        out = self.p.models_dir / f.name
        ex = registry.get(f.modality)(**{**f.extract, "model": str(out)})
        fp = _fp("extract", ft_fp, f.modality, ex.config_key())

        def extract():
            old = self.store.groups().get(f.name, {})
            # Same path, new weights after a re-fine-tune: the old embeddings are stale.
            recompute = bool(old) and (old.get("config_key") != ex.config_key()
                                       or old.get("weights_sha256") != weights_sha256(out))
            rep = run_extract(self.store, ex, group=f.name, recompute=recompute, workers=self.p.workers, progress=False)
            self.echo(f"       {rep.summary()}")

        self.stage(f"extract:{f.name}", fp, extract, outputs_exist=self.store.has_group(f.name))
        return fp

    def best_models(self) -> dict[str, str]:
        """Per modality, the fine-tuned model with the highest validation accuracy (ties: the first listed)."""
        from ambiguity.models.predictions import read_predictions

        best: dict[str, tuple[float, str]] = {}
        lines = []
        for f in self.p.finetune:
            df = read_predictions(self.store, [f.name], ["val"])
            acc = float(cast(float, (df["predicted"] == df["label"]).mean())) if df.height else float("nan")
            lines.append(f"{f.name} {acc:.3f}")
            if f.modality not in best or acc > best[f.modality][0]:
                best[f.modality] = (acc, f.name)
        chosen = {m: n for m, (_, n) in best.items()}
        self.echo("best fine-tuned model per modality (validation accuracy): "
                  + ", ".join(f"{m} {n}" for m, n in chosen.items()) + f"  [{'; '.join(lines)}]")
        self.best = chosen
        return chosen

    def resolve(self, value: Any) -> Any:
        """``best:MODALITY`` -> the chosen fine-tuned model of that modality, in strings, lists and tables."""
        if isinstance(value, str) and value.startswith("best:"):
            m = value.removeprefix("best:")
            best = getattr(self, "best", {})
            if m not in best:
                raise ConfigError(f"{value!r}: no [[finetune]] model of modality {m!r} in this pipeline")
            return best[m]
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        return value

    # -- sample -------------------------------------------------------------------------------
    def _annotated(self, task: str) -> bool:
        if not ANNOTATIONS.exists(self.store):
            return False
        return ANNOTATIONS.read(self.store, ["task"], task=task).height > 0

    def _sample(self) -> None:
        from ambiguity.annotate.tasks import sample_from_store, save_task

        cfg = self.resolve(self.p.sample)
        known = {"name", "per_quadrant", "seed", "models", "fusion", "splits", "threshold", "distinct"}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ConfigError(f"[sample] unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        name = cfg.get("name", "study")
        models = cfg.get("models") or {m: m for m in ("text", "audio", "video")}
        task = sample_from_store(self.store, models, cfg.get("fusion", self.p.train.get("fusion_name", "fusion")),
                                 int(cfg.get("per_quadrant", 17)), int(cfg.get("seed", 0)), name=name,
                                 splits=tuple(cfg.get("splits", ["test"])), threshold=float(cfg.get("threshold", 0.5)),
                                 distinct=bool(cfg.get("distinct", True)))
        save_task(self.store, task, replace=True)
        self.echo(f"       task {name!r}: {task.items.height} items ({task.per_quadrant} per quadrant per modality)")

    def _train(self, cfg: dict[str, Any]) -> None:
        from ambiguity.models.spec import TrainConfig
        from ambiguity.models.training import train

        tc_fields = {f.name for f in fields(TrainConfig)}
        known = tc_fields | {"groups", "unimodal", "fusion", "unimodal_arch", "fusion_name", "folds", "repeats", "group_by", "workers", "also_fixed"}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ConfigError(f"[train] unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        tc = TrainConfig(**{k: v for k, v in cfg.items() if k in tc_fields})
        if cfg.get("folds") is not None:
            from ambiguity.models.crossfit import CrossfitConfig, crossfit

            cv = CrossfitConfig(folds=int(cfg["folds"]), repeats=int(cfg.get("repeats", 1)), group_by=cfg.get("group_by"),
                                seed=tc.seed, workers=int(cfg.get("workers", 1)))
            rep = crossfit(self.store, cfg["groups"], cv=cv, unimodal=cfg.get("unimodal", True), fusion=cfg.get("fusion", True),
                           unimodal_arch=cfg.get("unimodal_arch", "logistic"), fusion_name=cfg.get("fusion_name", "fusion"),
                           config=tc)
            for line in rep.summary().splitlines():
                self.echo(f"       {line}")
            if not cfg.get("also_fixed"):
                return
        elif cfg.get("repeats") is not None or cfg.get("group_by") is not None or cfg.get("also_fixed"):
            raise ConfigError("[train] repeats, group_by and also_fixed need folds = K (cross-fitting)")
        from ambiguity.models.crossfit import fixed_split_warning
        from ambiguity.models.finetune import stacked_warning

        for warning in (fixed_split_warning(self.store, config=True), stacked_warning(self.store, cfg["groups"])):
            if warning:
                self.echo(f"       {warning}")
        reports = train(self.store, cfg["groups"], unimodal=cfg.get("unimodal", True), fusion=cfg.get("fusion", True),
                        unimodal_arch=cfg.get("unimodal_arch", "logistic"), fusion_name=cfg.get("fusion_name", "fusion"),
                        config=tc)
        for r in reports:
            self.echo(f"       {r.summary() if hasattr(r, 'summary') else r}")

    def _report(self) -> None:
        from ambiguity.report.build import ReportSettings, build_report

        known = {f.name for f in fields(ReportSettings)}
        unknown = sorted(set(self.p.report_settings) - known)
        if unknown:
            raise ConfigError(f"[report_settings] unknown key(s) {', '.join(unknown)}")
        kw = self.resolve(dict(self.p.report_settings))
        if "splits" in kw:
            kw["splits"] = tuple(kw["splits"])
        rep = build_report(self.store, self.p.report, ReportSettings(**kw))
        missing = [s.key for s in rep.sections if s.note]
        self.echo(f"       report: {self.p.report / 'index.html'}" + (f" (no data for: {', '.join(missing)})" if missing else ""))


def run_pipeline(path: str | Path, *, echo=print, force: bool = False) -> dict[str, list[str]]:
    return Runner(load_pipeline(path), echo=echo, force=force).run()
