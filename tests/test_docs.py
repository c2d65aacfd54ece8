"""Docs are tested: every command has help and is in docs/cli.md; the README gives the two commands."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from ambiguity.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _gen():
    spec = importlib.util.spec_from_file_location("gen_cli_docs", ROOT / "bin" / "gen_cli_docs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_command_has_help_and_is_documented():
    gen = _gen()
    doc = (ROOT / "docs" / "cli.md").read_text()
    for name, cmd in gen.commands(main):
        assert (cmd.help or cmd.short_help or "").strip(), f"`ambiguity {name}` has no help text"
        assert f"## ambiguity {name}\n" in doc, f"`ambiguity {name}` is missing from docs/cli.md (run bin/gen_cli_docs.py)"


def test_cli_doc_is_current():
    assert (ROOT / "docs" / "cli.md").read_text() == _gen().render(), "docs/cli.md is stale: run bin/gen_cli_docs.py"


def test_readme_gives_exactly_the_two_commands_and_ci_calls_one():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Two commands.*?```\n(.*?)```", readme, re.S).group(1)
    cmds = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert cmds == ["make demo", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_docs_links_resolve():
    for md in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#]+)\)", md.read_text()):
            if "://" in target:
                continue
            assert (md.parent / target).exists(), f"{md.name} links to missing {target}"
