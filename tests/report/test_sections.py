"""The section registry: every module of report/sections is registered once, and one section's failure
is a note (missing inputs) or an error note plus errors.log (a bug), never a lost report."""

from __future__ import annotations

import pkgutil

from ambiguity.errors import StatsError
from ambiguity.report import sections
from ambiguity.report.build import Report, ReportSettings
from ambiguity.report.context import SectionSpec


def test_every_section_module_is_registered_once():
    modules = {m.name for m in pkgutil.iter_modules(sections.__path__)}
    assert modules == set(sections.ORDER)
    assert len(sections.ORDER) == len(set(sections.ORDER))
    keys = [s.key for s in sections.SECTIONS]
    assert len(keys) == len(set(keys)), keys


def test_flagged_section_only_with_a_flag_column():
    spec = next(s for s in sections.SECTIONS if s.key == "flagged")
    assert not spec.enabled(ReportSettings())
    assert spec.enabled(ReportSettings(flag="planted"))
    assert "'planted'" in spec.title_for(ReportSettings(flag="planted"))


def test_missing_inputs_become_a_note_with_the_hint_and_a_bug_an_error(tmp_path):
    rep = Report(store=None, out=tmp_path, settings=ReportSettings())  # type: ignore[arg-type]

    def missing(rep, sec):
        raise StatsError("no predictions\nsecond line")

    def bug(rep, sec):
        raise ZeroDivisionError("boom")

    a = rep.run(SectionSpec("a", "A", missing, "run this"))
    b = rep.run(SectionSpec("b", "B", bug, "unused"))
    assert a.note == "no predictions — run this" and not a.error
    assert b.error and "ZeroDivisionError: boom" in b.note
    log = (tmp_path / "errors.log").read_text()
    assert "[b]" in log and "ZeroDivisionError" in log and "[a]" not in log
    assert [s.key for s in rep.sections] == ["a", "b"]



def test_skipped_sections_are_not_built_and_the_index_says_so(tmp_path, monkeypatch):
    import pytest

    from ambiguity import open_store
    from ambiguity.errors import ConfigError
    from ambiguity.report import build

    built = []
    fake = (SectionSpec("a", "A", lambda rep, sec: built.append("a"), "unused"),
            SectionSpec("b", "B: the kNN of every segment", lambda rep, sec: built.append("b"), "unused"))
    monkeypatch.setattr(build, "SECTIONS", fake)
    store = open_store(tmp_path / "s")
    rep = build.build_report(store, tmp_path / "r", ReportSettings(skip=("b",)))
    assert built == ["a"]
    assert [(s.key, s.note) for s in rep.sections] == [("a", ""), ("b", "left out: the report's settings skip it")]
    assert "left out: the report&#x27;s settings skip it" in (tmp_path / "r" / "index.html").read_text()
    with pytest.raises(ConfigError, match="no report section 'figure3' to skip: the sections are a, b") as err:
        build.build_report(store, tmp_path / "r", ReportSettings(skip=("figure3",)))
    assert err.value.param == "skip"
