"""`ambiguity run CONFIG.toml`: the whole pipeline from one file, each stage skipped when current.

Stages: ingest -> extract (one per feature group) -> train -> report. Each stage has
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
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from ambiguity.errors import ConfigError

RUNS = "runs"


@dataclass
class Extract:
    extractor: str
    params: dict[str, Any] = field(default_factory=dict)
    group: str | None = None


@dataclass
class Pipeline:
    root: Path
    store: str
    manifest: Path
    report: Path
    ingest: dict[str, Any]
    extract: list[Extract]
    train: dict[str, Any]
    report_settings: dict[str, Any]
    workers: int | None = None


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

    known = {"title", "store", "manifest", "report", "workers", "ingest", "extract", "train", "report_settings"}
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
    return Pipeline(root, store, rel("manifest"), rel("report", "report"), dict(cfg.get("ingest", {})), extracts,
                    dict(cfg.get("train", {})), settings, cfg.get("workers"))


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
        from ambiguity.segments import load_manifest

        p = self.p
        if not p.manifest.exists():
            raise ConfigError(f"manifest not found: {p.manifest}")
        ingest_fp = _fp("ingest", hashlib.sha256(p.manifest.read_bytes()).hexdigest(), p.ingest)

        def ingest():
            table = load_manifest(p.manifest, columns=p.ingest.get("columns"), media_template=p.ingest.get("media_template"),
                                  seed=int(p.ingest.get("seed", 0)))
            self.store.upsert_segments(table)
            self.echo(f"       {table.num_rows} segments")

        self.stage("ingest", ingest_fp, ingest)

        group_fp: dict[str, str] = {}
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

        train_fp = None
        if p.train:
            groups = p.train.get("groups")
            if not groups:
                raise ConfigError("[train] needs groups = [...]")
            missing = [g for g in groups if g not in group_fp and not self.store.has_group(g)]
            if missing:
                raise ConfigError(f"[train] groups {missing} are neither extracted by this pipeline nor in the store")
            train_fp = _fp("train", [group_fp.get(g) for g in groups], p.train)
            self.stage("train", train_fp, lambda: self._train(p.train))

        if p.report_settings is not None:
            from ambiguity.version import __version__

            rep_fp = _fp("report", train_fp, sorted(group_fp.items()), p.report_settings, str(p.report), __version__)
            index = p.report / "index.html"
            self.stage("report", rep_fp, lambda: self._report(), outputs_exist=index.exists())
        return {"ran": self.ran, "skipped": self.skipped}

    def _train(self, cfg: dict[str, Any]) -> None:
        from ambiguity.models.spec import TrainConfig
        from ambiguity.models.train import train

        tc_fields = {f.name for f in fields(TrainConfig)}
        known = tc_fields | {"groups", "unimodal", "fusion", "unimodal_arch", "fusion_name", "folds", "repeats", "group_by", "workers"}
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
            return
        if cfg.get("repeats") is not None or cfg.get("group_by") is not None:
            raise ConfigError("[train] repeats and group_by need folds = K (cross-fitting)")
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
        kw = dict(self.p.report_settings)
        if "splits" in kw:
            kw["splits"] = tuple(kw["splits"])
        rep = build_report(self.store, self.p.report, ReportSettings(**kw))
        missing = [s.key for s in rep.sections if s.note]
        self.echo(f"       report: {self.p.report / 'index.html'}" + (f" (no data for: {', '.join(missing)})" if missing else ""))


def run_pipeline(path: str | Path, *, echo=print, force: bool = False) -> dict[str, list[str]]:
    return Runner(load_pipeline(path), echo=echo, force=force).run()
