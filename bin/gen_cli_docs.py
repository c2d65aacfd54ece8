#!/usr/bin/env python
"""Write docs/cli.md from the CLI's own help texts (tests/test_docs.py checks it is current)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]


def commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out = []
    for name in sorted(group.commands):
        cmd = group.commands[name]
        out.append((f"{prefix}{name}", cmd))
        if isinstance(cmd, click.Group):
            out += commands(cmd, f"{prefix}{name} ")
    return out


def render() -> str:
    from ambiguity.cli import main

    lines = ["# Command reference", "", "Generated from the commands' help by `bin/gen_cli_docs.py`.", "",
             "Global option: `--store URI` (or `AMBIGUITY_STORE`); by default the store of the nearest",
             "`ambiguity.toml`. User mistakes print one line starting with `error:` and exit with code 2.", ""]
    root = click.Context(main, info_name="ambiguity", **main.context_settings)  # children inherit -h/--help
    for name, cmd in commands(main):
        ctx = click.Context(cmd, info_name=f"ambiguity {name}", parent=root)
        lines += [f"## ambiguity {name}", "", "```", cmd.get_help(ctx).replace("\x08", ""), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    target = ROOT / "docs" / "cli.md"
    target.write_text(render())
    print(f"wrote {target}")
    sys.exit(0)
