"""Extras install what they promise: every third-party module a part of the package imports is a
core dependency or in the extra that part needs, and (in the main environment) imports.

The imports are read statically (ast) from each module and, transitively, from the package's own
modules it imports, so a dependency pulled in through a shared helper (``extractors.inference``
imports huggingface_hub for every model extractor) counts for each extractor that uses it.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata as md
import re
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

#: Which extras each part of the package needs beyond the core dependencies (README "Install").
NEEDS = {
    "ambiguity.extractors.prosody": ["audio"],
    "ambiguity.extractors.opensmile": ["audio"],
    "ambiguity.extractors.audio": ["audio"],
    "ambiguity.extractors.vad": ["audio"],
    "ambiguity.extractors.align": ["audio"],  # pocketsphinx, webrtcvad
    "ambiguity.extractors.speech_activity": ["audio"],
    "ambiguity.extractors.word_prosody": ["audio"],
    "ambiguity.extractors.transcript": ["audio"],
    "ambiguity.extractors.text": ["text"],
    "ambiguity.extractors.video": ["video"],
    "ambiguity.extractors.landmarks": ["video"],
    # the engine every model extractor shares: each of their extras installs torch, transformers, huggingface_hub
    "ambiguity.extractors.inference": ["audio"],
    "ambiguity.devices": ["models"],  # torch only inside resolve_device, which only torch code calls
    "ambiguity.models.training": ["models"],
    "ambiguity.models.fusion": ["models"],
    "ambiguity.models.probes": ["models"],
    "ambiguity.models.saved": ["models"],
    "ambiguity.models.shapley": ["models"],
    "ambiguity.models.reliance": ["models"],
    "ambiguity.models.finetune": ["models", "text"],  # fine-tunes a transformers encoder
    "ambiguity.stats.boundary_tests": ["stats"],  # the optional UMAP projection
    "ambiguity.annotate.app": ["annotate"],
    "ambiguity.annotate.server": ["annotate"],
    "ambiguity.explore.app": ["annotate"],
    "ambiguity.web.http": ["annotate"],  # starlette; web.clips needs only PyAV
    "ambiguity.engines.ray": ["ray"],
    "ambiguity.stats.crowd_raters": ["crowd"],  # crowd-kit's Dawid-Skene (it brings pandas)
}
#: Modules imported only to offer something optional, each behind an ImportError with a hint.
OPTIONAL = {"pandas", "captum"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _file(mod: str) -> Path | None:
    base = SRC / Path(*mod.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.exists():
            return p
    return None


def _runtime_nodes(tree: ast.AST):
    """Every node but those under ``if TYPE_CHECKING:`` (imports for annotations only)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and getattr(child.test, "id", getattr(child.test, "attr", None)) == "TYPE_CHECKING":
                todo += child.orelse
                continue
            todo.append(child)


@cache
def _direct(mod: str) -> tuple[frozenset[str], frozenset[str]]:
    """(third-party top-level modules, ambiguity modules) that ``mod`` imports anywhere in its body."""
    tree = ast.parse(_file(mod).read_text())
    third, own = set(), set()
    for node in _runtime_nodes(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for n in names:
            top = n.split(".")[0]
            if top == "ambiguity":
                while n and _file(n) is None:
                    n = n.rpartition(".")[0]
                if n:
                    own.add(n)
            elif top not in sys.stdlib_module_names and top != "__future__":
                third.add(top)
    return frozenset(third), frozenset(own - {mod})


def third_party(mod: str, stop: frozenset[str] = frozenset()) -> set[str]:
    """Third-party modules ``mod`` needs, following the package's own imports (not into ``stop``)."""
    seen, todo, out = set(), [mod], set()
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        third, own = _direct(m)
        out |= third
        todo += [o for o in own if o not in stop and o != "ambiguity"]
    return out


def _requirements(extra: str | None) -> set[str]:
    reqs = PYPROJECT["project"]["dependencies"] if extra is None else PYPROJECT["project"]["optional-dependencies"][extra]
    out = set()
    for r in map(Requirement, reqs):
        if _norm(r.name) == "ambiguity":
            for e in r.extras:
                out |= _requirements(e)
        else:
            out.add(_norm(r.name))
    return out


@cache
def _providers(module: str) -> frozenset[str]:
    """The installed distributions that provide top-level ``module``."""
    found = {_norm(d) for d in md.packages_distributions().get(module, [])}
    if not found:  # extension modules (parselmouth.cpython-*.so) and packages a RECORD lists oddly (dlib)
        import importlib.util

        spec = importlib.util.find_spec(module)
        origin = Path(spec.origin).resolve() if spec and spec.origin else None
        for dist in md.distributions() if origin else ():
            for f in dist.files or ():
                if Path(dist.locate_file(f)).resolve() == origin:
                    found.add(_norm(dist.metadata["Name"]))
    return frozenset(found)


def _covered(module: str, dists: set[str]) -> bool:
    # a module is covered when a declared distribution, or one of its own requirements, provides it
    providers = _providers(module)
    if providers & dists:
        return True
    for d in dists:
        try:
            sub = {_norm(Requirement(r).name) for r in (md.requires(d) or []) if "extra ==" not in r}
        except md.PackageNotFoundError:
            continue
        if providers & sub:
            return True
    return False


CORE = _requirements(None)
MODULES = sorted(
    ".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
    for p in (SRC / "ambiguity").rglob("*.py")
)


@pytest.mark.parametrize("mod", MODULES)
def test_every_third_party_import_is_declared(mod):
    # the parts listed in NEEDS are followed only by the modules that import them, not into them:
    # a module that imports `ambiguity.extractors.audio` (the registry, lazily) does not need its extra
    stop = frozenset(NEEDS) - {mod}
    dists = CORE | {d for e in NEEDS.get(mod, []) for d in _requirements(e)}
    missing = sorted(m for m in third_party(mod, stop) - OPTIONAL if not _covered(m, dists))
    assert not missing, f"{mod} imports {missing}, which neither the core dependencies nor {NEEDS.get(mod) or 'any extra'} install"


def test_every_model_extractor_extra_installs_the_inference_engine():
    engine = third_party("ambiguity.extractors.inference")
    for extra in ("audio", "text", "video"):
        dists = CORE | _requirements(extra)
        assert all(_covered(m, dists) for m in engine - OPTIONAL), extra


def test_torch_is_not_a_core_dependency():
    assert "torch" not in CORE and "torch" in _requirements("models")
    assert {"pingouin", "sentence-transformers", "tokenizers", "ruff", "mypy"} <= _requirements("test")
    assert not {"pingouin", "sentence-transformers", "ruff", "mypy"} & (CORE | _requirements("all"))


@pytest.mark.parametrize("extra", sorted({e for es in NEEDS.values() for e in es}))
def test_each_extra_imports_what_its_parts_need(extra):
    # the main environment installs every extra: what each part imports must import here
    for mod, extras in NEEDS.items():
        if extra in extras:
            for top in sorted(third_party(mod, frozenset(NEEDS) - {mod}) - OPTIONAL):
                importlib.import_module(top)
            importlib.import_module(mod)
