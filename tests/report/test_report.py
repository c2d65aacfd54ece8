"""The report from the demo's pipeline at a small size: every section, every file, every figure drawn,
and the page as headless Chromium shows it."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    spec = importlib.util.spec_from_file_location("demo", ROOT / "bin" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    demo.N_PER_CLASS = 40
    d = tmp_path_factory.mktemp("demo")
    demo.build_manifest(d / "manifest.csv")
    # The demo's own pipeline, with fewer permutations; everything else as `make demo` runs it.
    (d / "pipeline.toml").write_text(demo.CONFIG.replace("permutations = 2000", "permutations = 200"))
    from ambiguity.pipeline import run_pipeline

    out = run_pipeline(d / "pipeline.toml", echo=lambda *_: None)
    assert out["ran"][-1] == "report"
    return d / "report"


def test_every_section_is_built_or_says_what_to_run(report_dir):
    html = (report_dir / "index.html").read_text()
    for title in ["Table 1", "Table 2", "Figure 2", "Tables 3, 6, 7", "Figure 5", "Tables 4, 8", "Figure 6",
                  "Figure 3", "Table 5", "data map", "The most ambiguous segments"]:
        assert title in html, title
    assert not (report_dir / "errors.log").exists(), (report_dir / "errors.log").read_text()
    # No annotations in this store: Table 5 says what to run instead of failing.
    assert "ambiguity sample" in html and "annotate serve" in html


def test_every_table_in_three_formats_and_every_figure_in_two(report_dir):
    tables = sorted((report_dir / "tables").glob("*.md"))
    stems = {p.stem for p in tables}
    for stem in ["table1_performance", "table2_disagreement", "table3_audio_significant", "table6_red_vs_green",
                 "table7_audio_full", "table4_au_significant", "table8_au_full", "flagged_disagreement", "most_ambiguous"]:
        assert stem in stems, stem
        for ext in (".tex", ".csv"):
            assert (report_dir / "tables" / f"{stem}{ext}").exists()
        tex = (report_dir / "tables" / f"{stem}.tex").read_text()
        assert r"\toprule" in tex and r"\bottomrule" in tex  # booktabs
    for fig in ["figure2_quadrants", "figure3_boundary", "figure5_features", "figure6_au_rates", "datamap"]:
        png, svg = report_dir / "figures" / f"{fig}.png", report_dir / "figures" / f"{fig}.svg"
        assert svg.exists() and svg.read_text().lstrip().startswith(("<?xml", "<svg"))
        import matplotlib.image as mpimg

        img = mpimg.imread(png)  # decodes, or raises
        assert img.ndim == 3 and min(img.shape[:2]) > 100
        assert float(np.std(img[..., :3])) > 0.02, f"{fig}.png is blank"


def test_most_ambiguous_table_is_the_ranking(report_dir):
    import polars as pl

    top = pl.read_csv(report_dir / "tables" / "most_ambiguous.csv")
    assert 0 < top.height <= 20 and top["rank"].to_list() == list(range(1, top.height + 1))
    assert top["score"].to_list() == sorted(top["score"].to_list(), reverse=True)
    assert {"committee", "knn"} <= set(top.columns)  # the demo has predictions and a text embedding
    assert "unavailable" in (report_dir / "tables" / "most_ambiguous.md").read_text()
    # The section reuses the report's cross-fitted quadrants: the same ranking as `ambiguity rank` computes afresh.
    from ambiguity.stats.score import default_embedding, rank
    from ambiguity.stores.lance import open_store

    store = open_store(report_dir.parent / "store")
    fresh = rank(store, top=20, fusion="fusion", embedding=default_embedding(store))
    assert top["segment_id"].to_list() == fresh["segment_id"].to_list()
    np.testing.assert_allclose(top["score"].to_numpy(), fresh["score"].to_numpy(), rtol=1e-3)  # the csv has 3 digits


def test_the_ranking_leaves_out_knn_above_its_limit(report_dir, monkeypatch, tmp_path):
    from ambiguity.report.build import build_report
    from ambiguity.report.sections import ambiguous
    from ambiguity.stores.lance import open_store

    monkeypatch.setattr(ambiguous, "KNN_UP_TO", 10)  # the demo store has 80 segments
    out = tmp_path / "report"
    from ambiguity.report.context import ReportSettings
    from ambiguity.report.sections import SECTIONS

    skip = tuple(sp.key for sp in SECTIONS if sp.key != "ambiguous")
    build_report(open_store(report_dir.parent / "store"), out, ReportSettings(skip=skip))
    md = (out / "tables" / "most_ambiguous.md").read_text()
    assert "kNN component is left out above 10 segments (80 here" in md


def test_tables_state_test_correction_family_and_n(report_dir):
    t7 = (report_dir / "tables" / "table7_audio_full.md").read_text()
    assert "within-label regression" in t7 and "Holm" in t7 and "family" in t7 and re.search(r"\bn\b|segments", t7)
    assert "label mix: red n=" in t7  # each quadrant's count per label (issue 25)


def test_page_in_headless_chromium_shows_every_table_and_figure(report_dir, chromium):
    from playwright.sync_api import sync_playwright

    pngs = len(list((report_dir / "figures").glob("*.png")))
    with sync_playwright() as p:
        browser = p.chromium.launch(**chromium)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto((report_dir / "index.html").as_uri())
            widths = page.eval_on_selector_all("img", "els => els.map(e => e.complete ? e.naturalWidth : 0)")
            n_tables = page.eval_on_selector_all("table", "els => els.length")
        finally:
            browser.close()
    assert len(widths) == pngs and all(w > 100 for w in widths)
    assert n_tables >= 10


def test_a_large_store_builds_each_group_of_sections_in_its_own_process(report_dir, tmp_path, monkeypatch):
    """Above REPORT_APART_ABOVE segments (lowered to 0 here) the quadrants and each group of sections are computed in
    spawned processes that share the quadrants through Arrow files: the same tables as one process builds."""
    import polars as pl

    from ambiguity.report import build
    from ambiguity.report.context import ReportSettings
    from ambiguity.stores.lance import open_store

    store = open_store(report_dir.parent / "store")
    settings = ReportSettings(permutations=200, audio_groups=["prosody", "opensmile"])
    one = build.build_report(store, tmp_path / "one", settings)
    calls = []
    real = build.build_apart
    monkeypatch.setattr(build, "build_apart", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(build, "REPORT_APART_ABOVE", 0)
    apart = build.build_report(store, tmp_path / "apart", settings)
    assert calls == [1]
    assert [(s.key, s.note, s.error) for s in apart.sections] == [(s.key, s.note, s.error) for s in one.sections]
    tables = sorted(p.name for p in (tmp_path / "one" / "tables").glob("*.csv"))
    assert len(tables) >= 8 and tables == sorted(p.name for p in (tmp_path / "apart" / "tables").glob("*.csv"))
    for name in tables:
        a, b = pl.read_csv(tmp_path / "one" / "tables" / name), pl.read_csv(tmp_path / "apart" / "tables" / name)
        assert a.equals(b), name
    assert sorted(p.name for p in (tmp_path / "apart" / "figures").glob("*.png")) == sorted(
        p.name for p in (tmp_path / "one" / "figures").glob("*.png"))


def test_a_section_process_that_dies_becomes_an_error_note(report_dir, tmp_path, monkeypatch):
    """Built apart, a group whose process dies (here the pool's own BrokenProcessPool, raised for Figure 3's group)
    becomes an error note for its sections; the other sections and the index are still written."""
    from concurrent.futures.process import BrokenProcessPool

    from ambiguity.report import apart, build
    from ambiguity.report.context import ReportSettings
    from ambiguity.report.sections import SECTIONS
    from ambiguity.stores.lance import open_store

    real = apart.run_apart

    def dying(flag, fn, *args):
        if fn is apart._sections and "figure3" in args[3]:
            raise BrokenProcessPool("A process in the process pool was terminated abruptly")
        return real(flag, fn, *args)

    monkeypatch.setattr(apart, "run_apart", dying)
    monkeypatch.setattr(build, "REPORT_APART_ABOVE", 0)
    skip = tuple(sp.key for sp in SECTIONS if sp.key not in ("table1", "figure3"))
    rep = build.build_report(open_store(report_dir.parent / "store"), tmp_path / "r", ReportSettings(skip=skip))
    by = {s.key: s for s in rep.sections}
    assert by["figure3"].error and "its process failed: BrokenProcessPool" in by["figure3"].note
    assert not by["table1"].error and by["table1"].files
    assert "its process failed" in (tmp_path / "r" / "index.html").read_text()
