from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from repo_scripts import load_script

if TYPE_CHECKING:
    import polars as pl


@pytest.fixture(scope="session")
def bad(tmp_path_factory) -> dict[str, Path]:
    """The hostile-input corpus, generated once per session by tests/data/bad/make_corpus.py."""
    return load_script("tests/data/bad/make_corpus.py").make(tmp_path_factory.mktemp("bad"))


@pytest.fixture(scope="session")
def seed_prosody(tmp_path_factory, bad):
    """A maker of the crash tests' starting point: ``seed_prosody(n, batch_size)`` returns a store folder with
    ``n`` 1.5 s segments of the two-hour file and no features yet, and the prosody features (no status or
    error) of an uninterrupted run on a copy of it in batches of ``batch_size``."""
    from ambiguity import open_store
    from ambiguity.extractors.prosody import Prosody
    from ambiguity.extractors.runner import run
    from ambiguity.segments import load_manifest

    def seed(n: int, batch_size: int) -> tuple[Path, pl.DataFrame]:
        base = tmp_path_factory.mktemp("seed")
        man = base / "m.csv"
        rows = [f"t{i},{bad['two_hours']},{60 * i},{60 * i + 1.5}" for i in range(n)]
        man.write_text("segment_id,media,start_s,end_s\n" + "\n".join(rows) + "\n")
        ref = open_store(base / "ref")
        ref.upsert_segments(load_manifest(man))
        fresh = base / "fresh"
        shutil.copytree(base / "ref", fresh)
        run(ref, Prosody(), workers=1, batch_size=batch_size, progress=False)
        return fresh, ref.features("prosody").sort("segment_id").drop("status", "error")

    return seed
