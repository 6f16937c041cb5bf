"""The run directory: ``runs/<name>/`` and the ``runs/latest`` link.

Layout::

    runs/<name>/.lock                    held while 'gantk train' writes the run (see run_lock.py)
    runs/<name>/config.json              everything needed to rebuild the run (TrainConfig)
    runs/<name>/components.json          the data spec and how to rebuild the generator
    runs/<name>/metrics.jsonl            one line per logged window
    runs/<name>/samples/step_XXXXXX.png  fixed noise (and labels), every --sample-every steps
    runs/<name>/checkpoints/             atomic, self-verifying safetensors checkpoints
    runs/<name>/generator.safetensors    the exported generator (EMA weights when present)
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from gantk.engine.run_lock import LOCK_FILE, refuse_if_in_use
from gantk.errors import GantkError, UsageError

LATEST = "latest"
_NAME_RULE = ("A run name is one folder name inside --runs-dir: not empty, at most 255 bytes, without '/', '\\', "
              "'..' or control characters, and not '.' or 'latest' (the link to the newest run); for example "
              "--name mnist-hinge-2.")


def launched_by_torchrun() -> bool:
    """Whether this process is one of several ranks (torchrun sets WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    """Only rank 0 writes files, samples and logs (torchrun sets RANK)."""
    return int(os.environ.get("RANK", "0")) == 0


def check_run_name(name: str) -> None:
    """Refuse a ``--name`` that is not one plain folder name (so that it never leaves --runs-dir)."""
    problem = ("it is empty" if not name else
               "it contains '/' or '\\'" if "/" in name or "\\" in name else
               "it contains '..'" if ".." in name else
               "it is '.'" if name == "." else
               f"'{LATEST}' is the link to the newest run" if name == LATEST else
               "it contains a control character" if any(ord(c) < 32 or ord(c) == 127 for c in name) else
               "it is longer than 255 bytes" if len(name.encode("utf-8", "surrogateescape")) > 255 else None)
    if problem:
        raise UsageError(f"Invalid run name {name!r} for --name: {problem}. {_NAME_RULE}")


def is_unused(run: Path) -> bool:
    """Whether ``run`` holds nothing of a run (at most its lock file)."""
    return all(entry.name == LOCK_FILE for entry in run.iterdir())


def already_exists(run: Path) -> UsageError:
    return UsageError(f"The run '{run}' already exists. Continue it with 'gantk train --resume {run}', "
                      "or choose another --name.")


def _claim(runs_root: Path, name: str) -> bool:
    """Create ``runs_root/name`` (True), or accept it as it is when it exists and is unused (False)."""
    run = runs_root / name
    try:
        run.mkdir()
        return True
    except FileExistsError:
        pass
    if not run.is_dir() or run.resolve().parent != runs_root.resolve():
        raise UsageError(f"'{run}' exists and is not a run folder inside {runs_root} (a file, or a link leading "
                         "elsewhere). Choose another --name, or move it away.")
    if not is_unused(run):
        refuse_if_in_use(run)  # a run being written: name the process that writes it
        raise already_exists(run)
    return False


@contextmanager
def new_run_dir(runs_root: Path, name: str | None, default_stem: str) -> Iterator[Path]:
    """A fresh run directory, created with an exclusive mkdir; removed again if the block fails while it is empty.

    An explicit ``name`` that exists is an error (resume it instead), unless the folder is empty.
    Two processes asking for the same new name cannot both get it: the Trainer's lock and its
    check that the folder is unused settle the rest.
    """
    runs_root = Path(runs_root)
    runs_root.mkdir(parents=True, exist_ok=True)
    if name is not None:
        check_run_name(name)
        created = _claim(runs_root, name)
        run = runs_root / name
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        suffix = 1
        run = runs_root / f"{default_stem}-{stamp}"
        while True:
            try:
                run.mkdir()
                created = True
                break
            except FileExistsError:
                suffix += 1
                run = runs_root / f"{default_stem}-{stamp}-{suffix}"
    try:
        yield run
    except BaseException:
        if created:
            try:
                run.rmdir()  # only while empty: a failure before anything was written leaves no trace
            except OSError:
                pass
        raise


def find_run(spec: str, runs_root: Path) -> Path:
    """A run directory from a path or a name under ``runs_root`` (``latest`` included)."""
    if not spec.strip():
        raise UsageError(f"--resume needs a run: a run directory or a name under {runs_root}, e.g. "
                         f"'gantk train --resume {Path(runs_root) / LATEST}'.")
    for candidate in (Path(spec), Path(runs_root) / spec):
        if (candidate / "config.json").is_file():
            return candidate.resolve()
    raise GantkError(f"No run found at '{spec}' (looked for {spec}/config.json and {Path(runs_root) / spec}/config.json). "
                     f"Give a run directory written by 'gantk train', e.g. {Path(runs_root) / LATEST}.")


def point_latest(run: Path) -> None:
    """Make ``runs/latest`` a symbolic link to ``run`` (replaced atomically)."""
    link = run.parent / LATEST
    temporary = run.parent / f".{LATEST}.{os.getpid()}"
    try:
        temporary.unlink(missing_ok=True)
        os.symlink(run.name, temporary)
        os.replace(temporary, link)
    except OSError:  # file systems without symlinks: the run is still complete
        temporary.unlink(missing_ok=True)
