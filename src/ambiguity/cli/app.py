"""The click group every command hangs on, and how user errors are shown."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ambiguity.errors import AmbiguityError


class Group(click.Group):
    """Turns errors a user can fix into one readable line and a non-zero exit."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except AmbiguityError as exc:
            msg = str(exc)
            click.echo(f"error: {msg}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted: everything written so far is kept; rerun to resume", err=True)
            sys.exit(130)
        except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
            click.echo(f"error: {exc.strerror}: {exc.filename}", err=True)
            sys.exit(2)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--store",
    "store_uri",
    envvar="AMBIGUITY_STORE",
    help="Store directory or URI (default: the store of the nearest ambiguity.toml).",
)
@click.version_option(package_name="ambiguity")
@click.pass_context
def main(ctx: click.Context, store_uri: str | None) -> None:
    """Find the hard, ambiguous examples in a multimodal dataset."""
    ctx.obj = {"store_uri": store_uri}


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
