"""Reading and writing safetensors files: atomically, self-verifying, and with readable errors.

Nothing in gantk is pickled. Tensors travel as safetensors; everything else (configs, step
counters, optimizer hyper-parameters) as JSON strings in the file's metadata header. Writes are
atomic (:func:`~gantk.engine.atomic_files.write_atomic`). Every file gantk writes records a
SHA-256 of its tensors (each tensor's name, dtype, shape and bytes, in name order) as
``gantk.sha256``; reading checks it, so a file changed after it was written is refused instead of
loaded. Files without the hash (written by other tools) still load.
"""

from __future__ import annotations

import errno
import hashlib
import json
import stat
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors import safe_open
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes

from gantk.engine.atomic_files import write_atomic
from gantk.errors import GantkError

__all__ = ["HASH_KEY", "DamagedFileError", "payload_sha256", "read_metadata", "read_safetensors", "write_safetensors"]

#: The metadata key holding the SHA-256 of a file's tensors.
HASH_KEY = "gantk.sha256"
_READ_ERRORS = (SafetensorError, OSError, ValueError, RuntimeError)


class DamagedFileError(GantkError):
    """A file gantk wrote that no longer holds what it wrote; ``reason`` says what is wrong, in a few words."""

    def __init__(self, path: Path, reason: str, advice: str) -> None:
        super().__init__(f"'{path}' is damaged: {reason}. {advice}")
        self.path, self.reason = path, reason


def payload_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """The SHA-256 of ``tensors``: each one's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        digest.update(json.dumps([name, str(tensor.dtype), list(tensor.shape)]).encode() + b"\n")
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Save ``tensors`` (made contiguous, unshared, on the CPU) with string ``metadata`` and their hash, atomically."""
    plain = {name: t.detach().to("cpu").contiguous().clone() for name, t in tensors.items()}
    write_atomic(Path(path), save_bytes(plain, metadata={**metadata, HASH_KEY: payload_sha256(plain)}))


def _check_is_file(path: Path) -> None:
    """A readable error when ``path`` is missing, a directory, a symlink loop or not a regular file."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        dangling = f" (a symbolic link to '{path.readlink()}', which does not exist)" if path.is_symlink() else ""
        raise GantkError(f"No such file: '{path}'{dangling}. Give the path of a .safetensors file written by gantk "
                         "(e.g. runs/<name>/generator.safetensors).") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise GantkError(f"Cannot read '{path}': it is a symbolic link loop (the link leads back to itself). "
                             "Fix or remove the link and give the .safetensors file itself.") from None
        raise GantkError(f"Cannot read '{path}': {error.strerror}. Check the path and its permissions.") from None
    if stat.S_ISDIR(mode):
        raise GantkError(f"'{path}' is a directory, not a safetensors file. Give a .safetensors file, e.g. "
                         f"{path / 'generator.safetensors'}.")
    if not stat.S_ISREG(mode):
        raise GantkError(f"'{path}' is not a regular file (a pipe or a device?). Give a .safetensors file.")


def _looks_like_pickle(path: Path) -> bool:
    """A zip archive (torch.save's format) or a raw pickle (protocol 2+ starts with 0x80)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError:
        return False
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def _unreadable(path: Path, error: Exception) -> GantkError:
    if isinstance(error, PermissionError):
        return GantkError(f"Cannot read '{path}': permission denied. Check the file's permissions.")
    if _looks_like_pickle(path):
        return GantkError(
            f"Cannot read '{path}': this is a pickle (PyTorch .pt/.pth) file; gantk never loads pickles; convert it "
            "to safetensors with safetensors.torch.save_file(...) (in a Python session you trust).")
    return GantkError(
        f"Cannot read '{path}': it is not a complete safetensors file ({type(error).__name__}: {error}). "
        "It may be truncated or corrupt (an interrupted copy or download); export or copy it again, "
        "or point at another checkpoint of the run.")


def read_metadata(path: Path) -> dict[str, str]:
    """The metadata header of a safetensors file, without reading its tensors."""
    path = Path(path)
    _check_is_file(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except _READ_ERRORS as error:
        raise _unreadable(path, error) from error


def read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors and the metadata of a safetensors file, checked against its ``gantk.sha256`` when it has one."""
    path = Path(path)
    metadata = read_metadata(path)
    try:
        tensors = load_bytes(path.read_bytes())
    except _READ_ERRORS as error:
        raise _unreadable(path, error) from error
    expected = metadata.get(HASH_KEY)
    if expected is not None and payload_sha256(tensors) != expected:
        raise DamagedFileError(path, "its tensors no longer match the SHA-256 gantk recorded when it wrote the file "
                               "(a disk or copy error, or an edit)", "Use another copy of it, or another checkpoint of "
                               "the run.")
    return tensors, metadata
