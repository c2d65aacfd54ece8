"""Docs are tested: every command has help and is in docs/cli.md; the README gives the two commands."""

from __future__ import annotations

import re

from ambiguity.cli import main
from repo_scripts import ROOT, load_script


def _gen():
    return load_script("bin/gen_cli_docs.py")


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


# -- claims name their tests ---------------------------------------------------------------

_DOCS = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "cli.md")]
_TEST_REF = re.compile(r"tests/[\w./-]+\.py(?:::[A-Za-z_]\w*)?")
_CLAIM = re.compile(r"\btested\b", re.I)
# "tested" in its statistical sense, not a claim about the test suite
_NOT_A_CLAIM = re.compile(r"features tested in one comparison|summarised and tested", re.I)
_NAMED_TEST = re.compile(r"tests/[\w./-]+\.py::[A-Za-z_]\w*")


def _paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs; each table row and list item on its own."""
    out: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        lines = block.splitlines()
        if lines and all(line.lstrip().startswith("|") for line in lines):
            out += lines
        else:
            out += [p for p in re.split(r"\n(?=\s*[*-] )", block)]
    return out


def test_every_named_test_exists():
    missing = []
    for md in _DOCS:
        for ref in _TEST_REF.findall(md.read_text()):
            path, _, name = ref.partition("::")
            if not (ROOT / path).exists():
                missing.append(f"{md.name}: {ref} (no such file)")
            elif name and not re.search(rf"^\s*(?:async )?def {name}\(|^class {name}\b", (ROOT / path).read_text(), re.M):
                missing.append(f"{md.name}: {ref} (no such test)")
    assert not missing, "\n".join(missing)


def test_every_tested_claim_names_its_test():
    vague = []
    for md in _DOCS:
        for para in _paragraphs(md.read_text()):
            if para.lstrip().startswith("#"):
                continue
            if _CLAIM.search(_NOT_A_CLAIM.sub("", para)) and not _NAMED_TEST.search(para):
                vague.append(f"{md.name}: {' '.join(para.split())[:160]}")
    assert not vague, "'tested' without the test named (write tests/path.py::test_name):\n" + "\n".join(vague)


# -- demo figures cannot go stale (bin/check_demo_numbers.py; CI runs it after `make demo`) --------------------
def _checker():
    return load_script("bin/check_demo_numbers.py")


def test_demo_number_check_knows_every_quoted_figure_and_refuses_the_others():
    chk = _checker()
    summary = {"settings": {"folds": "5"}, "figures": {"x": "30 of 50 (0.60, 95% Wilson interval [0.46, 0.72])",
                                                       "p": "p = 1.5e-07"}}
    ok = "text <!-- demo:begin -->on the last run, 30 of 50 (0.60 [0.46, 0.72]), 5 folds, p = 1.5e-07<!-- demo:end --> 2026"
    assert chk.problems(ok, summary) == []
    stale = "<!-- demo:begin -->on the last run 31 of 50 (0.62)<!-- demo:end -->"
    bad = chk.problems(stale, summary)
    assert any("'31'" in p for p in bad) and any("'0.62'" in p for p in bad)
    # a demo figure written outside a region is refused, and so is an unclosed region
    assert any("outside" in p for p in chk.problems("On the last run 30 of 50 landed in red.", summary))
    assert any("without" in p for p in chk.problems("<!-- demo:begin --> 30", summary))


def test_docs_quote_only_figures_the_demo_wrote():
    # demo-out/summary.json when `make demo` has run here (CI runs the script on it after the demo); else the
    # copy the docs were written from (docs/demo-summary.json, written by the demo and committed with the docs)
    chk = _checker()
    fresh = ROOT / "demo-out" / "summary.json"
    path = fresh if fresh.exists() else ROOT / "docs" / "demo-summary.json"
    assert chk.check(path) == []
