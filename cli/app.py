"""The ``gantk`` command: the Typer application and its entry point.

The root app holds the global options (``--version``, ``--debug``); the core commands (train, sample,
export, info, list, plugins, presets) live in their own modules and are added here. Every other
command comes through the ``register_commands`` hook: gantk's own tools (eval, report,
interpolate: ``gantk.plugins.tools``) exactly as a third-party package's. A plugin command named like
one of those or like an earlier plugin's is renamed ``<package>:<name>`` with a warning.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Optional, Union

import typer
from typer.models import CommandInfo, TyperInfo

import gantk
from gantk.cli import listing, models, train
from gantk.cli.errors import DEBUG_ENV, DEBUG_FLAG, GantkGroup, hoist_debug_flag
from gantk.errors import GantkError
from gantk.registry import BUILTIN_PACKAGE, PluginSource, Registry, get_registry


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"gantk {gantk.__version__}")
        raise typer.Exit()


def _root(
    ctx: typer.Context,
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version_callback, is_eager=True, help="Print gantk's version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks instead of one-paragraph errors "
                                                      "(also accepted after the command)."),
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
    commands = _CommandsByPlugin(app)
    registry.call_hook("register_commands", lambda source: {"app": app}, after=commands.record)
    _keep_builtin_commands(commands)
    return app


CommandOrGroup = Union[CommandInfo, TyperInfo]


class _CommandsByPlugin:
    """Which plugin added which commands and groups to ``app``: :meth:`record` runs after each ``register_commands``."""

    def __init__(self, app: typer.Typer) -> None:
        self.app = app
        self.builtin: list[CommandOrGroup] = [*app.registered_commands, *app.registered_groups]
        self.added: list[tuple[PluginSource, list[CommandOrGroup]]] = []
        self._seen = (len(app.registered_commands), len(app.registered_groups))

    def record(self, source: PluginSource) -> None:
        commands, groups = self.app.registered_commands, self.app.registered_groups
        self.added.append((source, [*commands[self._seen[0]:], *groups[self._seen[1]:]]))
        self._seen = (len(commands), len(groups))


def _command_name(info: CommandOrGroup) -> str | None:
    """The name a command or group answers to on the command line (None if Typer cannot tell yet)."""
    if isinstance(info, CommandInfo):
        return info.name or (typer.main.get_command_name(info.callback.__name__) if info.callback else None)
    name = typer.main.solve_typer_info_defaults(info).name
    return name if isinstance(name, str) else None


def _keep_builtin_commands(commands: _CommandsByPlugin) -> None:
    """A plugin command named like a built-in one (gantk's own tools included) or an earlier plugin's is renamed
    ``<package>:<name>``, with one warning: nothing replaces a command silently."""
    owners = {_command_name(info): BUILTIN_PACKAGE for info in commands.builtin}
    gantk_first = sorted(commands.added, key=lambda added: added[0].package != BUILTIN_PACKAGE)  # its tools: built-in
    for source, infos in gantk_first:
        for info in infos:
            name = _command_name(info)
            if name is None:
                continue
            if name not in owners:
                owners[name] = source.package
                continue
            qualified = f"{source.package}:{name}"
            info.name = qualified
            owner = "gantk" if owners[name] == BUILTIN_PACKAGE else f"plugin package '{owners[name]}'"
            print(f"gantk: warning: plugin package '{source.package}' ({source.module}) adds a command '{name}', which "
                  f"{owner} already has; that one is kept, and the plugin's command is 'gantk {qualified}'.",
                  file=sys.stderr)


def main() -> None:
    """Run the command line on ``sys.argv`` (the ``gantk`` script comes here through :mod:`gantk.cli.launcher`)."""
    args = hoist_debug_flag(sys.argv[1:])
    try:
        app = build_app()
    except GantkError as error:  # e.g. a broken plugin under GANTK_STRICT_PLUGINS=1
        if args[:1] == [DEBUG_FLAG] or os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            traceback.print_exc()
        else:
            print(f"Error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
    app(args=args, prog_name="gantk")


if __name__ == "__main__":  # pragma: no cover
    main()
