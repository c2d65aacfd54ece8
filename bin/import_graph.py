#!/usr/bin/env python3
"""The static import graph of src/ambiguity: cycles and imports that go up the layers.

Reads every module with ``ast`` (nothing is imported or run), takes every
``import`` of an ``ambiguity`` module wherever it stands (module level, inside a
function, under ``TYPE_CHECKING``) and, for a module inside a subpackage, the
implicit import of that subpackage's ``__init__``. The layer order is the
```layers``` block of docs/architecture.md: one layer a line, lowest first,
``name: prefix prefix ...``; a module belongs to the layer of its longest
matching prefix. An import from a lower layer to a higher one is "upward". A
layer written ``name [apart]: ...`` holds packages that stand side by side (the
two web apps): an import from one of its prefixes into another is "sideways".

    python bin/import_graph.py            # counts, cycles, upward and sideways imports; exit 1 if any
    python bin/import_graph.py --src DIR --layers FILE
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent


def modules(src: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py below ``src`` (the folder holding the package)."""
    out = {}
    for p in sorted(src.rglob("*.py")):
        parts = list(p.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _known(name: str, mods: dict[str, Path]) -> str:
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name


def imports(mods: dict[str, Path], package: str = "ambiguity", *, implicit: bool = True) -> dict[str, set[str]]:
    """Each module's imports of other modules of ``package``; ``implicit`` adds the subpackage ``__init__``s they run."""
    graph: dict[str, set[str]] = {}
    for mod, path in mods.items():
        pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(_known(a.name, mods) for a in node.names if a.name.split(".")[0] == package)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                if base.split(".")[0] != package:
                    continue
                for a in node.names:
                    full = f"{base}.{a.name}"
                    found.add(full if full in mods else _known(base, mods))
        # importing a.b.c runs a.b's __init__ first (the root package's aside: it always runs first)
        for target in list(found) if implicit else ():
            parent = target.rpartition(".")[0]
            while parent.count("."):
                if not mod.startswith(parent + ".") and mod != parent:
                    found.add(parent)
                parent = parent.rpartition(".")[0]
        found.discard(mod)
        found.discard("")
        graph[mod] = found
    return graph


class Layer(NamedTuple):
    name: str
    prefixes: list[str]
    apart: bool = False  # its prefixes may not import each other


def read_layers(doc: Path) -> list[Layer]:
    """The ```layers``` block of the architecture document, lowest layer first."""
    m = re.search(r"```layers\n(.*?)```", doc.read_text(), re.S)
    if not m:
        raise SystemExit(f"error: {doc} has no ```layers block")
    layers = []
    for line in m.group(1).splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, prefixes = line.partition(":")
            apart = name.strip().endswith("[apart]")
            layers.append(Layer(name.replace("[apart]", "").strip(), prefixes.split(), apart))
    return layers


def placed(mod: str, layers: list[Layer]) -> tuple[int, str] | None:
    """(layer index, prefix) of the longest prefix that matches ``mod``."""
    best, found = -1, None
    for i, layer in enumerate(layers):
        for p in layer.prefixes:
            # a dotted prefix is a package and all below it; a bare name (the root) is that module alone
            if (mod == p or ("." in p and mod.startswith(p + "."))) and len(p) > best:
                best, found = len(p), (i, p)
    return found


def layer_of(mod: str, layers: list[Layer]) -> int | None:
    found = placed(mod, layers)
    return None if found is None else found[0]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle, each once (rotated to start at its smallest module)."""
    found: set[tuple[str, ...]] = set()

    def walk(start: str, node: str, path: list[str], on: set[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                found.add(tuple(path))
            elif nxt > start and nxt not in on:
                on.add(nxt)
                walk(start, nxt, path + [nxt], on)
                on.discard(nxt)

    for start in sorted(graph):
        walk(start, start, [start], {start})
    return [list(c) for c in sorted(found)]


def upward(graph: dict[str, set[str]], layers: list[Layer]) -> list[tuple[str, str]]:
    out = []
    for mod, targets in sorted(graph.items()):
        lm = layer_of(mod, layers)
        for t in sorted(targets):
            lt = layer_of(t, layers)
            if lm is not None and lt is not None and lt > lm:
                out.append((mod, t))
    return out


def sideways(graph: dict[str, set[str]], layers: list[Layer]) -> list[tuple[str, str]]:
    """Imports between two prefixes of one ``[apart]`` layer (one web app importing the other)."""
    out = []
    for mod, targets in sorted(graph.items()):
        pm = placed(mod, layers)
        for t in sorted(targets):
            pt = placed(t, layers)
            if pm and pt and pm[0] == pt[0] and layers[pm[0]].apart and pm[1] != pt[1]:
                out.append((mod, t))
    return out


def unplaced(graph: dict[str, set[str]], layers: list[Layer]) -> list[str]:
    return sorted(m for m in graph if layer_of(m, layers) is None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=ROOT / "src")
    ap.add_argument("--layers", type=Path, default=ROOT / "docs" / "architecture.md")
    args = ap.parse_args(argv)
    mods = modules(args.src)
    graph, explicit = imports(mods), imports(mods, implicit=False)
    layers = read_layers(args.layers)
    cyc, up, loose = cycles(graph), upward(explicit, layers), unplaced(graph, layers)
    side = sideways(explicit, layers)
    print(f"{len(graph)} modules, {sum(map(len, explicit.values()))} imports, {len(cyc)} cycles, "
          f"{len(up)} upward imports, {len(side)} sideways imports, {len(loose)} modules in no layer")
    for c in cyc:
        print("cycle:  " + " -> ".join(c + c[:1]))
    for a, b in up:
        print(f"upward: {a} ({layers[layer_of(a, layers)][0]}) -> {b} ({layers[layer_of(b, layers)][0]})")
    for a, b in side:
        print(f"sideways: {a} -> {b} ({layers[layer_of(a, layers)][0]} holds them apart)")
    for m in loose:
        print(f"no layer: {m}")
    return 1 if cyc or up or side or loose else 0


if __name__ == "__main__":
    sys.exit(main())
