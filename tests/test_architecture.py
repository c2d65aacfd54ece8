"""The layers of docs/architecture.md hold: no import cycle in src/, no import up the layer order, no import
between the two web apps; no private name is imported across packages or read from the standard library or a
dependency; a shared name (the schemes, the default quadrant pairs) is defined once."""

from __future__ import annotations

import ast
import importlib.util
import re
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


def test_the_web_apps_stand_side_by_side_on_shared_web_parts():
    _, explicit, layers = _graph()
    assert ig.sideways(explicit, layers) == []
    names = [layer.name for layer in layers]
    # the engines above the extractors they run; the apps in a layer of their own above the shared web layer
    assert names.index("engines") == names.index("extract") + 1
    assert names.index("web") < names.index("apps") and layers[names.index("apps")].apart
    assert {"ambiguity.annotate", "ambiguity.explore"} <= set(layers[names.index("apps")].prefixes)
    assert "ambiguity.web.http" in explicit["ambiguity.annotate.app"] and "ambiguity.web.http" in explicit["ambiguity.explore.app"]


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
    assert ig.sideways(ig.imports(mods, implicit=False), layers) == []
    assert ig.main(["--src", str(tmp_path), "--layers", str(doc)]) == 1
    # the same tree with ambiguity.a and ambiguity.high side by side: high -> a.x is sideways
    doc.write_text("```layers\nbottom: ambiguity.low\ntop [apart]: ambiguity.high ambiguity.a ambiguity\n```\n")
    layers = ig.read_layers(doc)
    assert layers[1].apart and layers[1].name == "top"
    assert ig.sideways(ig.imports(mods, implicit=False), layers) == [("ambiguity.high", "ambiguity.a.x")]


# -- private names ---------------------------------------------------------------------------------
#: Private attributes of the standard library and of dependencies this package once read (multiprocessing's
#: fork server and pool, openSMILE's Smile, the store's URI test): flagged wherever they are read off
#: anything but ``self``/``cls``, whatever the object is called.
KNOWN_PRIVATE = {"_forkserver_pid", "_forkserver", "_stop", "_processes", "_options", "_is_local"}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_reads(src: Path) -> list[str]:
    """``file:line: what`` for each private name imported from another package (of ``ambiguity`` or outside
    it), read as an attribute of something imported from outside ``ambiguity``, read by name through
    getattr/hasattr/setattr off anything but self/cls, or one of KNOWN_PRIVATE read off anything but self/cls."""
    out = []
    for path in sorted(src.rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mod = ".".join(parts)
        pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        tree = ast.parse(path.read_text(), str(path))
        outside: set[str] = set()  # names bound to a module or object imported from outside the package
        where = f"{path.relative_to(src)}"
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                outside |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name.split(".")[0] != "ambiguity"}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                ours = base.split(".")[0] == "ambiguity"
                for a in node.names:
                    if not ours:
                        outside.add(a.asname or a.name)
                    same_package = base == pkg or base.rpartition(".")[0] == pkg
                    if _private(a.name) and not (ours and same_package):
                        out.append(f"{where}:{node.lineno}: from {base} import {a.name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                root = node.value
                while isinstance(root, ast.Attribute | ast.Call | ast.Subscript):
                    root = root.func if isinstance(root, ast.Call) else root.value
                own = isinstance(root, ast.Name) and root.id in ("self", "cls")
                if (isinstance(root, ast.Name) and root.id in outside) or (node.attr in KNOWN_PRIVATE and not own):
                    out.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id in ("getattr", "hasattr", "setattr") and len(node.args) >= 2
                  and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
                  and _private(node.args[1].value)
                  and not (isinstance(node.args[0], ast.Name) and node.args[0].id in ("self", "cls"))):
                out.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
    return out


def test_no_private_name_crosses_a_package():
    assert private_reads(ROOT / "src") == []


def test_the_private_name_check_finds_each_kind(tmp_path):
    pkg = tmp_path / "ambiguity"
    for rel, text in {
        "__init__.py": "",
        "a/__init__.py": "",
        "a/x.py": "def _helper():\n    pass\n",
        "a/y.py": "from ambiguity.a.x import _helper\n",  # same package: allowed
        "b/__init__.py": "",
        "b/z.py": "from ambiguity.a.x import _helper\n",  # across packages
        "b/w.py": ("from multiprocessing import forkserver\nimport opensmile\n"
                   "pid = getattr(forkserver._forkserver, '_forkserver_pid', None)\n"  # two reads
                   "opts = opensmile.Smile()._options\n"
                   "def f(pool):\n    return pool._processes\n"
                   "class C:\n    def g(self):\n        return self._stop, getattr(self, '_x', None)\n"),  # own: allowed
        "b/v.py": "from opensmile.core import _lib\n",
    }.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    found = sorted(private_reads(tmp_path))
    assert found == [
        "ambiguity/b/v.py:1: from opensmile.core import _lib",
        "ambiguity/b/w.py:3: forkserver._forkserver",
        "ambiguity/b/w.py:3: getattr(forkserver._forkserver, '_forkserver_pid', None)",
        "ambiguity/b/w.py:4: opensmile.Smile()._options",
        "ambiguity/b/w.py:6: pool._processes",
        "ambiguity/b/z.py:1: from ambiguity.a.x import _helper",
    ], found


