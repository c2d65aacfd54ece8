#!/usr/bin/env python
"""Write docs/cli.md from the CLI's own help texts (tests/test_docs.py checks it is current)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]


def commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    """Every command under ``group`` as ("sub command", cmd), depth first, sorted by name."""
    out = []
    for name in sorted(group.commands):
        cmd = group.commands[name]
        out.append((f"{prefix}{name}", cmd))
        if isinstance(cmd, click.Group):
            out += commands(cmd, f"{prefix}{name} ")
    return out


HEADER = """# Command reference

Generated from the commands' help by `bin/gen_cli_docs.py` (tests/test_docs.py checks it is current).

Global options: `--store URI` (or `AMBIGUITY_STORE`; by default the store of the nearest
`ambiguity.toml`) and `--traceback` (or `AMBIGUITY_DEBUG=1`). A user mistake prints one line
starting with `error:` and exits with code 2 (an option typo or a missing argument too, naming the
command's `--help`: tests/cli/test_conventions.py::test_a_usage_error_is_one_error_line); any other
error prints one line too (exit 1), and `--traceback` shows its full traceback for a bug report.
Every command a message suggests (`ambiguity attribute`, ...) exists with the options it names
(test_every_hint_in_the_code_names_a_real_command_and_options).

Conventions every command follows (`src/ambiguity/cli/options.py`; tests/cli/test_conventions.py):

- **Lists** are repeatable options with a singular name: `--split test --split val`. One value
  may also be a comma-separated list: `--split test,val`. KEY=VALUE options (`--param`,
  `--map`, `--name`, `--model`, `--weight`) are repeatable only, since a value may hold commas.
- **One name per thing**: `--split` (the splits read), `--bootstrap N` (bootstrap resamples),
  `--seed`, `--device auto|cpu|cuda`, `--threshold`, `--correction`, `--ci`, `--task`, `--quiet`.
- **Tables**: every command that prints a table takes `--format md|csv|json|latex` (default
  `md`); where a command prints several tables, CSV gives one block per table under a `# name`
  line and JSON one object `{name: rows}`. `--out` writes a command's output to a file (or,
  for commands that write several files, into a folder) instead of stdout.
- **Progress**: on a terminal, a progress bar; in a log (stderr not a TTY), a line per 10%.
- **Help**: every option has a help text.

Environment variables (the only ones the package reads):

- `AMBIGUITY_STORE`: the store, as `--store`.
- `AMBIGUITY_DEBUG=1`: full tracebacks, as `--traceback`.
- `AMBIGUITY_ALLOW_DOWNLOAD=1`: a model extractor may download a hub id into the Hugging Face cache
  (otherwise it loads only from a local folder or that cache; see docs/extractors-models.md).
- `AMBIGUITY_CACHE_DIR`: where small per-user caches live (default `$XDG_CACHE_HOME/ambiguity`,
  else `~/.cache/ambiguity`).
"""


def render() -> str:
    from ambiguity.cli import main

    lines = [HEADER]
    root = click.Context(main, info_name="ambiguity", **main.context_settings)  # children inherit -h/--help
    lines += ["## ambiguity", "", "```", main.get_help(root).replace("\x08", ""), "```", ""]
    for name, cmd in commands(main):
        # one context per level, so the usage line reads "ambiguity annotate export", as a user types it
        ctx = root
        group: click.Command = main
        for part in name.split():
            group = group.commands[part]  # type: ignore[attr-defined]
            ctx = click.Context(group, info_name=part, parent=ctx)
        lines += [f"## ambiguity {name}", "", "```", cmd.get_help(ctx).replace("\x08", ""), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    target = ROOT / "docs" / "cli.md"
    target.write_text(render())
    print(f"wrote {target}")
    sys.exit(0)
