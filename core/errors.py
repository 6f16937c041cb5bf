"""Errors a user can act on.

Every error gantk raises on purpose is a :class:`GantkError`: its message is one paragraph that
says what went wrong and what to do, and its ``exit_code`` is what the CLI exits with
(2 for usage mistakes such as an unknown name or an impossible combination, 1 for runtime
problems such as an unreadable file or a non-finite loss). The CLI prints the message and
no traceback unless ``--debug`` is given.
"""

from __future__ import annotations


class GantkError(Exception):
    """A problem the user can fix; the message says how. Exit code 1 (runtime)."""

    exit_code = 1


class UsageError(GantkError):
    """The command asked for something impossible or unknown. Exit code 2."""

    exit_code = 2


class UnknownNameError(UsageError):
    """No plugin of that kind is registered under that name."""


class AmbiguousNameError(UsageError):
    """Two plugin packages registered the same name; ``package:name`` picks one."""


class PluginLoadError(GantkError):
    """A plugin package failed to import or to register (raised only in strict mode)."""
