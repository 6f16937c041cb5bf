"""The ``gantk`` command: the Typer application and its entry point.

The root app holds the global options (``--version``, ``--debug``); the core commands (train, sample,
export, info, list, plugins, presets) live in their own modules and are added here. Every other
command comes through the ``register_commands`` hook: gantk's own tools (eval, report,
interpolate: ``gantk.plugins.tools``) exactly as a third-party package's.
"""

from __future__ import annotations

import os
import sys
from typing import Optional

import typer

import gantk
from gantk.cli import listing, models, train
from gantk.cli.errors import DEBUG_ENV, GantkGroup
from gantk.errors import GantkError
from gantk.registry import Registry, get_registry


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"gantk {gantk.__version__}")
        raise typer.Exit()


def _root(
    ctx: typer.Context,
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version_callback, is_eager=True, help="Print gantk's version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks instead of one-paragraph errors."),
) -> None:
    """gantk: a GAN toolkit for PyTorch. Every architecture, loss, data set and metric is a plugin."""
    ctx.obj = {"debug": debug}


def build_app(registry: Registry | None = None) -> typer.Typer:
    """The CLI with the built-in commands and every plugin's ``register_commands``."""
    app = typer.Typer(
        cls=GantkGroup,
        no_args_is_help=True,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_root)
    listing.add_commands(app)
    train.add_commands(app)
    models.add_commands(app)
    registry = registry or get_registry()
    registry.call_hook("register_commands", lambda source: {"app": app})
    return app


def main() -> None:
    """Console-script entry point."""
    try:
        app = build_app()
    except GantkError as error:  # e.g. a broken plugin under GANTK_STRICT_PLUGINS=1
        if os.environ.get(DEBUG_ENV, "") not in ("", "0") or "--debug" in sys.argv:
            raise
        print(f"Error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
    app(prog_name="gantk")


if __name__ == "__main__":  # pragma: no cover
    main()
