"""How the CLI turns errors into one-paragraph messages and exit codes.

Commands raise :class:`gantk.GantkError` (or let one propagate from the core). The root group
below catches it, prints ``Error: <paragraph>`` on stderr and exits with the error's code (2 for
usage, 1 for runtime), with no traceback. ``--debug`` (or ``GANTK_DEBUG=1``) lets the original
exception through with its traceback. Anything unexpected is a bug: when it was raised in a
plugin's code (:func:`gantk.blame.culprit_of` finds which), the message names the component and the
package to report it to; otherwise it is reported as a bug in gantk.
"""

from __future__ import annotations

import os
import sys

import typer
from typer.core import TyperGroup

from gantk.blame import Culprit, culprit_of
from gantk.errors import GantkError

DEBUG_ENV = "GANTK_DEBUG"


def debug_enabled(ctx: typer.Context | None) -> bool:
    root = ctx.find_root() if ctx is not None else None
    if root is not None and isinstance(root.obj, dict) and root.obj.get("debug"):
        return True
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def fail(message: str, exit_code: int) -> typer.Exit:
    """Print a one-paragraph error and return the Exit to raise."""
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(exit_code)


class GantkGroup(TyperGroup):
    """The root command group: converts errors to messages unless debugging."""

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except (typer.TyperException, typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except BrokenPipeError:  # the reader went away (gantk list | head): stop quietly, as Python's docs advise
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # so that flushing stdout at exit does not fail again
            raise typer.Exit(1) from None
        except GantkError as exc:
            if debug_enabled(ctx):
                raise
            raise fail(str(exc), exc.exit_code) from exc
        except Exception as exc:  # noqa: BLE001 - a bug; still no traceback without --debug
            if debug_enabled(ctx):
                raise
            raise fail(bug_message(exc, culprit_of(exc)), 1) from exc


def bug_message(exc: BaseException, culprit: Culprit | None) -> str:
    """One paragraph for an unexpected exception, naming the plugin (and its package) it came from."""
    detail = " ".join(str(exc).split()).rstrip(".")  # a multi-line message still makes one paragraph
    error = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    if culprit is None:
        return (f"internal error: {error}. This is a bug in gantk; run the same command with --debug "
                "to see the traceback, and report it.")
    package = culprit.source.package
    return (f"the {culprit.describe()} from plugin package {culprit.source.label} raised "
            f"{error}. This is a bug in that plugin: report it to {package} (run the same command with "
            "--debug for the traceback).")
