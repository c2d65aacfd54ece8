"""CLI conventions (docs/cli.md's header): help on every option, one name per thing, --format on
tables, --traceback, usage lines of the generated docs, progress in logs."""

from __future__ import annotations

import io
import json
import re

import click
import polars as pl
import pytest
from click.testing import CliRunner

from ambiguity.cli import main
from ambiguity.cli.options import FORMATS, emit, render, render_many, split_commas
from ambiguity.progress import LineProgress, progress_bar
from repo_scripts import load_script


def walk(cmd: click.Command, path: tuple[str, ...] = ("ambiguity",)):
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from walk(sub, (*path, name))


def options():
    for path, cmd in walk(main):
        for p in cmd.params:
            if isinstance(p, click.Option) and not p.hidden:
                yield " ".join(path), p


def test_every_option_has_help():
    missing = [f"{path} {'/'.join(p.opts)}" for path, p in options() if not (p.help or "").strip()]
    assert missing == [], f"options without help: {missing}"


# Names that once had two spellings; the left one is the only one now.
RETIRED = {"--splits": "--split", "--n-boot": "--bootstrap", "--neighbour-splits": "--neighbour-split",
           "--modalities": "--modality", "--annotators": "--annotator", "--choices": "--choice",
           "--pairs": "--swap-pairs"}


def test_one_name_per_thing():
    names = {opt for _, p in options() for opt in p.opts}
    assert not names & set(RETIRED), f"retired option names still in use: {sorted(names & set(RETIRED))}"
    # the shared names mean the same thing everywhere: same destination and, for lists, repeatable
    for path, p in options():
        if path == "ambiguity ingest" and "--split" in p.opts:
            continue  # ingest --split gives one file its one split: a single value
        if "--split" in p.opts or "--bootstrap" in p.opts:
            assert p.name in ("splits", "n_boot"), f"{path} {p.opts}: dest {p.name}"
        if "--split" in p.opts or "--neighbour-split" in p.opts:
            assert p.multiple, f"{path} --split is not repeatable"
        if "--format" in p.opts:
            assert tuple(p.type.choices) == FORMATS and p.default == "md", f"{path} --format: {p.type.choices}"
        if "--seed" in p.opts:
            assert isinstance(p.type, click.IntRange) and p.type.min == 0, f"{path} --seed takes {p.type}"
        if "--model" in p.opts:  # the fusion model is --fusion everywhere; --model names an extractor's model
            assert "fusion" not in (p.help or "").lower().split(" (")[0], f"{path} --model means the fusion model: use --fusion"
        if "--device" in p.opts:
            assert tuple(p.type.choices) == ("auto", "cpu", "cuda"), path


def test_every_list_option_takes_commas():
    """A repeatable option is a list_option (repeats and commas), unless its values are KEY=VALUE."""
    for path, p in options():
        if p.multiple and "=" not in (p.metavar or ""):
            assert p.callback is not None and p.callback.__qualname__.startswith("list_option"), (
                f"{path} {p.opts}: use ambiguity.cli.options.list_option")


TABULAR = ["agreement", "annotate progress", "attribute", "boundary", "compare", "predictions list", "quadrants",
           "rank", "reliance", "select", "status"]


@pytest.mark.parametrize("command", TABULAR)
def test_tabular_commands_take_format(command):
    cmd = main
    for part in command.split():
        cmd = cmd.commands[part]
    fmt = [p for p in cmd.params if "--format" in getattr(p, "opts", [])]
    assert fmt, f"`ambiguity {command}` has no --format"
    assert tuple(fmt[0].type.choices) == FORMATS


def test_list_options_take_repeats_and_commas():
    assert split_commas(("test,val", " train ", "val", "")) == ("test", "val", "train")

    from ambiguity.cli.options import list_option

    @click.command()
    @list_option("--split", "splits", help="A split.", default=("test",))
    @list_option("--modality", "mods", help="A modality.", choices=("text", "audio"))
    def cmd(splits, mods):
        click.echo(json.dumps([splits, mods]))

    r = CliRunner().invoke(cmd, ["--split", "a,b", "--split", "c", "--modality", "text"])
    assert r.exit_code == 0 and json.loads(r.output) == [["a", "b", "c"], ["text"]]
    r = CliRunner().invoke(cmd, [])
    assert json.loads(r.output) == [["test"], []]
    r = CliRunner().invoke(cmd, ["--modality", "text,video"])
    assert r.exit_code == 2 and "'video' is not one of text, audio" in r.output


def test_render_formats_round_trip():
    df = pl.DataFrame({"model": ["a", "b"], "acc": [0.5, 0.25]})
    assert render(df, "md").splitlines()[:2] == ["| model | acc |", "|---|---|"]
    assert pl.read_csv(io.StringIO(render(df, "csv"))).equals(df)
    assert json.loads(render(df, "json")) == [{"model": "a", "acc": 0.5}, {"model": "b", "acc": 0.25}]
    tex = render(df, "latex", caption="Accuracy", label="tab:x")
    assert r"\begin{tabular}{lr}" in tex and r"\label{tab:x}" in tex
    many = render_many({"one": df, "two": df.head(1)}, "json")
    assert json.loads(many) == {"one": json.loads(render(df, "json")), "two": [{"model": "a", "acc": 0.5}]}
    blocks = render_many({"one": df, "two": df}, "csv").split("# ")[1:]
    assert [b.splitlines()[0] for b in blocks] == ["one", "two"]


