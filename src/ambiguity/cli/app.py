"""The click group every command hangs on, and how user errors are shown."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import click

from ambiguity.errors import AmbiguityError


def debugging(ctx: click.Context | None = None) -> bool:
    """--traceback or AMBIGUITY_DEBUG=1: show full tracebacks instead of one-line errors."""
    root = ctx.find_root() if ctx is not None else None
    if root is not None and root.params.get("traceback"):
        return True
    return os.environ.get("AMBIGUITY_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


def as_flags(exc: AmbiguityError, command: click.Command | None = None) -> str:
    """The error's message with each parameter it names (``folds 1: ...``, ``...: pass unlabelled``) written as the
    command's flag for it (``--folds 1: ...``, ``...: pass --unlabelled``): the option whose destination is that
    name (``columns`` -> ``--map``), else the name with dashes. A name counts where a message, one of a manifest's
    problems or a clause (after ``; ``, ``, ``, ``(``, ``pass ``, ``with ``, ``use ``, ``drop ``, ``or ``) starts with it."""
    text = str(exc)
    names = (exc.param,) if isinstance(exc.param, str) else exc.param or ()
    opts = {p.name: max(p.opts, key=len) for p in (command.params if command else []) if isinstance(p, click.Option)}
    for name in names:
        flag = opts.get(name) or "--" + name.replace("_", "-")
        starts = rf"(^|: |\n  |; |, |\(|pass |with |use |drop |or ){re.escape(name)}(?=[ :=),]|$)"
        text = re.sub(starts, rf"\g<1>{flag}", text)
    return text


def _leaf(exc: BaseException) -> click.Command | None:
    """The command that raised ``exc``: the innermost click context on its traceback (click drops it on the way up)."""
    cmd, tb = None, exc.__traceback__
    while tb is not None:
        ctx = tb.tb_frame.f_locals.get("ctx")
        cmd = ctx.command if isinstance(ctx, click.Context) else cmd
        tb = tb.tb_next
    return cmd


class Group(click.Group):
    """Turns errors a user can fix into one readable line and a non-zero exit.

    With ``--traceback`` (or ``AMBIGUITY_DEBUG=1``) every error is re-raised with its full
    traceback instead, for bug reports. An error that is not the user's (a bug) is one line
    too, pointing at ``--traceback``, and exits with 1.
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """Click's main, but a usage error (an option typo, a missing argument) is one ``error:`` line."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else (prog_name or "ambiguity")
            msg = " ".join(exc.format_message().split())
            click.echo(f"error: {msg} (see `{where} --help`)", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)  # ctx.exit(3) comes back as the return value

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted: everything written so far is kept; rerun to resume", err=True)
            sys.exit(130)
        except Exception as exc:
            if debugging(ctx):
                raise
            if isinstance(exc, AmbiguityError):
                click.echo(f"error: {as_flags(exc, _leaf(exc))}", err=True)
                sys.exit(2)
            if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)) and exc.filename:
                click.echo(f"error: {exc.strerror}: {exc.filename}", err=True)
                sys.exit(2)
            click.echo(f"error: {type(exc).__name__}: {exc} (a bug? rerun with --traceback and report it)", err=True)
            sys.exit(1)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--store",
    "store_uri",
    envvar="AMBIGUITY_STORE",
    help="Store directory or URI (default: the store of the nearest ambiguity.toml).",
)
@click.option("--traceback", is_flag=True, envvar="AMBIGUITY_DEBUG",
              help="Show the full traceback of an error instead of one line, for bug reports (or set AMBIGUITY_DEBUG=1).")
@click.version_option(package_name="ambiguity", help="Show the version and exit.")
@click.pass_context
def main(ctx: click.Context, store_uri: str | None, traceback: bool) -> None:
    """Find the hard, ambiguous examples in a multimodal dataset."""
    ctx.obj = {"store_uri": store_uri, "traceback": traceback}


def project():
    from ambiguity.config import find_project

    return find_project()


def get_store(ctx: click.Context, create: bool = False):
    """The store named by --store / AMBIGUITY_STORE, else the nearest project's."""
    from ambiguity.errors import ConfigError
    from ambiguity.stores.lance import open_store

    uri = ctx.find_root().obj.get("store_uri")
    if not uri:
        proj = project()
        if proj is None:
            raise ConfigError(
                f"no ambiguity.toml in {Path.cwd()} or above: run `ambiguity init DIR` and cd there, "
                "or pass --store PATH"
            )
        uri = proj.store
    return open_store(uri, create=create or "://" in uri or os.path.isdir(uri))


def parse_params(pairs: tuple[str, ...], *, form: str = "KEY=VALUE", option: str = "--param") -> dict[str, str]:
    out = {}
    for p in pairs:
        if "=" not in p:
            raise click.BadParameter(f"{p!r}: use {form}", param_hint=option)
        k, v = p.split("=", 1)
        out[k.strip()] = v.strip()
    return out
