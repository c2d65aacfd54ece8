#!/usr/bin/env python
"""A scripted mutation run: does the suite notice when the code is wrong?

Each mutant changes ONE operator, comparison, boolean or constant in a module
(``a < b`` -> ``a <= b``, ``+`` -> ``-``, ``and`` -> ``or``, ``not x`` -> ``x``,
``0`` -> ``1``, ``True`` -> ``False``, ...). The mutant is written into a scratch
copy of ``src/`` (the checkout is never modified), and the module's tests run
against it with ``-x`` and a timeout. A mutant is *killed* when the tests fail
or time out, *survived* when they pass.

The mutant set is bounded for a 2-core machine: every mutant of a module up to
``--cap`` per module, a seeded sample above that. Docstrings, strings, type
annotations and ``TYPE_CHECKING`` blocks are not mutated.

Usage:  nice .venv/bin/python bin/mutate.py [--cap 40] [--seed 0] [--only stats/agreement.py] [--out mutate-out]
Writes ``<out>/report.md`` (kill rate per module, the surviving mutants) and ``<out>/mutants.json``.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "ambiguity"

# module (relative to src/ambiguity) -> the tests that exercise it. Globs for stats/ so that a
# module moved by a refactor is still found; a module without tests listed runs tests/stats.
TESTS: dict[str, list[str]] = {
    "stats/multitest.py": ["tests/stats/test_multitest.py", "tests/stats/test_anchors.py", "tests/stats/test_defaults.py"],
    "stats/interrater.py": ["tests/stats/test_anchors.py", "tests/stats/test_intervals.py", "tests/stats/test_interrater.py"],
    "stats/effsize.py": ["tests/stats/test_effsize.py", "tests/stats/test_anchors.py", "tests/stats/test_comparisons.py"],
    "stats/comparisons.py": ["tests/stats/test_comparisons.py", "tests/stats/test_anchors.py"],
    "stats/boundary_tests.py": ["tests/stats/test_boundary_tests.py"],
    "stats/quadrant_tables.py": ["tests/stats/test_quadrant_tables.py", "tests/stats/test_stability.py"],
    "stats/stability.py": ["tests/stats/test_stability.py"],
    "stats/assign.py": ["tests/stats/test_quadrant_tables.py"],
    "stats/results.py": ["tests/stats/test_comparisons.py", "tests/stats/test_boundary_tests.py"],
    "stats/calibration.py": ["tests/stats/test_calibration.py"],
    "stats/conflicts.py": ["tests/stats/test_conflicts.py", "tests/stats/test_defaults.py"],
    "stats/attribution_by_quadrant.py": ["tests/stats/test_attribution_by_quadrant.py", "tests/stats/test_defaults.py"],
    "stores/lance.py": ["tests/stores/test_lance.py", "tests/stores/test_lance_roundtrip.py"],
    "stores/schema.py": ["tests/stores/test_lance.py", "tests/stores/test_lance_roundtrip.py"],
    "stores/sql.py": ["tests/stores/test_sql.py", "tests/stores/test_lance.py"],
    "extractors/runner.py": ["tests/extractors/test_runner.py"],
    "segments.py": ["tests/test_segments.py", "tests/stats/test_defaults.py"],
}
DEFAULT_MODULES = ["stats/*.py", "stores/*.py", "extractors/runner.py", "segments.py"]

SWAP_BIN = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
            ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult, ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd}
SWAP_CMP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
            ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}


@dataclass
class Mutant:
    module: str
    index: int  # position among the module's mutation sites
    line: int
    what: str
    status: str = ""  # killed | survived | timeout | error
    seconds: float = 0.0


def _skip_nodes(tree: ast.AST) -> set[int]:
    """ids of nodes not to mutate: docstrings, annotations, TYPE_CHECKING blocks, __all__."""
    skip: set[int] = set()

    def mark(node):
        for n in ast.walk(node):
            skip.add(id(n))

    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                mark(body[0])
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for a in node.args.args + node.args.kwonlyargs + node.args.posonlyargs + [node.args.vararg, node.args.kwarg]:
                if a is not None and a.annotation is not None:
                    mark(a.annotation)
            if node.returns is not None:
                mark(node.returns)
        if isinstance(node, ast.AnnAssign):
            mark(node.annotation)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            mark(node)
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            mark(node)
    return skip


def _sites(tree: ast.AST) -> list[tuple[ast.AST, str, int]]:
    """(node, description, choice) for every mutation this module admits, in a stable order."""
    skip = _skip_nodes(tree)
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.BinOp) and type(node.op) in SWAP_BIN:
            out.append((node, f"{type(node.op).__name__} -> {SWAP_BIN[type(node.op)].__name__}", 0))
        elif isinstance(node, ast.AugAssign) and type(node.op) in SWAP_BIN:
            out.append((node, f"{type(node.op).__name__}= -> {SWAP_BIN[type(node.op)].__name__}=", 0))
        elif isinstance(node, ast.Compare):
            for k, op in enumerate(node.ops):
                if type(op) in SWAP_CMP:
                    out.append((node, f"{type(op).__name__} -> {SWAP_CMP[type(op)].__name__}", k))
        elif isinstance(node, ast.BoolOp):
            out.append((node, "And -> Or" if isinstance(node.op, ast.And) else "Or -> And", 0))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
            out.append((node, "drop not" if isinstance(node.op, ast.Not) else "drop unary minus", 0))
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float, bool):
            v = node.value
            if isinstance(v, bool):
                out.append((node, f"{v} -> {not v}", 0))
            elif isinstance(v, int):
                out.append((node, f"{v} -> {v + 1}", 0))
            else:
                out.append((node, f"{v!r} -> {(v * 2 if v else 1.0)!r}", 0))
    return out


class _Apply(ast.NodeTransformer):
    def __init__(self, target_index: int):
        self.target = target_index

    def run(self, tree):
        sites = _sites(tree)
        node, _, choice = sites[self.target]
        self._mutate(node, choice)
        return tree

    def _mutate(self, node, choice):
        if isinstance(node, (ast.BinOp, ast.AugAssign)):
            node.op = SWAP_BIN[type(node.op)]()
        elif isinstance(node, ast.Compare):
            node.ops[choice] = SWAP_CMP[type(node.ops[choice])]()
        elif isinstance(node, ast.BoolOp):
            node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        elif isinstance(node, ast.UnaryOp):
            # `-x` -> `+x`; `not x` -> `+bool(x)` (x's truth value): the tree keeps its shape
            if isinstance(node.op, ast.Not):
                node.operand = ast.Call(func=ast.Name("bool", ast.Load()), args=[node.operand], keywords=[])
            node.op = ast.UAdd()
        elif isinstance(node, ast.Constant):
            v = node.value
            node.value = (not v) if isinstance(v, bool) else (v + 1 if isinstance(v, int) else (v * 2 if v else 1.0))


def mutant_source(source: str, index: int) -> str:
    tree = ast.parse(source)
    _Apply(index).run(tree)
    return ast.unparse(ast.fix_missing_locations(tree))


def _run_tests(work: Path, tests: list[str], timeout: float, show: bool = False) -> tuple[str, float]:
    env = dict(os.environ, PYTHONPATH=str(work / "src"), PYTHONDONTWRITEBYTECODE="1", HYPOTHESIS_PROFILE="ci")
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "--timeout", str(int(timeout)),
           *[str(work / t) for t in tests]]
    t0 = time.monotonic()
    sink = None if show else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=sink, stderr=sink, start_new_session=True)
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return "timeout", time.monotonic() - t0
    except BaseException:  # stopped (SIGTERM, Ctrl-C): take the test run down too
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    dt = time.monotonic() - t0
    if rc == 0:
        return "survived", dt
    if rc in (1,):
        return "killed", dt
    return "error", dt  # collection error, interrupted: the mutant broke import -- counts as killed


def _modules(patterns: list[str]) -> list[str]:
    out = []
    for pat in patterns:
        for p in sorted(SRC.glob(pat)):
            rel = p.relative_to(SRC).as_posix()
            if p.name != "__init__.py" and rel not in out:
                out.append(rel)
    return out


def _tests_for(module: str) -> list[str]:
    tests = TESTS.get(module) or (["tests/stats"] if module.startswith("stats/") else ["tests/" + module.split("/")[0]])
    return [t for t in tests if (ROOT / t.split("::")[0]).exists()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="modules relative to src/ambiguity (globs allowed)")
    ap.add_argument("--cap", type=int, default=8, help="mutants per module; a seeded sample above it")
    ap.add_argument("--cap-stats", type=int, default=12, help="mutants per stats/ module")
    ap.add_argument("--timeout", type=float, help="seconds per mutant (default: 3x the module's baseline run + 30)")
    ap.add_argument("--rerun", help="a mutants.json: run again only its survivors (after adding tests)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="mutate-out")
    ap.add_argument("--list", action="store_true", help="list the sampled mutants and exit")
    ap.add_argument("--report-only", nargs="*", metavar="JSON",
                    help="write <out>/report.md from mutants.json files (default <out>/mutants.json; a partial run too)")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `kill PID`: clean up the scratch copy

    out = ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.report_only is not None:
        files = args.report_only or [out / "mutants.json"]
        done = [Mutant(**m) for f in files for m in json.loads(Path(f).read_text()) if m["status"]]
        _report(done, out / "report.md")
        print((out / "report.md").read_text())
        return 0
    modules = _modules(args.only or DEFAULT_MODULES)
    rng = random.Random(args.seed)
    plan: list[Mutant] = []
    texts = {mod: (SRC / mod).read_text() for mod in modules}  # planned and mutated from this one snapshot
    for mod in modules:
        sites = _sites(ast.parse(texts[mod]))
        cap = args.cap_stats if mod.startswith("stats/") else args.cap
        chosen = sorted(rng.sample(range(len(sites)), cap)) if len(sites) > cap else list(range(len(sites)))
        plan += [Mutant(mod, i, getattr(sites[i][0], "lineno", 0), sites[i][1]) for i in chosen]
        print(f"{mod}: {len(sites)} sites, {len(chosen)} mutants", flush=True)
    # round robin over modules: a run stopped early still covers every module evenly
    queues = [[m for m in plan if m.module == mod] for mod in modules]
    plan = [q[k] for k in range(max(map(len, queues), default=0)) for q in queues if k < len(q)]
    if args.rerun:
        old = [Mutant(**m) for m in json.loads(Path(args.rerun).read_text())]
        redo = {(m.module, m.index) for m in old if m.status == "survived"}
        for m in old:
            m.status = m.status if (m.module, m.index) not in redo else ""
        plan = old
        for mod in {m.module for m in plan}:
            texts.setdefault(mod, (SRC / mod).read_text())
        for m in plan:  # the module may have changed since: the site must still say the same
            sites = _sites(ast.parse(texts[m.module]))
            if not m.status and (m.index >= len(sites) or sites[m.index][1] != m.what):
                print(f"warning: {m.module} site {m.index} changed; skipped", file=sys.stderr)
                m.status = "stale"
    if args.list:
        for m in plan:
            print(f"{m.module}:{m.line} {m.what}")
        return 0

    with tempfile.TemporaryDirectory(prefix="ambiguity-mutate-") as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "src", work / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        for mod, text in texts.items():  # the snapshot the plan was made from
            (work / "src" / "ambiguity" / mod).write_text(text)
        shutil.copytree(ROOT / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__"))
        for name in ("examples", "pyproject.toml", "bin", "docs", "README.md"):
            if (ROOT / name).exists():
                os.symlink(ROOT / name, work / name)
        baseline: dict[str, float] = {}
        for mod in ([] if args.timeout else dict.fromkeys(m.module for m in plan if not m.status)):
            status, dt = _run_tests(work, _tests_for(mod), timeout=900, show=True)
            if status != "survived":  # a kill would mean nothing: leave the module out, and say so
                print(f"warning: the tests of {mod} fail without a mutant ({status}); its mutants are not run",
                      file=sys.stderr)
                for m in plan:
                    if m.module == mod:
                        m.status = "stale"
                continue
            baseline[mod] = dt
            print(f"baseline {mod}: {dt:.1f} s", flush=True)
        for k, m in enumerate(plan):
            if m.status:  # kept from --rerun, or a module left out
                continue
            target = work / "src" / "ambiguity" / m.module
            original = target.read_text()
            try:
                target.write_text(mutant_source(original, m.index))  # from the copy: the checkout may move on
                m.status, m.seconds = _run_tests(work, _tests_for(m.module), timeout=args.timeout or 3 * baseline[m.module] + 30)
            finally:
                target.write_text(original)
            print(f"[{k + 1}/{len(plan)}] {m.module}:{m.line} {m.what}: {m.status} ({m.seconds:.1f} s)", flush=True)
            (out / "mutants.json").write_text(json.dumps([asdict(x) for x in plan[: k + 1]], indent=1))
    _report(plan, out / "report.md")
    print((out / "report.md").read_text())
    return 0


def _report(plan: list[Mutant], path: Path) -> None:
    lines = ["# Mutation run", "", "| module | mutants | killed | kill rate |", "|---|---|---|---|"]
    by: dict[str, list[Mutant]] = {}
    plan = [m for m in plan if m.status != "stale"]
    for m in plan:
        by.setdefault(m.module, []).append(m)
    tot_k = tot = 0
    for mod, ms in sorted(by.items()):
        k = sum(m.status != "survived" for m in ms)
        tot_k, tot = tot_k + k, tot + len(ms)
        lines.append(f"| {mod} | {len(ms)} | {k} | {100 * k / len(ms):.0f}% |")
    stats = [m for m in plan if m.module.startswith("stats/")]
    if stats:
        k = sum(m.status != "survived" for m in stats)
        lines.append(f"| **stats/ (all)** | {len(stats)} | {k} | {100 * k / len(stats):.0f}% |")
    lines.append(f"| **all** | {tot} | {tot_k} | {100 * tot_k / max(tot, 1):.0f}% |")
    lines += ["", "## Surviving mutants", ""]
    lines += [f"- `{m.module}:{m.line}` {m.what} (site {m.index})" for m in plan if m.status == "survived"] or ["none"]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
