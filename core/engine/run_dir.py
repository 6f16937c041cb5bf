"""The run directory: ``runs/<name>/`` and the ``runs/latest`` link.

Layout::

    runs/<name>/config.json              everything needed to rebuild the run (TrainConfig)
    runs/<name>/metrics.jsonl            one line per logged window
    runs/<name>/samples/step_XXXXXX.png  fixed noise (and labels), every --sample-every steps
    runs/<name>/checkpoints/             atomic safetensors checkpoints
    runs/<name>/generator.safetensors    the exported generator (EMA weights when present)
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from gantk.errors import GantkError, UsageError

LATEST = "latest"


def is_main_process() -> bool:
    """Only rank 0 writes files, samples and logs (torchrun sets RANK)."""
    return int(os.environ.get("RANK", "0")) == 0


def new_run_dir(runs_root: Path, name: str | None, default_stem: str) -> Path:
    """A fresh run directory; an explicit name that exists is an error (resume it instead)."""
    runs_root = Path(runs_root)
    if name:
        run = runs_root / name
        if run.exists() and any(run.iterdir()):
            raise UsageError(f"The run '{run}' already exists. Continue it with 'gantk train --resume {run}', "
                             "or choose another --name.")
        return run
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run = runs_root / f"{default_stem}-{stamp}"
    suffix = 1
    while run.exists():
        suffix += 1
        run = runs_root / f"{default_stem}-{stamp}-{suffix}"
    return run


def find_run(spec: str, runs_root: Path) -> Path:
    """A run directory from a path or a name under ``runs_root`` (``latest`` included)."""
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