# -- one definition ----------------------------------------------------------------------------------
def test_scheme_choices_and_default_pairs_are_defined_once():
    """``ambiguity.constants`` holds the schemes and the default quadrant pairs; no other module spells them."""
    spelled = re.compile(r"""\(\s*["'](auto|task)["'],\s*["']fixed["'],\s*["']crossfit["']|\(\s*["']fixed["'],\s*["']crossfit["']"""
                         r"""|\(\s*\(\s*["']red["'],\s*["']blue["']\s*\),\s*\(\s*["']green["'],\s*["']blue["']\s*\)""")
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in sorted((ROOT / "src").rglob("*.py")) if p.name != "constants.py"
            for i, line in enumerate(p.read_text().splitlines(), 1) if spelled.search(line)]
    assert hits == []
    assert spelled.search('SCHEMES = ("auto", "fixed", "crossfit")') and spelled.search('P = (("red", "blue"), ("green", "blue"))')


def test_every_environment_variable_is_listed_in_the_cli_reference():
    used = {m for p in (ROOT / "src").rglob("*.py") for m in re.findall(r"AMBIGUITY_[A-Z_]+", p.read_text())}
    listed = set(re.findall(r"`(AMBIGUITY_[A-Z_]+)", (ROOT / "docs" / "cli.md").read_text()))
    assert used and used <= listed, sorted(used - listed)


# -- tables --------------------------------------------------------------------------------------------
_STORE_METHODS = {"read", "has_table", "delete", "upsert", "append", "schema", "count", "compact", "drop", "version"}
#: A filter written by hand: "col IN (", "... AND col =", "col = '".
_SQL = re.compile(r"[a-z_]+ (NOT IN|IN) ?(\(|$)|(^| )(AND|OR) [a-z_]+ ?(=|!=|<|>|IN|NOT IN)|[a-z_]+ (=|!=) '")


