"""The extraction wing stays small and public (issue 27): one executor, no private attribute of the
standard library or of a dependency, no state in environment variables, and fewer plumbing
modules in `extractors/` than modules that hold extractors."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXTRACTORS = ROOT / "src" / "ambiguity" / "extractors"

#: The modules that run extraction rather than measure something (the executor and its parts).
PLUMBING = {"runner", "plan", "rows", "isolate", "pool", "pipelined", "registry", "diskcache"}
#: Shared bases and helpers of the extractors themselves (the contract, models, file formats).
CONTRACT = {"__init__", "base", "inference", "segment_audio", "openface_csv"}


def _entry_modules() -> set[str]:
    eps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["ambiguity.extractors"]
    return {v.split(":")[0].rsplit(".", 1)[1] for v in eps.values()}


def test_fewer_plumbing_modules_than_extractor_modules():
    modules = {p.stem for p in EXTRACTORS.glob("*.py")}
    extractors = _entry_modules() & modules
    unclassified = modules - PLUMBING - CONTRACT - extractors
    assert not unclassified, f"say whether these are plumbing or extractors: {sorted(unclassified)}"
    assert len(PLUMBING & modules) < len(extractors), (sorted(PLUMBING & modules), sorted(extractors))


# Names that read the internals of multiprocessing / concurrent.futures / opensmile, or the
# store's private helper from outside it: each once made a Python or dependency release a silent break.
PRIVATE = [r"_forkserver_pid", r"\._stop\b", r"_processes\b", r"opensmile\.core", r"set_forkserver_preload",
           r"\b_is_local\b", r"AMBIGUITY_(TRACE|PHASES|START_METHOD|POOL_PRELOAD|COMPACT_AFTER|WRITE_EVERY)"]


def test_no_private_attribute_or_state_in_environment_variables():
    files = [*EXTRACTORS.glob("*.py"), *(ROOT / "src" / "ambiguity" / "engines").glob("*.py"),
             ROOT / "src" / "ambiguity" / "cli" / "core.py"]
    found = [f"{f.relative_to(ROOT)}: {pat}" for f in files for pat in PRIVATE if re.search(pat, f.read_text())]
    assert not found, found
