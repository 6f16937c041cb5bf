"""``gantk weights convert``: pytorch-fid's Inception-v3 weights (a PyTorch pickle) to gantk's safetensors layout.

FID (Heusel et al. 2017) is reported with the Inception-v3 weights of the 2015-12-05 TensorFlow graph
(Szegedy et al. 2016); the pytorch-fid project publishes them, ported to PyTorch, as the pickled state
dict ``pt_inception-2015-12-05-6726825d.pth``. gantk unpickles nothing anywhere else: only here, when
the user asks for this conversion, and then only with ``torch.load(weights_only=True)``, PyTorch's
restricted unpickler that builds tensors and plain containers and refuses other objects.

pytorch-fid builds torchvision's Inception3 and loads the file into it strictly, so the file's names
are torchvision's; gantk's FID network (``FIDInception3``) subclasses Inception3 and keeps them. The map
between the two layouts therefore keeps every name. It drops BatchNorm's step counters (unused in
eval mode, present in some saves and not others), makes each tensor a contiguous float32 copy and
checks every name and shape against gantk's network. The output depends only on the source file, so
converting the same file twice gives the same bytes, and the same SHA-256 in each score's protocol.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import typer

import gantk
from gantk.errors import GantkError, UsageError
from gantk.options import choice

#: The layouts ``--format`` accepts.
FORMATS = ("pytorch-fid",)
#: The metadata that marks a converted file (``gantk info`` shows it).
KIND = "inception-weights"
_COUNTER_SUFFIX = "num_batches_tracked"


# ------------------------------------------------------------------------------ the arguments
def _check_source(source: Path) -> None:
    from gantk.plugins.metrics.inception import INCEPTION_ENV, PTH_NAME, PTH_URL

    if source.is_dir():
        raise UsageError(f"'{source}' is a folder. Give the weights file itself, e.g. {source / PTH_NAME}.")
    if not source.is_file():
        raise UsageError(f"'{source}' does not exist or is not a file. Give the path of pytorch-fid's weights file "
                         f"{PTH_NAME}, downloaded from {PTH_URL}.")
    if source.suffix.lower() == ".safetensors":
        raise UsageError(f"'{source}' is already a safetensors file, which gantk reads without conversion: pass it "
                         f"with --inception-weights {source} or set {INCEPTION_ENV} (gantk checks its tensors when "
                         "it loads them).")


def _check_out(out: Path, force: bool) -> None:
    if out.suffix.lower() != ".safetensors":
        raise UsageError(f"The converted weights are a safetensors file: give --out a name ending in .safetensors "
                         f"(got '{out}').")
    if out.is_dir():
        raise UsageError(f"--out '{out}' is a folder; give the path of the file to write, e.g. "
                         f"{out / 'pt_inception-2015-12-05.safetensors'}.")
    if out.exists() and not force:
        raise UsageError(f"'{out}' already exists. Add --force to replace it, or choose another --out.")


# ------------------------------------------------------------------------------ reading the pickle
def _looks_like_torch_save(source: Path) -> bool:
    """torch.save's zip archive, or a legacy pickle (protocol 2+ starts with 0x80)."""
    with source.open("rb") as handle:
        head = handle.read(4)
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def _not_a_checkpoint(source: Path, detail: str) -> GantkError:
    from gantk.plugins.metrics.inception import PTH_NAME, PTH_URL

    return GantkError(f"Cannot read '{source}' as a PyTorch weights file: {detail}. It may be truncated (an "
                      f"interrupted download) or another format. Download {PTH_NAME} again from {PTH_URL} and "
                      "convert that file.")


