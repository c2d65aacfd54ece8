"""Plugins: a real installed entry point runs through `ambiguity extract`; the registry refuses bad ones."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from ambiguity.errors import UnavailableError
from ambiguity.extractors import registry
from ambiguity.testing import check_extractor

PLUGIN = Path(__file__).parent / "fixtures" / "example_plugin"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), str(PLUGIN)],
        check=True, capture_output=True,
    )
    return site


def cli(args: list[str], site: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-m", "ambiguity.cli.__main__", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)


def test_installed_plugin_runs_through_extract(plugin_site, tmp_path, speech_dir):
    listed = cli(["extractors"], plugin_site, tmp_path)
    assert listed.returncode == 0 and "wordcount" in listed.stdout
    man = tmp_path / "m.csv"
    man.write_text(f"segment_id,media,transcript\na,{speech_dir / '00.wav'},I am so sorry\nb,{speech_dir / '01.wav'},\n")
    assert cli(["init", "proj"], plugin_site, tmp_path).returncode == 0
    proj = tmp_path / "proj"
    assert cli(["ingest", str(man)], plugin_site, proj).returncode == 0
    out = cli(["extract", "--extractor", "wordcount", "--quiet"], plugin_site, proj)
    assert out.returncode == 0, out.stderr
    from ambiguity import open_store

    store = open_store(proj / "store")
    st = {r["segment_id"]: r for r in store.group_status("wordcount").iter_rows(named=True)}
    assert st["a"]["status"] == "ok" and st["b"]["status"] == "empty"  # no transcript: missing, not an error
    assert store.features("wordcount")["n_words"].to_list() == [4.0]


def test_conformance_suite_accepts_the_example_plugin(plugin_site, monkeypatch):
    monkeypatch.syspath_prepend(str(plugin_site))
    from ambiguity_wordcount import WordCount

    check_extractor(WordCount)


def test_conformance_suite_accepts_builtins():
    from ambiguity.extractors.prosody import Prosody

    check_extractor(Prosody)


def test_conformance_suite_catches_batch_dependence():
    from dataclasses import dataclass

    import pyarrow as pa

    from ambiguity import Extractor

    @dataclass(frozen=True)
    class P:
        pass

    class Leaky(Extractor):
        name = "leaky"
        modality = "text"
        kind = "model"  # in-process: a local class need not pickle
        Params = P

        def columns(self):
            return [pa.field("batch_len", pa.float64())]

        def process(self, batch):
            return [{"batch_len": float(len(batch))} for _ in batch]

    with pytest.raises(AssertionError, match="in a batch differs from the result alone"):
        check_extractor(Leaky)


def _fake_entry_points(eps):
    return lambda group: [e for e in eps if e.group == group]


def test_registry_lists_duplicates_and_wrong_types_with_their_error(monkeypatch):
    dup = [EntryPoint("prosody", "ambiguity.extractors.prosody:Prosody", registry.GROUP),
           EntryPoint("prosody", "ambiguity.extractors.opensmile:OpenSmile", registry.GROUP),
           EntryPoint("dict", "builtins:dict", registry.GROUP),
           EntryPoint("opensmile", "ambiguity.extractors.opensmile:OpenSmile", registry.GROUP)]
    monkeypatch.setattr(registry, "entry_points", _fake_entry_points(dup))
    registry.entries.cache_clear()
    try:
        got = registry.entries()
        assert "two packages register an extractor named 'prosody'" in got["prosody"].reason
        assert "not a subclass of ambiguity.Extractor" in got["dict"].reason
        assert got["opensmile"].available  # the others still work
        with pytest.raises(UnavailableError, match="not a subclass"):
            registry.get("dict")
    finally:
        registry.entries.cache_clear()


def _broken_site(tmp_path: Path) -> Path:
    """A plugin whose entry-point name differs from its class's name, and one that cannot import."""
    site = tmp_path / "broken_site"
    pkg = site / "ambiguity_broken"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        "import pyarrow as pa\nfrom ambiguity import Extractor\n\n"
        "class Misnamed(Extractor):\n    name = 'other'\n    modality = 'text'\n"
        "    def columns(self):\n        return [pa.field('x', pa.float64())]\n"
        "    def process(self, batch):\n        return [{'x': 1.0} for _ in batch]\n"
    )
    dist = site / "ambiguity_broken-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ambiguity-broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[ambiguity.extractors]\nmisnamed = ambiguity_broken:Misnamed\nghost = ambiguity_ghost:Ghost\n")
    return site


