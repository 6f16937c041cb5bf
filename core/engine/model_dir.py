"""Model directories in the Hugging Face layout: ``config.json``, ``model.safetensors``, ``README.md``.

``gantk export RUN --out DIR/`` writes one (see :func:`gantk.engine.run_export.export_run_directory`):

- ``model.safetensors``: the generator export itself, the same tensors and metadata header as
  ``generator.safetensors`` (see :mod:`gantk.engine.export`), so every reader of one reads the other;
- ``config.json``: that header as JSON (:func:`config_from_metadata`: the plugin that builds the
  generator, its options, the data spec, ``z_dim``, the gantk version, ...), whether the generator takes
  class labels (``conditional``) and, under ``training``, the run's own ``config.json``;
- ``README.md``: the model card (:mod:`gantk.engine.model_card`), and ``samples.png``, the grid it shows.

The weights file is the authority: loading builds the network from its header, as for a single
file. ``config.json`` describes the same generator for people and for the Hub's tools, and a
directory whose two files disagree is refused (files mixed from two exports, or an edit).

A directory is published atomically: written into a hidden sibling, then renamed into place.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any, Callable

from gantk.errors import GantkError, UsageError

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
GRID_FILE = "samples.png"
#: The files gantk writes into a model directory (anything else in one is the user's and is kept).
FILES = (CONFIG_FILE, MODEL_FILE, CARD_FILE, GRID_FILE)
#: The key of config.json that holds the run's training configuration (its own config.json).
TRAINING_KEY = "training"
#: config.json's keys, from the export's metadata header (``gantk.<key>`` there; ``gantk.config`` is spread out).
_HEADER_KEYS = {"gantk_version": "gantk.version", "kind": "gantk.kind", "architecture": "gantk.name",
                "plugin": "gantk.plugin"}


def config_from_metadata(metadata: dict[str, str]) -> dict[str, Any]:
    """The ``config.json`` of a model directory (without ``training``) from its weights file's metadata header."""
    config = {key: metadata[header] for key, header in _HEADER_KEYS.items() if header in metadata}
    config["library_name"] = "gantk"
    config.update(json.loads(metadata.get("gantk.config", "{}")))
    return config


def names_a_directory(out: str | Path) -> bool:
    """Whether ``--out`` names a model directory: it ends with '/', is an existing directory, or has no suffix
    (``.safetensors``, or any other suffix, names a single file as before)."""
    text = str(out)
    return text.endswith(("/", os.sep)) or Path(text).is_dir() or Path(text).suffix == ""


def is_model_directory(path: Path) -> bool:
    """Whether ``path`` is a model directory: a directory holding ``model.safetensors``, or a ``config.json`` that
    gantk export wrote (then a missing weights file is reported as such, not as a missing run export)."""
    path = Path(path)
    return path.is_dir() and ((path / MODEL_FILE).is_file() or written_by_gantk(path))


def _listing(directory: Path) -> str:
    names = sorted(entry.name for entry in directory.iterdir())
    return ", ".join(names[:8]) + (", ..." if len(names) > 8 else "") if names else "nothing"


def model_file(directory: Path) -> Path:
    """The weights file of the model directory ``directory``.

    A directory without ``model.safetensors`` is refused with what it holds instead (a run directory is
    pointed to its ``generator.safetensors``). The caller checks ``config.json`` against the file's header
    (:func:`check_config_matches`) once it has read and checked that header."""
    directory = Path(directory)
    weights = directory / MODEL_FILE
    if not weights.is_file():
        run_export = directory / "generator.safetensors"
        hint = (f"It looks like a run directory: load its export, '{run_export}', or give the run to 'gantk sample'."
                if run_export.is_file() else "Copy the missing file back, or write the directory again with "
                "'gantk export RUN --out DIR/'.")
        raise GantkError(f"'{directory}' is a directory but not a gantk model directory: it has no {MODEL_FILE} "
                         f"(it holds {_listing(directory)}). A model directory written by 'gantk export RUN --out "
                         f"DIR/' holds {CONFIG_FILE}, {MODEL_FILE} and {CARD_FILE}. {hint}")
    return weights