def _unpickle(source: Path) -> object:
    """The object in ``source``, through PyTorch's restricted unpickler only (``weights_only=True``)."""
    import pickle

    import torch

    if not _looks_like_torch_save(source):
        raise _not_a_checkpoint(source, "it is not a file written by torch.save (neither a zip archive nor a pickle)")
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        message = str(error)
        if "Unsupported global" in message or "Unsupported class" in message:
            raise GantkError(
                f"'{source}' holds Python objects besides tensors (a whole pickled model rather than its "
                "state_dict, or a training checkpoint with optimizer or config objects). gantk unpickles only with "
                "torch.load(weights_only=True), which refuses to build such objects, so that no code in the file "
                "runs. Save the network's state_dict() alone with torch.save (in a Python session you trust) and "
                "convert that file.") from error
        raise _not_a_checkpoint(source, _first_line(message)) from error
    except (RuntimeError, EOFError, ValueError, OSError, KeyError) as error:
        raise _not_a_checkpoint(source, _first_line(str(error)) or type(error).__name__) from error


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if lines and lines[0].startswith("Weights only load failed") and len(lines) > 1:
        return lines[-1]  # PyTorch's advice about weights_only first, the actual problem last
    return lines[0] if lines else ""


def _state_dict(source: Path, loaded: object) -> Mapping:
    """``loaded`` if it maps names to tensors; a paragraph saying what it is otherwise."""
    import torch

    from gantk.plugins.metrics.inception import first_names

    if not isinstance(loaded, Mapping):
        raise GantkError(f"'{source}' holds a {type(loaded).__name__}, not a state dict (a mapping from parameter "
                         "names to tensors, what module.state_dict() returns). Convert pytorch-fid's weights file, "
                         "which is one.")
    others = [f"{name!r} ({type(value).__name__})" for name, value in loaded.items()
              if not (isinstance(name, str) and isinstance(value, torch.Tensor))]
    if others:
        nested = [name for name, value in loaded.items() if isinstance(value, Mapping)]
        hint = (f" Its entry {nested[0]!r} is itself a mapping: if the weights sit under that key (a training "
                f"checkpoint), save that entry alone with torch.save(checkpoint[{nested[0]!r}], 'weights.pth') "
                "and convert that file." if nested else "")
        raise GantkError(f"'{source}' is not a state dict: besides tensors it holds {first_names(others)}; a "
                         f"state dict maps parameter names to tensors.{hint}")
    return loaded


# ------------------------------------------------------------------------------ the layouts
def pytorch_fid_to_gantk(source: Path, state: Mapping) -> dict:
    """gantk's tensors from pytorch-fid's state dict (names kept, step counters dropped, float32), checked.

    A :class:`GantkError` naming ``source`` lists what does not fit gantk's FID Inception-v3: missing
    tensors, tensors that are not part of it, wrong shapes or types (a few of each).
    """
    import torch

    from gantk.plugins.metrics.inception import PTH_NAME, PTH_URL, first_names, layout_problems

    if any(name.startswith("blocks.") for name in state):
        raise GantkError(f"'{source}' holds the state of pytorch-fid's InceptionV3 wrapper (names like "
                         "blocks.0.0.conv.weight), which leaves out the 1008-class layer (fc) that gantk's Inception "
                         f"Score uses. Convert the release file {PTH_NAME} ({PTH_URL}) itself: it holds the whole "
                         "network.")
    tensors = {name: tensor for name, tensor in state.items() if not name.endswith(_COUNTER_SUFFIX)}
    problems = layout_problems(tensors)
    not_float = sorted(f"{name} ({tensor.dtype})" for name, tensor in tensors.items()
                       if not tensor.is_floating_point())
    if not_float:
        problems.append(f"{len(not_float)} tensor(s) not of a floating-point type ({first_names(not_float)})")
    if problems:
        imagenet = any(name.startswith("AuxLogits.") for name in state) or (
            "fc.weight" in state and state["fc.weight"].shape[:1] == (1000,))
        hint = (" It looks like torchvision's ImageNet Inception-v3 (1000 classes, an auxiliary head), which has "
                "other weights than FID's network." if imagenet else "")
        raise GantkError(f"'{source}' does not hold the Inception-v3 of FID in pytorch-fid's layout: "
                         f"{'; '.join(problems)}.{hint} Convert {PTH_NAME}, downloaded from {PTH_URL}.")
    return {name: tensor.detach().to(torch.float32).contiguous().clone() for name, tensor in tensors.items()}