def test_a_broken_plugin_is_listed_and_the_others_still_work(tmp_path, speech_dir):
    site = _broken_site(tmp_path)
    listed = cli(["extractors"], site, tmp_path)
    assert listed.returncode == 0, listed.stderr
    lines = {ln.split()[0]: ln for ln in listed.stdout.splitlines() if ln and not ln.startswith(" ")}
    assert "points to a class named 'other'" in lines["misnamed"] and "unavailable" in lines["misnamed"]
    assert "cannot import ambiguity_ghost:Ghost: ModuleNotFoundError" in lines["ghost"]
    assert lines["prosody"].split()[2] == "ok"
    man = tmp_path / "m.csv"
    man.write_text(f"segment_id,media\na,{speech_dir / '00.wav'}\n")
    store = tmp_path / "store"
    assert cli(["--store", str(store), "ingest", str(man)], site, tmp_path).returncode == 0
    ran = cli(["--store", str(store), "extract", "--extractor", "prosody", "--quiet", "--workers", "1"], site, tmp_path)
    assert ran.returncode == 0 and "1 ok" in ran.stdout, ran.stderr
    bad = cli(["--store", str(store), "extract", "--extractor", "misnamed"], site, tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("error: extractor 'misnamed' cannot run here: ")


def test_check_extractor_speaks_in_assertion_errors():
    from dataclasses import dataclass

    import pyarrow as pa

    from ambiguity import Extractor
    from ambiguity.errors import ExtractorError

    @dataclass(frozen=True)
    class P:
        n: int = 1

    class Picky(Extractor):
        name = "picky"
        modality = "text"
        kind = "model"
        Params = P

        def validate(self):
            if self.params.n > 3:
                raise ExtractorError(f"n={self.params.n} must be at most 3")

        def columns(self):
            return [pa.field("x", pa.float64())]

        def process(self, batch):
            return [{"x": 1.0, "y": 2.0} for _ in batch]

    with pytest.raises(AssertionError, match=r"Picky: ExtractorError: n=5 must be at most 3"):
        check_extractor(Picky, {"n": 5})
    with pytest.raises(AssertionError, match=r"parameter n='many' is not an integer"):
        check_extractor(Picky, {"n": "many"})
    with pytest.raises(AssertionError, match=r"result for sample segment 'whole' \(the whole file\) has columns "
                                             r"not declared in columns\(\): \['y'\]"):
        check_extractor(Picky)
    Picky.modality = "smell"  # type: ignore[misc]
    with pytest.raises(AssertionError, match=r"Picky: RegistryError: extractor 'picky' has modality 'smell'"):
        check_extractor(Picky)


def _doc_block(lang: str, after: str) -> str:
    """The first ```lang block after the line ``after`` in docs/plugins.md."""
    doc = (Path(__file__).parent.parent / "docs" / "plugins.md").read_text()
    rest = doc[doc.index(after):]
    start = rest.index(f"```{lang}\n") + len(lang) + 4
    return rest[start:rest.index("```", start)]


def test_the_documented_plugin_installs_as_written(tmp_path):
    pkg = tmp_path / "ambiguity-wordcount"
    (pkg / "ambiguity_wordcount").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(_doc_block("toml", "`pyproject.toml` of your package"))
    (pkg / "ambiguity_wordcount" / "__init__.py").write_text(_doc_block("python", "`ambiguity_wordcount/__init__.py`"))
    site = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                        "--target", str(site), str(pkg)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    listed = cli(["extractors"], site, tmp_path)
    line = next(ln for ln in listed.stdout.splitlines() if ln.startswith("wordcount"))
    assert line.split()[1:3] == ["text", "ok"]


def test_unknown_extractor_name(monkeypatch):
    registry.entries.cache_clear()
    from ambiguity.errors import ExtractorError

    with pytest.raises(ExtractorError, match="unknown extractor 'nope'"):
        registry.get("nope")
