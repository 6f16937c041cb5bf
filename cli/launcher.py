"""The ``gantk`` console script: Ctrl-C while the command line is still loading prints one line.

Loading the command line imports torch, Typer and the plugins, which takes about a second; Python
would answer a Ctrl-C in that time with the traceback of whichever import was running. This module
imports nothing heavy itself: :func:`main` does those imports and runs :func:`gantk.cli.app.main`
inside one ``try``, and a :class:`KeyboardInterrupt` that gets this far (while loading, or anywhere
the command's own handling did not catch it) prints ``Interrupted.`` and exits 130.
"""

from __future__ import annotations

import sys

#: The exit code of a command stopped by Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED_EXIT = 130
INTERRUPTED_MESSAGE = "Interrupted."


def main() -> None:
    """Console-script entry point."""
    try:
        from gantk.cli.app import main as run_command_line  # the heavy imports

        run_command_line()
    except KeyboardInterrupt:
        print(INTERRUPTED_MESSAGE, file=sys.stderr)
        sys.exit(INTERRUPTED_EXIT)


if __name__ == "__main__":  # pragma: no cover
    main()
