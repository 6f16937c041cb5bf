"""The ``gantk example-info`` command: what this package registers, as the registry sees it.

It shows the ``register_commands`` hook at work: gantk hands the hook its root Typer app, and
the command added here appears in ``gantk --help`` next to the built-in ones.
"""

from __future__ import annotations

import importlib.metadata

import gantk

DISTRIBUTION = "gantk-example-plugin"
MODULE_PREFIX = "gantk_example_plugin"


def _version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:  # imported from a source tree, not installed
        return "(not installed)"


def example_info() -> None:
    """Show what the gantk-example-plugin package registers."""
    import typer  # gantk's CLI dependency; imported here so that importing this module stays cheap

    entries = [e for e in gantk.get_registry().list() if e.source.module.startswith(MODULE_PREFIX)]
    if not entries:
        raise gantk.GantkError(
            f"gantk found no plugins from {DISTRIBUTION}'s modules; run 'gantk plugins' to see whether "
            f"they failed to load, and reinstall the package with 'pip install {DISTRIBUTION}'.")
    typer.echo(f"{DISTRIBUTION} {_version()} registers:")
    for entry in entries:
        aliases = f" (aliases: {', '.join(entry.aliases)})" if entry.aliases else ""
        typer.echo(f"  {entry.kind:<10} {entry.name}{aliases}: {entry.summary}")
    typer.echo("  command    example-info: this listing")


@gantk.hookimpl
def register_commands(app):
    app.command("example-info")(example_info)
