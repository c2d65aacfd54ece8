"""`ambiguity report`: every table and figure of the paper from the store, in one folder.

Each section (a module of ``report/sections``, run in the order ``report.sections.ORDER`` gives) is
computed independently; a section whose inputs are missing (no predictions, no AU features, no
annotations) is written as a note that says what to run, never as a failure of the whole report.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ambiguity.errors import AmbiguityError, ConfigError
from ambiguity.report.apart import REPORT_APART_ABOVE, build_apart
from ambiguity.report.context import Report, ReportSettings
from ambiguity.report.html import Section, write_index
from ambiguity.report.sections import SECTIONS
from ambiguity.stores.tables import SEGMENTS
from ambiguity.version import __version__

if TYPE_CHECKING:
    from ambiguity.stores.lance import FeatureStore

__all__ = ["Report", "ReportSettings", "Section", "build_report"]


def build_report(store: FeatureStore, out: str | Path, settings: ReportSettings | None = None) -> Report:
    """Every enabled section into ``out`` (tables/, figures/, index.html); the Report holds the sections."""
    rep = Report(store, Path(out), settings or ReportSettings())
    keys = [spec.key for spec in SECTIONS]
    unknown = [k for k in rep.s.skip if k not in keys]
    if unknown:
        raise ConfigError(f"no report section {unknown[0]!r} to skip: the sections are {', '.join(keys)}", param="skip")
    rep.out.mkdir(parents=True, exist_ok=True)
    (rep.out / "errors.log").unlink(missing_ok=True)
    specs = [spec for spec in SECTIONS if spec.key not in rep.s.skip and spec.enabled(rep.s)]
    with tempfile.TemporaryDirectory(prefix="ambiguity-report-") as tmp:
        if store.count(SEGMENTS) > REPORT_APART_ABOVE:  # each group of sections in a process of its own (report/apart.py)
            built = {sec.key: sec for sec in build_apart(rep, specs, Path(tmp))}
        else:
            built = {spec.key: rep.run(spec) for spec in specs}
        rep.sections = []
        for spec in SECTIONS:
            if spec.key in rep.s.skip:  # listed, so that the index says it was left out on purpose
                rep.sections.append(Section(spec.key, spec.title_for(rep.s), note="left out: the report's settings skip it"))
            elif spec.key in built:
                rep.sections.append(built[spec.key])
        try:
            how = rep.how()  # the scheme of the quadrants: fixed split, or crossfit with K, R and the stability cut
        except AmbiguityError:  # no predictions: every section says so already
            how = "splits " + ", ".join(rep.s.splits or ("test",))
        rep.shared = {}  # its files go with the temporary folder: a later call computes again
    subtitle = (f"store {store.uri} · ambiguity {__version__} · {how} · "
                f"fusion model {rep.s.fusion} · threshold {rep.s.threshold}")
    write_index(rep.out, rep.s.title, subtitle, rep.sections)
    return rep
