"""How the CLI turns errors into one-paragraph messages and exit codes.

Commands raise :class:`gantk.GantkError` (or let one propagate from the core). The root group
below catches it, prints ``Error: <paragraph>`` on stderr and exits with the error's code (2 for
usage, 1 for runtime), with no traceback. click's own usage errors (an unknown option or command,
a value of the wrong type) get one paragraph too, without the usage lines. ``--debug`` (or ``GANTK_DEBUG=1``) prints the traceback
and exits with the same code; it may stand anywhere on the command line (:func:`hoist_debug_flag`).

An operating-system error the machine caused (a read-only or full disk, a permission, a folder where
a file belongs, a symbolic-link loop, ...) is the user's to fix, not a bug: :func:`environment_message`
names the path and what to do. Ctrl-C prints one line and exits 130. Anything else unexpected is a
bug: when it was raised in a plugin's code (:func:`gantk.blame.culprit_of` finds which), the message
names the component and the package to report it to; otherwise it is reported as a bug in gantk.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback
from pathlib import Path

import typer
from typer.core import TyperGroup

from gantk.blame import Culprit, culprit_of
from gantk.cli.launcher import INTERRUPTED_EXIT, INTERRUPTED_MESSAGE
from gantk.errors import GantkError

DEBUG_ENV = "GANTK_DEBUG"
DEBUG_FLAG = "--debug"


def debug_enabled(ctx: typer.Context | None) -> bool:
    root = ctx.find_root() if ctx is not None else None
    if root is not None and isinstance(root.obj, dict) and root.obj.get("debug"):
        return True
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def hoist_debug_flag(args: list[str]) -> list[str]:
    """``args`` with every ``--debug`` before a literal ``--`` moved to the front, where the root option reads it.

    ``gantk train --debug ...`` then means ``gantk --debug train ...``.
    """
    end = args.index("--") if "--" in args else len(args)
    if DEBUG_FLAG not in args[:end]:
        return list(args)
    rest = [arg for arg in args[:end] if arg != DEBUG_FLAG]
    return [DEBUG_FLAG, *rest, *args[end:]]


def fail(message: str, exit_code: int) -> typer.Exit:
    """Print a one-paragraph error and return the Exit to raise."""
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(exit_code)


def interrupted() -> typer.Exit:
    """Print the one line a Ctrl-C gets and return the Exit (130) to raise."""
    typer.echo(INTERRUPTED_MESSAGE, err=True)
    return typer.Exit(INTERRUPTED_EXIT)


#: click's usage errors (an unknown option or command, a value of the wrong type), as this Typer provides them
_ClickUsageError = typer.BadParameter.__bases__[0]
_ShowHelp = getattr(sys.modules[_ClickUsageError.__module__], "NoArgsIsHelpError", ())  # 'gantk' alone: the help


def usage_error(exc: Exception) -> typer.Exit:
    """click's usage error as one paragraph without the usage lines (``Error: No such option: --x. See
    'gantk train -h'.``), exit 2."""
    message = exc.format_message().strip()
    message = message if message.endswith((".", "?", "!")) else message + "."
    ctx = getattr(exc, "ctx", None)
    return fail(f"{message} See '{ctx.command_path} -h'." if ctx is not None else message, exc.exit_code)


class GantkGroup(TyperGroup):
    """The root command group: converts errors to messages unless debugging."""

    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except _ShowHelp:
            raise
        except _ClickUsageError as exc:  # an unknown global option
            raise usage_error(exc) from exc

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except _ShowHelp:
            raise
        except _ClickUsageError as exc:  # an unknown command, or a bad option of one
            raise usage_error(exc) from exc
        except (typer.TyperException, typer.Exit, typer.Abort):
            raise
        except KeyboardInterrupt as exc:  # training has its own handler; this is Ctrl-C anywhere else
            if debug_enabled(ctx):
                traceback.print_exc()
            raise interrupted() from exc
        except BrokenPipeError:  # the reader went away (gantk list | head): stop quietly, as Python's docs advise
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # so that flushing stdout at exit does not fail again
            raise typer.Exit(1) from None
        except SystemExit as exc:  # sys.exit() in a plugin's code must not end gantk without a word
            culprit = culprit_of(exc)
            if culprit is None or debug_enabled(ctx):
                raise
            raise fail(bug_message(exc, culprit), 1) from exc
        except GantkError as exc:
            if debug_enabled(ctx):
                traceback.print_exc()
                raise typer.Exit(exc.exit_code) from exc
            raise fail(str(exc), exc.exit_code) from exc
        except Exception as exc:  # noqa: BLE001 - a bug or the machine; still no traceback without --debug
            if debug_enabled(ctx):
                raise
            message = environment_message(exc) or bug_message(exc, culprit_of(exc))
            raise fail(message, 1) from exc


# --------------------------------------------------------------------------- environment errors
_NOWHERE = "a file gantk was using"
#: errno -> the problem (``{where}`` is the quoted path) and what to do about it.
_ENVIRONMENT: dict[int, tuple[str, str]] = {
    errno.EROFS: ("{where} is on a read-only file system",
                  "Write to a writable place instead (another --out or --runs-dir), or remount it read-write."),
    errno.ENOSPC: ("the disk holding {where} is full",
                   "Free some space (old runs' checkpoints are the biggest files) or write to another disk "
                   "(--runs-dir, --out), then run again."),
    errno.EACCES: ("permission was denied for {where}",
                   "Give your user access to it and to the folders above it (ls -l shows who may read and "
                   "write; chmod or chown changes it), or use another path."),
    errno.EISDIR: ("{where} is a folder where a file was expected",
                   "Give the path of a file instead, e.g. a file name inside that folder."),
    errno.ENOTDIR: ("{where} or a folder above it is a file where a folder was expected",
                    "Check the path: each part that should be a folder must be one."),
    errno.EEXIST: ("{where} already exists and is in the way (e.g. a file where gantk needs a folder)",
                   "Move or rename it, or choose another path."),
    errno.ELOOP: ("{where} is a symbolic-link loop (a link that leads back to itself)",
                  "Fix or remove the link (ls -l shows where it points), or use another path."),
    errno.ENAMETOOLONG: ("the path {where} is too long for the file system",
                         "Use a shorter name or a folder nearer the root."),
    errno.EMFILE: ("too many files are open (at {where})",
                   "Raise the limit of open files (e.g. ulimit -n 4096) and run again."),
    errno.ENOENT: ("{where} does not exist (it may have been moved or deleted while gantk ran)",
                   "Check the path and run again."),
    errno.EIO: ("the system reported an input/output error on {where}",
                "The disk or network file system failed; check it and run again."),
}
_ENVIRONMENT[errno.EPERM] = _ENVIRONMENT[errno.EACCES]
_ENVIRONMENT[errno.ENFILE] = _ENVIRONMENT[errno.EMFILE]
if hasattr(errno, "EDQUOT"):  # not on Windows
    _ENVIRONMENT[errno.EDQUOT] = ("your disk quota is used up where {where} is written",
                                  _ENVIRONMENT[errno.ENOSPC][1])


def environment_message(exc: BaseException) -> str | None:
    """One paragraph for an OS error the machine caused (read-only, full, permissions, ...), else None.

    The exception itself or one it was raised ``from`` counts; the message names the file the
    system named (the destination of a rename; the folder of a temporary file).
    """
    error = _os_error_in(exc)
    if error is None:
        return None
    problem, todo = _ENVIRONMENT[error.errno]
    path = _path_of(error)
    sentence = problem.format(where=f"'{path}'" if path else _NOWHERE)
    return f"{sentence[0].upper()}{sentence[1:]} ({type(error).__name__}: {error.strerror}). {todo}"


def _os_error_in(exc: BaseException | None) -> OSError | None:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _ENVIRONMENT:
            return exc
        exc = exc.__cause__
    return None


def _path_of(error: OSError) -> str | None:
    """The path to name: a rename's destination, the folder of an atomic write's temporary file, or the file."""
    name = error.filename2 if error.filename2 is not None else error.filename
    if name is None:
        return None
    path = Path(os.fsdecode(name)) if isinstance(name, (str, bytes, os.PathLike)) else None
    if path is None:
        return str(name)
    if path.name.startswith(".") and path.name.endswith(".tmp"):
        return str(path.parent)
    return str(path)


# --------------------------------------------------------------------------- bugs
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