def test_emit_writes_file(tmp_path, capsys):
    emit("x\n", tmp_path / "t.md")
    assert (tmp_path / "t.md").read_text() == "x\n" and "wrote" in capsys.readouterr().out


# -- --traceback ---------------------------------------------------------------------------------


def test_user_error_is_one_line_and_traceback_shows_it(tmp_path, monkeypatch):
    monkeypatch.delenv("AMBIGUITY_DEBUG", raising=False)
    store = str(tmp_path / "s")
    r = CliRunner().invoke(main, ["--store", store, "ingest", str(tmp_path / "missing.csv")])
    assert r.exit_code == 2 and r.output.strip().count("\n") == 0 and r.output.startswith("error:"), r.output
    r = CliRunner().invoke(main, ["--store", store, "--traceback", "ingest", str(tmp_path / "missing.csv")])
    assert r.exit_code != 0 and r.exception is not None and not isinstance(r.exception, SystemExit)
    monkeypatch.setenv("AMBIGUITY_DEBUG", "1")
    r = CliRunner().invoke(main, ["--store", store, "ingest", str(tmp_path / "missing.csv")])
    assert r.exception is not None and not isinstance(r.exception, SystemExit)


def test_unexpected_error_is_one_line_pointing_at_traceback(tmp_path, monkeypatch):
    import ambiguity.config

    def broken(directory):  # a bug somewhere below the CLI
        raise RuntimeError("boom")

    monkeypatch.delenv("AMBIGUITY_DEBUG", raising=False)
    monkeypatch.setattr(ambiguity.config, "init_project", broken)
    r = CliRunner().invoke(main, ["init", str(tmp_path / "p")])
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert r.exit_code == 1 and lines == ["error: RuntimeError: boom (a bug? rerun with --traceback and report it)"], r.output
    r = CliRunner().invoke(main, ["--traceback", "init", str(tmp_path / "p")])
    assert isinstance(r.exception, RuntimeError)


def test_traceback_flag_in_a_real_process(tmp_path):
    import subprocess
    import sys

    args = [sys.executable, "-m", "ambiguity.cli", "--store", str(tmp_path / "s"), "ingest", str(tmp_path / "nope.csv")]
    plain = subprocess.run(args, capture_output=True, text=True)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr and plain.stderr.startswith("error:")
    full = subprocess.run(args[:3] + ["--traceback"] + args[3:], capture_output=True, text=True)
    assert full.returncode != 0 and "Traceback (most recent call last)" in full.stderr


# -- generated docs ------------------------------------------------------------------------------


def _gen():
    return load_script("bin/gen_cli_docs.py")


def test_cli_doc_usage_lines_name_the_command_once():
    text = _gen().render()
    usage = re.findall(r"^Usage: (.*)$", text, re.M)
    sections = re.findall(r"^## (ambiguity.*)$", text, re.M)
    assert len(usage) == len(sections) == len(list(walk(main)))
    for section, line in zip(sections, usage, strict=True):
        assert line.startswith(section + " [OPTIONS]"), f"{section}: usage reads {line!r}"
    assert "ambiguity ambiguity" not in text


def test_cli_doc_header_states_the_conventions():
    text = _gen().render()
    for needle in ("--split test,val", "--format md|csv|json|latex", "--traceback", "AMBIGUITY_DEBUG", "--bootstrap"):
        assert needle in text


# -- progress ------------------------------------------------------------------------------------


def test_progress_in_a_log_is_a_line_per_tenth():
    buf = io.StringIO()  # not a TTY
    bar = progress_bar(1000, "prosody", unit="seg", file=buf)
    assert isinstance(bar, LineProgress)
    for _ in range(1000):
        bar.update(1)
        bar.set_postfix(ok=1, refresh=False)
    bar.close()
    lines = buf.getvalue().splitlines()
    assert len(lines) == 10, lines
    assert [int(re.search(r"(\d+)%", x).group(1)) for x in lines] == list(range(10, 101, 10))
    assert lines[-1].startswith("prosody: 100% (1000/1000 seg") and "ok 1" in lines[-1]


def test_progress_big_steps_and_early_stop():
    buf = io.StringIO()
    bar = LineProgress(10, "g", file=buf)
    bar.update(7)  # one jump over several tenths: one line
    bar.close()  # stopped early: says where
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2 and "70%" in lines[0] and "(7/10" in lines[1]
    assert progress_bar(5, enabled=False) is None


