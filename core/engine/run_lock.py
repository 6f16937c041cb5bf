"""One writer per run: an exclusive lock on ``runs/<name>/.lock`` for the whole of a training.

The lock is ``fcntl.flock`` on a descriptor held open while the run trains, so the operating
system releases it when the process ends in any way (kill -9 included). The file holds the
holder's pid, host and start time, for the message a second writer gets. A lock file that is
not locked was left by a process that died: it is taken over with a one-line note. Where flock
is not available (no ``fcntl``, or a file system without locks) the recorded pid decides: a
holder on this host that no longer runs is taken over, any other holder is respected.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import weakref
from pathlib import Path

from gantk.errors import UsageError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"


class RunLock:
    """The held lock of one run directory; :meth:`release` (or garbage collection) gives it back."""

    def __init__(self, run_dir: Path, fd: int) -> None:
        self.run_dir, self.path = run_dir, run_dir / LOCK_FILE
        self._release = weakref.finalize(self, _release, fd, self.path)

    @classmethod
    def acquire(cls, run_dir: Path) -> "RunLock":
        """Lock ``run_dir`` (created if needed) for this process, or raise a UsageError naming the holder."""
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / LOCK_FILE
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                holder = _read_holder(fd)
                if not _lock(fd, holder):
                    raise UsageError(_in_use_message(run_dir, holder))
                if _same_file(fd, path):
                    break
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # the holder removed the file while we waited for it: lock the new one
        if holder:
            print(f"gantk: taking over the lock of '{run_dir}' left by {_describe(holder)}, which is no longer "
                  "running.", file=sys.stderr)
        record = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
            os.fsync(fd)
        except OSError as error:
            _release(fd, path)
            raise OSError(error.errno, error.strerror, str(path)) from error  # name the file (a full disk?)
        return cls(run_dir, fd)

    @property
    def held(self) -> bool:
        return self._release.alive

    def release(self) -> None:
        """Remove the lock file and let go of the lock (does nothing the second time)."""
        self._release()


def refuse_if_in_use(run_dir: Path) -> None:
    """Raise the UsageError naming the holder when another live process holds ``run_dir``'s lock."""
    try:
        fd = os.open(Path(run_dir) / LOCK_FILE, os.O_RDONLY)
    except OSError:  # no lock file: nobody holds it
        return
    try:
        holder = _read_holder(fd)
        if not _lock(fd, holder, exclusive=False):  # a shared lock, dropped when fd closes below
            raise UsageError(_in_use_message(Path(run_dir), holder))
    finally:
        os.close(fd)


def _release(fd: int, path: Path) -> None:
    try:
        if _same_file(fd, path):
            path.unlink()
    except OSError:
        pass
    finally:
        os.close(fd)


def _lock(fd: int, holder: dict, exclusive: bool = True) -> bool:
    """Take the lock on ``fd`` (shared: only to test it); False when another process holds it."""
    if fcntl is not None:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        except OSError:  # a file system without locks: the recorded holder decides
            pass
    return not holder or not _is_running(holder)


def _is_running(holder: dict) -> bool:
    """Whether the recorded holder still runs (holders on other hosts, or unknown ones, are taken to)."""
    pid = holder.get("pid")
    if holder.get("host") != socket.gethostname() or not isinstance(pid, int) or os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to someone else
        return True
    return True


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _read_holder(fd: int) -> dict:
    try:
        record = json.loads(os.pread(fd, 4096, 0).decode("utf-8", "replace") or "{}")
    except ValueError:
        return {"unreadable": True}
    return record if isinstance(record, dict) else {"unreadable": True}


def _describe(holder: dict) -> str:
    if "pid" not in holder:
        return "a process that did not record its pid"
    since = f", since {holder['since']}" if holder.get("since") else ""
    return f"pid {holder['pid']} on host {holder.get('host', '?')}{since}"


def _in_use_message(run_dir: Path, holder: dict) -> str:
    return (f"The run '{run_dir}' is in use: another gantk process ({_describe(holder)}) is writing it and holds "
            f"{run_dir / LOCK_FILE}. Only one 'gantk train' may write a run at a time. Wait for that process to "
            f"finish (or stop it), then continue the run with 'gantk train --resume {run_dir}'; or train a new run "
            "under another --name.")
