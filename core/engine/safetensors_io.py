"""Reading and writing safetensors files: atomically, and with readable errors.

Nothing in gantk is pickled. Tensors travel as safetensors; everything else (configs, step
counters, optimizer hyper-parameters) as JSON strings in the file's metadata header.
Writes go to a temporary file in the same folder, are fsync'ed, then renamed over the target,
so a crash or SIGKILL mid-write leaves the previous file intact.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes
from safetensors import safe_open

from gantk.errors import GantkError


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # make the rename itself durable
    finally:
        os.close(directory)


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Save ``tensors`` (made contiguous, unshared, on the CPU) with string ``metadata``, atomically."""
    plain = {name: t.detach().to("cpu").contiguous().clone() for name, t in tensors.items()}
    write_atomic(Path(path), save_bytes(plain, metadata=metadata))


def _unreadable(path: Path, error: Exception) -> GantkError:
    return GantkError(
        f"Cannot read '{path}': it is not a complete safetensors file ({type(error).__name__}: {error}). "
        "It may be truncated or corrupt (an interrupted copy or download); export or copy it again, "
        "or point at another checkpoint of the run.")


def read_metadata(path: Path) -> dict[str, str]:
    """The metadata header of a safetensors file, without reading its tensors."""
    path = Path(path)
    if not path.is_file():
        raise GantkError(f"No such file: '{path}'. Give the path of a .safetensors file written by gantk "
                         "(e.g. runs/<name>/generator.safetensors).")
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise _unreadable(path, error) from error


def read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors and the metadata of a safetensors file; a readable error if it is damaged."""
    metadata = read_metadata(path)
    try:
        tensors = load_bytes(Path(path).read_bytes())
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise _unreadable(Path(path), error) from error
    return tensors, metadata
