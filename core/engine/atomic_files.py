"""Writing files atomically: readers see the old file or the whole new one, never a part.

Every file gantk writes goes to a temporary file in the same folder (``.<name>.<random>.tmp``),
is fsync'ed, then renamed over the target, and the folder is fsync'ed so that the rename itself
survives a crash. The temporary file is created with mode 0666 less the umask (0644 usually), as
``open()`` would, so the result has the permissions of any other file the user writes.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any


def create_temporary(path: Path) -> tuple[int, Path]:
    """An open descriptor and the path of a new, empty temporary file beside ``path``."""
    while True:
        temporary = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), temporary
        except FileExistsError:
            continue


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see the module docstring); an OS error names ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # make the rename itself durable
        finally:
            os.close(directory)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        if error.filename is None:  # write() and fsync() name no file: say which one failed
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_json(path: Path, value: Any) -> None:
    """``value`` as indented JSON with a final newline, written atomically."""
    write_atomic(path, (json.dumps(value, indent=2) + "\n").encode())
