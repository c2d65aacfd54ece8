"""The layers of docs/architecture.md hold: no import cycle in src/, no import up the layer order."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("import_graph", ROOT / "bin" / "import_graph.py")
ig = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ig)


def _graph():
    mods = ig.modules(ROOT / "src")
    return ig.imports(mods), ig.imports(mods, implicit=False), ig.read_layers(ROOT / "docs" / "architecture.md")


def test_no_import_cycle_in_src():
    graph, _, _ = _graph()
    assert ig.cycles(graph) == []


def test_every_module_has_a_layer_and_imports_only_downward():
    graph, explicit, layers = _graph()
    assert ig.unplaced(graph, layers) == []
    assert ig.upward(explicit, layers) == []


def test_the_checker_finds_cycles_and_upward_imports(tmp_path):
    # a tree with one cycle (a.x <-> a.y, the second import lazy) and one upward import (low -> high)
    pkg = tmp_path / "ambiguity"
    for rel, text in {
        "__init__.py": "",
        "low.py": "def f():\n    from ambiguity.high import g\n",
        "high.py": "from ambiguity.a import x\n",
        "a/__init__.py": "",
        "a/x.py": "from ambiguity.a import y\n",
        "a/y.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ambiguity.a.x import X\n",
    }.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    doc = tmp_path / "arch.md"
    doc.write_text(textwrap.dedent("""\
        ```layers
        bottom: ambiguity.low ambiguity.a
        top: ambiguity.high ambiguity
        ```
        """))
    mods = ig.modules(tmp_path)
    layers = ig.read_layers(doc)
    assert ig.cycles(ig.imports(mods)) == [["ambiguity.a.x", "ambiguity.a.y"]]
    assert ig.upward(ig.imports(mods, implicit=False), layers) == [("ambiguity.low", "ambiguity.high")]
    assert ig.main(["--src", str(tmp_path), "--layers", str(doc)]) == 1