def test_progress_on_a_tty_is_tqdm():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    from tqdm import tqdm

    bar = progress_bar(3, "g", file=Tty())
    assert isinstance(bar, tqdm)
    bar.close()


def test_extract_progress_in_a_log(tmp_path, speech_dir):
    """`ambiguity extract` with stderr to a pipe (as in CI or `2> log`): a line per 10%, no redraws."""
    import subprocess
    import sys

    man = tmp_path / "m.csv"
    man.write_text("segment_id,media\n" + "".join(f"c{i},{speech_dir / f'{i:02d}.wav'}\n" for i in range(5)))
    base = [sys.executable, "-m", "ambiguity.cli", "--store", str(tmp_path / "s")]
    assert subprocess.run([*base, "ingest", str(man)], capture_output=True).returncode == 0
    r = subprocess.run([*base, "extract", "--extractor", "prosody", "--workers", "1", "--batch-size", "1"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr
    lines = [x for x in r.stderr.splitlines() if x.startswith("prosody:")]
    assert [re.match(r"prosody: +(\d+)% \((\d)/5 seg", x).groups() for x in lines] == [
        (str(20 * k), str(k)) for k in range(1, 6)], r.stderr


# -- hints name what exists; typos are one line (issue 24) ------------------------------------------
def _strings(tree):
    """Every string literal of a module; an f-string with each {...} replaced by X (a formatted hint)."""
    import ast

    parts = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in parts:
            yield node.lineno, node.value
        elif isinstance(node, ast.JoinedStr):
            yield node.lineno, "".join(v.value if isinstance(v, ast.Constant) else "X" for v in node.values)


def _hints():
    import ast
    from pathlib import Path

    import ambiguity

    root = Path(ambiguity.__file__).parent
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for line, text in _strings(tree):
            for hint in re.findall(r"`(ambiguity [^`]+)`", text):
                yield f"{path.relative_to(root)}:{line}", hint, text


def _check_hint(hint: str) -> str | None:
    """None if ``hint`` parses against the CLI: its command path exists and every --option is one of that
    command's (or the root's) options; else what is wrong. Placeholders (GROUPS, X, ...) are arguments."""
    words = hint.split()[1:]
    cmd: click.Command = main
    path = ["ambiguity"]
    opts = {o for p in main.params for o in (*p.opts, *p.secondary_opts)}
    i = 0
    while i < len(words) and isinstance(cmd, click.Group):
        w = words[i]
        if w.startswith("-"):
            break
        if w not in cmd.commands:
            if w in ("...", "X") or w.isupper():
                break
            return f"no command {' '.join([*path, w])!r}"
        cmd = cmd.commands[w]
        path.append(w)
        i += 1
    opts |= {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
    for w in words[i:]:
        name = w.split("=")[0]
        if name.startswith("--") and name not in opts:
            return f"{' '.join(path)} has no option {name}"
    return None


def test_every_hint_in_the_code_names_a_real_command_and_options():
    hints = list(_hints())
    assert len(hints) > 30  # the scan finds the hints (literal and formatted)
    assert any("X" in h for _, h, _ in hints)
    bad = [f"{where}: `{hint}`: {why}" for where, hint, _ in hints if (why := _check_hint(hint))]
    assert bad == [], "\n".join(bad)


def test_the_hint_checker_catches_wrong_hints():
    assert _check_hint("ambiguity attribute --model fusion") == "ambiguity attribute has no option --model"
    assert _check_hint("ambiguity attrib") == "no command 'ambiguity attrib'"
    assert _check_hint("ambiguity crossfit") == "no command 'ambiguity crossfit'"
    assert _check_hint("ambiguity train GROUPS --folds K --group-by X") is None
    assert _check_hint("ambiguity annotations import FILE --layout counts|long") is None


def test_every_option_named_in_a_message_exists_somewhere():
    """A bare --option in a message (no command named) is an option of some command."""
    import ast
    from pathlib import Path

    import ambiguity

    known = {o for _, cmd in walk(main) for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
    root = Path(ambiguity.__file__).parent
    bad = []
    for path in sorted(root.rglob("*.py")):
        if path.parts[-2] == "cli":
            continue  # option declarations themselves
        for line, text in _strings(ast.parse(path.read_text(), str(path))):
            # `...` spans are commands: ambiguity's are checked above, another tool's (`hf download`) are its own
            bare = re.sub(r"`[^`]*`", "", text)
            for name in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]+)", bare):
                if name not in known:
                    bad.append(f"{path.relative_to(root)}:{line}: {name}")
    assert bad == [], "\n".join(bad)


@pytest.mark.parametrize("argv, where", [
    (["quadrants", "--unimodl", "x"], "ambiguity quadrants"),
    (["--stor", "x", "status"], "ambiguity"),
    (["statsu"], "ambiguity"),
    (["ingest"], "ambiguity ingest"),
])
def test_a_usage_error_is_one_error_line(argv, where, tmp_path):
    r = CliRunner().invoke(main, argv, prog_name="ambiguity")
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and f"`{where} --help`" in lines[0], r.output