def query_strings(src: Path, tables: set[str]) -> list[str]:
    """``file:line: what`` for each query string built or table named outside ``ambiguity/stores``: a call of
    quote/quote_list, a literal or formatted ``where=``/``filter=``, a string shaped like a filter, a table's
    name as the table argument of a store method, a table's name bound to an upper-case constant."""
    out = []
    for path in sorted((src / "ambiguity").rglob("*.py")):
        rel = path.relative_to(src)
        if rel.parts[1] == "stores":
            continue
        tree = ast.parse(path.read_text(), str(path))
        docs = {id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
                if name in ("quote", "quote_list"):
                    out.append(f"{rel}:{node.lineno}: {name}()")
                for kw in node.keywords:
                    literal = isinstance(kw.value, ast.JoinedStr | ast.BinOp) or (
                        isinstance(kw.value, ast.Constant) and kw.value.value is not None)
                    if kw.arg in ("where", "filter") and literal:
                        out.append(f"{rel}:{node.lineno}: {kw.arg}={ast.unparse(kw.value)[:40]}")
                if isinstance(f, ast.Attribute) and name in _STORE_METHODS and node.args:
                    first = node.args[0]
                    for e in first.elts if isinstance(first, ast.List | ast.Tuple) else [first]:
                        if isinstance(e, ast.Constant) and e.value in tables:
                            out.append(f"{rel}:{node.lineno}: table {e.value!r} named in {name}()")
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and node.value.value in tables \
                    and any(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets):
                out.append(f"{rel}:{node.lineno}: table {node.value.value!r} defined outside stores")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs and _SQL.search(node.value):
                out.append(f"{rel}:{node.lineno}: query string {node.value[:40]!r}")
    return sorted(out)


def _table_names() -> set[str]:
    from ambiguity.stores.tables import TABLES

    return set(TABLES)


#: Hits in files this change may not edit (the extraction work owns them): the segments table named in
#: ``store.has_table``/``store.count``. Listed so the test guards everything else; drop an entry once its line
#: reads ``SEGMENTS`` (``ambiguity.stores.tables``).


def test_no_query_string_or_table_name_outside_stores():
    found = query_strings(ROOT / "src", _table_names())
    assert found == []


def test_the_query_string_check_finds_each_kind(tmp_path):
    (tmp_path / "ambiguity" / "stores").mkdir(parents=True)
    (tmp_path / "ambiguity" / "stores" / "ok.py").write_text("W = f\"task = {quote(t)}\"\n")  # stores may
    (tmp_path / "ambiguity" / "x.py").write_text(
        '"""Docstring: model = \'a\' AND split IN (\'test\') is prose here."""\n'
        "ANN = 'annotations'\n"
        "def f(store, t, ids):\n"
        "    store.read('tasks', where=f\"task = '{t}'\")\n"
        "    store.delete(PREDICTIONS, 'model IN ' + quote_list(ids))\n"
        "    store.read(TASKS, where=where(task=t))\n"  # typed: allowed
        "    return store.compact(['annotations'])\n")
    found = query_strings(tmp_path, {"annotations", "tasks", "predictions"})
    assert found == [
        "ambiguity/x.py:2: table 'annotations' defined outside stores",
        "ambiguity/x.py:4: query string \"task = '\"",
        "ambiguity/x.py:4: table 'tasks' named in read()",
        "ambiguity/x.py:4: where=f\"task = '{t}'\"",
        "ambiguity/x.py:5: query string 'model IN '",
        "ambiguity/x.py:5: quote_list()",
        "ambiguity/x.py:7: table 'annotations' named in compact()",
    ], found


# -- errors speak of parameters ------------------------------------------------------------------------
#: A command-line flag: ``--folds``, ``--no-fusion`` (not ``--`` alone, not inside a word).
_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
#: A hint naming the command to run (```ambiguity train GROUPS --folds K```) may show its flags.
_COMMAND_HINT = re.compile(r"`[^`]*`")


def _message_text(node: ast.expr) -> str:
    """A string literal or f-string as text, each ``{...}`` as ``{}``."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else "{}"
    if isinstance(node, ast.JoinedStr):
        return "".join(_message_text(v) if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _message_text(node.left) + _message_text(node.right)
    return "{}"


def _builds_a_message(node: ast.AST) -> bool:
    """A raise, a call of an error's or a Failure's constructor, or ``problems.append(...)`` (a manifest's problems)."""
    if isinstance(node, ast.Raise):
        return node.exc is not None
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
    if name == "append":
        return isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "problems"
    return name.endswith("Error") or name in ("Failure", "_fail")


def flags_in_errors(src: Path) -> list[str]:
    """``file:line: flag`` for each command-line flag (outside a backquoted command hint) in the message of an error
    built outside ``ambiguity/cli``: a library error names the parameter (``param=``) and the CLI shows its flag."""
    out = set()
    for path in sorted((src / "ambiguity").rglob("*.py")):
        rel = path.relative_to(src)
        if rel.parts[1] == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not _builds_a_message(node):
                continue
            inner = {id(c) for n in ast.walk(node) if isinstance(n, ast.JoinedStr | ast.BinOp)
                     for c in ast.iter_child_nodes(n)}
            for n in ast.walk(node):
                if id(n) in inner or not isinstance(n, ast.Constant | ast.JoinedStr | ast.BinOp):
                    continue
                if isinstance(n, ast.Constant) and not isinstance(n.value, str):
                    continue
                for flag in _FLAG.findall(_COMMAND_HINT.sub("", _message_text(n))):
                    out.add(f"{rel}:{n.lineno}: {flag}")
    return sorted(out)


def test_library_errors_name_parameters_not_flags():
    found = flags_in_errors(ROOT / "src")
    assert found == [], found


def test_the_flag_check_finds_a_flag_in_each_kind_of_message(tmp_path):
    (tmp_path / "ambiguity" / "cli").mkdir(parents=True)
    (tmp_path / "ambiguity" / "cli" / "ok.py").write_text("raise ValueError('--folds 1: the CLI may')\n")
    (tmp_path / "ambiguity" / "x.py").write_text(
        "def f(k, p, problems):\n"
        "    if k:\n"
        "        raise ConfigError(f'--folds {k}: too few')\n"
        "    if p:\n"
        "        raise ManifestError(p, [f'{p}: ' + 'pass --no-fusion', 'x'])\n"
        "    if k == 2:\n"
        "        raise ConfigError('folds 2: run `ambiguity train G --folds K` first', param='folds')\n"  # a hint: allowed
        "    problems.append(f'column {p!r}: map it with --map')\n"
        "    err = ModelNotFoundError('point --model at a folder')\n"
        "    print('--verbose is not an error')\n"
        "    raise ValueError('a -- b, well-known')\n")  # not a flag
    found = flags_in_errors(tmp_path)
    assert found == ["ambiguity/x.py:3: --folds", "ambiguity/x.py:5: --no-fusion", "ambiguity/x.py:8: --map",
                     "ambiguity/x.py:9: --model"], found
