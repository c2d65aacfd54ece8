"""The report of a large store: the quadrants and each group of sections in a spawned process of their own.

Above :data:`REPORT_APART_ABOVE` segments. In one process a 10^6-segment report climbed from
0.8 GB after Table 1 to 2.0 GB by the ranking, with 0.34 GB of cached results referenced: the rest was what
the allocators kept after each section (`bench/report.py --sections`). Here one spawned step computes the models,
their summary and every model's quadrants, written as Arrow files that a section process reads when it asks
for them; sections that share a result (a feature table and its figure) run in one process. The parent builds
nothing itself.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ambiguity.apart import opened, run_apart
from ambiguity.errors import AmbiguityError
from ambiguity.report.context import Report, ReportSettings, SectionSpec, quadrant_key, report_quadrants
from ambiguity.report.html import Section

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore

#: Above this many segments the report is built this way: in one process a report peaked at 1,645 MB at 10^4
#: segments and 2,307 MB at 10^5 (bench/million.py, docs/benchmarks.md); spawning costs ~3 s per process.
REPORT_APART_ABOVE = 50_000

#: Sections that share cached results (or cost little) run in one process; any other section runs alone.
TOGETHER: tuple[tuple[str, ...], ...] = (
    ("table1", "table2", "figure2", "datamap"),
    ("audio", "figure5", "au", "figure6"),  # the feature comparisons, corrected as one family with family="report"
    ("table5", "human", "attribution"),
    ("ambiguous", "flagged"),
)

Shared = dict[str, tuple[Path, Any]]  # Report.shared: cache key -> (Arrow file of the frame, the result without it)


def _prepare(uri: str, out: Path, settings: ReportSettings, tmp: Path) -> tuple[dict[str, Any], Shared]:
    """The models, the model summary and each model's quadrants (written to ``tmp`` as Arrow files), computed
    once for every section process. A model whose quadrants cannot be computed is left out: its sections say why."""
    rep = Report(opened(uri), out, settings)
    shared: Shared = {}
    try:
        models = rep.models()
        rep.summary()
    except AmbiguityError:  # no predictions: every section says so itself
        models = []
    for i, m in enumerate(models):
        try:
            res = report_quadrants(rep.store, m, settings)
        except AmbiguityError:
            continue
        path = tmp / f"quadrants-{i}.arrow"
        res.frame.write_ipc(path)
        shared[quadrant_key(m)] = (path, dataclasses.replace(res, frame=res.frame.clear()))
        del res
    return {k: rep.cache[k] for k in ("models", "summary") if k in rep.cache}, shared


def _sections(uri: str, out: Path, settings: ReportSettings, keys: tuple[str, ...], cache: dict[str, Any],
              shared: Shared) -> list[Section]:
    from ambiguity.report.sections import SECTIONS

    rep = Report(opened(uri), out, settings)
    rep.cache.update(cache)
    rep.shared = shared  # each frame read when a section asks for it
    return [rep.run(spec) for spec in SECTIONS if spec.key in keys]


def _groups(specs: list[SectionSpec]) -> list[tuple[str, ...]]:
    """The sections to run, in report order, cut into runs of one process each."""
    out: list[tuple[str, ...]] = []
    home = {k: g for g in TOGETHER for k in g}
    for spec in specs:
        g = home.get(spec.key)
        if out and g is not None and out[-1][0] in g:
            out[-1] = (*out[-1], spec.key)
        else:
            out.append((spec.key,))
    return out


def build_apart(rep: Report, specs: list[SectionSpec], tmp: Path) -> list[Section]:
    """The sections ``specs`` of ``rep``, in order, each group built in a spawned process."""
    store: FeatureStore = rep.store
    try:
        cache, shared = run_apart(True, _prepare, store.uri, rep.out, rep.s, tmp)
    except Exception:  # the step's process died or hit a bug: each section computes what it needs
        cache, shared = {}, {}
    rep.cache.update(cache)
    rep.shared = shared  # the parent's own caption (the scheme) comes from there
    titles = {spec.key: spec.title_for(rep.s) for spec in specs}
    built: list[Section] = []
    for keys in _groups(specs):
        try:
            built += run_apart(True, _sections, store.uri, rep.out, rep.s, keys, cache, shared)
        except Exception as exc:  # the process itself died (memory, a signal): its sections say so, the report goes on
            built += [Section(k, titles[k], note=f"could not build this section: its process failed: {type(exc).__name__}: {exc}",
                              error=True) for k in keys]
    return built