# ------------------------------------------------------------------------------ writing
def _serialise(tensors: dict, source_sha256: str, source_format: str) -> bytes:
    """The safetensors bytes of ``tensors``, with the metadata gantk files carry (their own SHA-256 included)."""
    from safetensors.torch import save as save_bytes

    from gantk.engine.safetensors_io import HASH_KEY, payload_sha256

    metadata = {"format": "pt", "gantk.kind": KIND, "gantk.source_format": source_format,
                "gantk.source_sha256": source_sha256, HASH_KEY: payload_sha256(tensors)}
    return _with_sorted_header(save_bytes(tensors, metadata=metadata))


def _with_sorted_header(data: bytes) -> bytes:
    """``data`` with its JSON header's keys sorted, so that the same tensors and metadata give the same bytes.

    A safetensors file is an 8-byte little-endian header length, a JSON header, then the tensor
    bytes (offsets in the header count from the end of the header, so the header may be rewritten).
    safetensors writes the metadata map in an order that changes from one call to the next.
    """
    length = int.from_bytes(data[:8], "little")
    header = json.dumps(json.loads(data[8:8 + length]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # padded with spaces to a multiple of 8 bytes, as safetensors does
    return len(header).to_bytes(8, "little") + header + data[8 + length:]


def convert_command(
    source: Path = typer.Argument(..., help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth (read with "
                                            "torch.load(weights_only=True): the only pickle gantk ever reads, and "
                                            "only when you run this command)."),
    out: Path = typer.Option(..., "--out", help="The safetensors file to write (e.g. "
                                                "pt_inception-2015-12-05.safetensors)."),
    source_format: str = typer.Option("pytorch-fid", "--format", help="The layout of SOURCE: pytorch-fid (the "
                                                                      "release file of the pytorch-fid project)."),
    force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
) -> None:
    """Convert FID's Inception-v3 weights from pytorch-fid's .pth to the .safetensors file gantk reads.

    The .pth is a pickle; this command is the only place gantk unpickles, through
    torch.load(weights_only=True), which builds tensors and plain containers only. Use the result with
    --inception-weights PATH or GANTK_INCEPTION_WEIGHTS.
    """
    from gantk.engine.atomic_files import write_atomic
    from gantk.memory_budget import format_size
    from gantk.plugins.metrics.features import file_sha256
    from gantk.plugins.metrics.inception import INCEPTION_ENV, PTH_NAME, PTH_SHA256_PREFIX

    source_format = choice("", "--format", source_format, FORMATS, hint="the layout of the source file")
    source, out = source.expanduser(), out.expanduser()
    _check_source(source)
    _check_out(out, force)
    source_sha256 = file_sha256(source)
    tensors = pytorch_fid_to_gantk(source, _state_dict(source, _unpickle(source)))
    values = sum(tensor.numel() for tensor in tensors.values())
    typer.echo(f"Read {source}: {len(tensors)} tensors ({values:,} values), SHA-256 {source_sha256}.")
    if not source_sha256.startswith(PTH_SHA256_PREFIX):
        typer.echo(f"Note: this is not pytorch-fid's release file {PTH_NAME}, whose SHA-256 begins with "
                   f"{PTH_SHA256_PREFIX} (the digits in its name), so FIDs computed with it do not compare with "
                   "published ones.", err=True)
    data = _serialise(tensors, source_sha256, source_format)
    try:
        write_atomic(out, data)
    except OSError as error:
        raise GantkError(f"Could not write '{out}' ({error.strerror or error}); nothing was replaced. Free some "
                         "space or fix the folder's permissions, or choose another --out.") from error
    typer.echo(f"Wrote {out} ({format_size(len(data))}), SHA-256 {hashlib.sha256(data).hexdigest()}.")
    typer.echo(f"Use it with --inception-weights {out}, or: export {INCEPTION_ENV}={out.resolve()}")


@gantk.hookimpl
def register_commands(app: typer.Typer) -> None:
    weights = typer.Typer(help="Convert pretrained weights to the safetensors files gantk reads.",
                          no_args_is_help=True)
    weights.command("convert")(convert_command)
    app.add_typer(weights, name="weights")
