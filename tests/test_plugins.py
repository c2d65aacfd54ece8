"""Plugins: a real installed entry point runs through `ambiguity extract`; the registry refuses bad ones."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from ambiguity.errors import RegistryError
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
    assert st["a"]["status"] == "ok" and st["b"]["status"] == "failed"
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


def test_registry_refuses_duplicates_and_wrong_types(monkeypatch):
    dup = [EntryPoint("prosody", "ambiguity.extractors.prosody:Prosody", registry.GROUP),
           EntryPoint("prosody", "ambiguity.extractors.opensmile:OpenSmile", registry.GROUP)]
    monkeypatch.setattr(registry, "entry_points", _fake_entry_points(dup))
    registry.entries.cache_clear()
    with pytest.raises(RegistryError, match="two packages register an extractor named 'prosody'"):
        registry.entries()
    wrong = [EntryPoint("dict", "builtins:dict", registry.GROUP)]
    monkeypatch.setattr(registry, "entry_points", _fake_entry_points(wrong))
    registry.entries.cache_clear()
    with pytest.raises(RegistryError, match="not a subclass of ambiguity.Extractor"):
        registry.entries()
    registry.entries.cache_clear()


def test_unknown_extractor_name(monkeypatch):
    registry.entries.cache_clear()
    from ambiguity.errors import ExtractorError

    with pytest.raises(ExtractorError, match="unknown extractor 'nope'"):
        registry.get("nope")