def check_config_matches(directory: Path, metadata: dict[str, str]) -> None:
    """Refuse a directory whose ``config.json`` (when there is one) describes another generator than its weights."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        return
    try:
        stored = json.loads(path.read_bytes())
    except (OSError, ValueError) as error:
        raise GantkError(f"'{path}' cannot be read as JSON ({error}). It describes the generator in {MODEL_FILE}; "
                         "copy it again, or write the directory again with 'gantk export RUN --out DIR/'.") from error
    expected = config_from_metadata(metadata)
    differing = [key for key in expected if not isinstance(stored, dict) or stored.get(key) != expected[key]]
    if differing:
        raise GantkError(
            f"'{path}' and {MODEL_FILE} beside it describe different generators (they differ in "
            f"{', '.join(differing[:5])}): the files come from two exports, or config.json was edited. "
            f"{MODEL_FILE} holds the weights and their own description; copy the matching config.json back, or "
            "write the directory again with 'gantk export RUN --out DIR/'.")


def training_section(config: Any) -> Any:
    """The run configuration inside a model directory's ``config.json`` (its ``training`` key), so that
    ``gantk train --config DIR/config.json`` trains the run again; any other configuration is returned as it is."""
    ours = isinstance(config, dict) and config.get("library_name") == "gantk"
    training = config.get(TRAINING_KEY) if ours else None
    return training if isinstance(training, dict) else config


# --------------------------------------------------------------------------- publishing a directory atomically
def _new_sibling(path: Path, tag: str) -> Path:
    """A new, empty hidden directory beside ``path`` (``.<name>.<tag>-<random>``), with the user's usual mode."""
    while True:
        sibling = path.parent / f".{path.name}.{tag}-{secrets.token_hex(4)}"
        try:
            sibling.mkdir(mode=0o777)  # less the umask, as for any folder the user makes
            return sibling
        except FileExistsError:
            continue


def _sync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)  # make the renames in it durable
    finally:
        os.close(descriptor)


def _check_replaceable(out: Path, overwrite: bool) -> None:
    """Refuse to write over a file, over a non-empty directory without ``overwrite``, or over one gantk did not
    write even with it (``--overwrite`` must never delete a run or a home directory)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"'{out}' is a file, not a directory. Give a new directory name for the model directory "
                         "(e.g. --out exports/my-model/), or a name ending in .safetensors for a single file.")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not overwrite:
        raise UsageError(f"'{out}' already exists and is not empty (it holds {_listing(out)}). Give a new or empty "
                         "directory, or add --overwrite to replace a model directory gantk wrote there.")
    if not written_by_gantk(out):
        raise UsageError(f"'{out}' is not a model directory written by gantk (it has no {CONFIG_FILE} naming "
                         f"library gantk; it holds {_listing(out)}), so --overwrite will not replace it. Give a new "
                         "or empty directory.")


def written_by_gantk(directory: Path) -> bool:
    """Whether ``directory`` holds a ``config.json`` gantk export wrote (it names ``library_name: gantk``)."""
    try:
        config = json.loads((directory / CONFIG_FILE).read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("library_name") == "gantk"


def write_directory(out: Path, fill: Callable[[Path], None], *, overwrite: bool = False) -> Path:
    """Write a model directory at ``out`` atomically: ``fill`` writes the files into a hidden sibling, which is
    then renamed to ``out``.

    A new or empty ``out`` is replaced by one rename. With ``overwrite``, a model directory gantk wrote is
    replaced by two renames (the old one aside, the new one in) after moving the files that are not gantk's
    (``.git``, a licence, ...) into the new one; the old one is then deleted."""
    out = Path(out)
    _check_replaceable(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = _new_sibling(out, "tmp")
    try:
        fill(staging)
        if out.is_dir() and any(out.iterdir()):
            _swap(out, staging)
        else:
            os.replace(staging, out)  # a missing or empty directory: one atomic rename
        _sync_directory(out.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _swap(out: Path, staging: Path) -> None:
    """Put ``staging`` in the place of the model directory ``out``, keeping the entries of ``out`` that gantk did
    not write (they move into ``staging`` first, and back if anything fails)."""
    kept = [entry.name for entry in out.iterdir() if entry.name not in FILES]
    old = _new_sibling(out, "old")
    try:
        for name in kept:
            os.replace(out / name, staging / name)
        os.replace(out, old)  # onto the empty directory just made
    except BaseException:  # a Ctrl-C too: the user's entries must not stay in staging, which is deleted
        _move_back(staging, out, kept)
        shutil.rmtree(old, ignore_errors=True)
        raise
    try:
        os.replace(staging, out)
    except BaseException:
        os.replace(old, out)  # the old directory back in its place, with the user's entries
        _move_back(staging, out, kept)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _move_back(source: Path, target: Path, names: list[str]) -> None:
    """Move the entries ``names`` that are in ``source`` back to ``target``."""
    for name in names:
        if os.path.lexists(source / name):
            os.replace(source / name, target / name)


__all__ = ["CARD_FILE", "CONFIG_FILE", "FILES", "GRID_FILE", "MODEL_FILE", "TRAINING_KEY", "check_config_matches",
           "config_from_metadata", "is_model_directory", "model_file", "names_a_directory", "training_section",
           "write_directory"]
