"""bin/mutate.py: each mutant changes exactly one operator or constant, never a docstring or an
annotation."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = '''"""Doc 1 + 2."""
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    x: int = 3


def f(a: int = 1, b: float = 0.5) -> bool:
    """Docstring 7 < 8."""
    if not a < b and a == 2:
        return a + b * -1
    return True
'''


def _mutate():
    spec = importlib.util.spec_from_file_location("mutate", ROOT / "bin" / "mutate.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["mutate"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_sites_skip_docstrings_annotations_and_type_checking():
    m = _mutate()
    whats = [w for _, w, _ in m._sites(ast.parse(SOURCE))]
    assert sorted(whats) == sorted(["1 -> 2", "0.5 -> 1.0", "drop not", "Lt -> LtE", "And -> Or", "Eq -> NotEq", "2 -> 3",
                                    "Add -> Sub", "Mult -> Div", "drop unary minus", "1 -> 2", "True -> False"])


def test_each_mutant_differs_from_the_original_in_one_place():
    m = _mutate()
    original = ast.unparse(ast.parse(SOURCE))
    n = len(m._sites(ast.parse(SOURCE)))
    mutants = {m.mutant_source(SOURCE, i) for i in range(n)}
    assert len(mutants) == n and original not in mutants
    for src in mutants:
        diff = [(a, b) for a, b in zip(original.splitlines(), src.splitlines(), strict=True) if a != b]
        assert len(diff) == 1, diff
    ns = {}
    exec(compile(m.mutant_source(SOURCE, [w for _, w, _ in m._sites(ast.parse(SOURCE))].index("drop not")), "m", "exec"), ns)
    assert ns["f"](0, 1) is True  # `not 0 < 1 and ...` became `bool(0 < 1) and 0 == 2`: False, so True is returned
