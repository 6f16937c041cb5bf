"""Checkpoints and exports verify themselves; a resume skips a damaged checkpoint with one line and uses an older one."""

from __future__ import annotations

import json
import pickle
import shutil
import struct

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from gantk.engine.checkpoint import checkpoint_path, load_latest_checkpoint
from gantk.engine.run_export import export_run
from gantk.engine.safetensors_io import HASH_KEY, payload_sha256, read_metadata, read_safetensors
from gantk.engine.trainer import Trainer
from gantk.errors import GantkError

from engine_helpers import CHECKPOINTED, tiny_config


def contents(path):
    tensors = load_file(path)
    with safe_open(str(path), framework="pt") as handle:
        return tensors, dict(handle.metadata())


def rewrite(path, tensors, metadata, rehash=True):
    """Write a checkpoint as gantk would, but with the given (damaged) contents."""
    if rehash:
        metadata = {**metadata, HASH_KEY: payload_sha256(tensors)}
    save_file(tensors, str(path), metadata=metadata)


def finite_garbage(path):
    """Overwrite the first 16 bytes of a (generator) weight with finite numbers, in place (hash left as it was)."""
    data = bytearray(path.read_bytes())
    header_size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + header_size])
    name = next(key for key, info in sorted(header.items(), key=lambda item: not item[0].startswith("module/generator"))
                if key != "__metadata__" and info["dtype"] == "F32" and info["data_offsets"][1] - info["data_offsets"][0] >= 16)
    start = 8 + header_size + header[name]["data_offsets"][0]
    data[start:start + 16] = struct.pack("<4f", 0.25, -0.5, 0.75, 1.5)
    path.write_bytes(bytes(data))


def resume(run, capsys, steps=6):
    trainer = Trainer(tiny_config(steps=steps, **CHECKPOINTED), run, resume=True, show_progress=False)
    notes = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return trainer, notes


def test_every_written_file_records_the_sha256_of_its_tensors(checkpointed_run):
    for path in (checkpoint_path(checkpointed_run, 4), checkpointed_run / "generator.safetensors"):
        tensors, metadata = contents(path)
        assert metadata[HASH_KEY] == payload_sha256(tensors)


def test_finite_garbage_in_the_newest_checkpoint_is_skipped_and_the_run_matches_one_resumed_from_the_previous(
        run, tmp_path, capsys):
    reference = tmp_path / "reference"
    shutil.copytree(run, reference)
    checkpoint_path(reference, 4).unlink()
    finite_garbage(checkpoint_path(run, 4))

    trainer, notes = resume(run, capsys)
    assert trainer.step == 2
    assert len(notes) == 1 and "step_000004.safetensors" in notes[0] and "SHA-256" in notes[0]
    trainer.train()
    Trainer(tiny_config(steps=6, **CHECKPOINTED), reference, resume=True, show_progress=False).train()
    (tensors, metadata), (expected, expected_metadata) = (contents(r / "generator.safetensors") for r in (run, reference))
    assert metadata == expected_metadata  # the same SHA-256 of the tensors: bit for bit the same export
    assert tensors.keys() == expected.keys() and all(torch.equal(tensors[k], expected[k]) for k in tensors)


def drop_state(tensors, metadata):
    return tensors, {key: value for key, value in metadata.items() if key != "gantk.state"}


def garbage_state(tensors, metadata):
    return tensors, {**metadata, "gantk.state": "{not json"}


def drop_tensor(tensors, metadata):
    name = next(key for key in tensors if key.startswith("module/discriminator/"))
    return {key: value for key, value in tensors.items() if key != name}, metadata


def misshapen_tensor(tensors, metadata):
    name = next(key for key in tensors if key.startswith("optim/generator/") and tensors[key].dim() > 1)
    return {**tensors, name: tensors[name][:1].clone()}, metadata


def nan_weights(tensors, metadata):
    name = next(key for key in tensors if key.startswith("module/generator/") and tensors[key].is_floating_point())
    broken = tensors[name].clone()
    broken.view(-1)[0] = float("nan")
    return {**tensors, name: broken}, metadata


@pytest.mark.parametrize("damage, words", [
    (drop_state, "no gantk.state"),
    (garbage_state, "gantk.state metadata is not valid JSON"),
    (drop_tensor, "does not fit this run"),
    (misshapen_tensor, "does not fit this run"),
    (nan_weights, "not finite"),
])
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(run, capsys, damage, words):
    path = checkpoint_path(run, 4)
    rewrite(path, *damage(*contents(path)))
    trainer, notes = resume(run, capsys)
    assert trainer.step == 2 and trainer.last_checkpoint == checkpoint_path(run, 2)
    assert len(notes) == 1 and "step_000004.safetensors" in notes[0] and words in notes[0], notes
    assert checkpoint_path(run, 2).name in trainer._kept_message()  # what a NonFiniteLossError would name


def test_no_usable_checkpoint_is_a_clear_error(run, capsys):
    for step in (2, 4):
        finite_garbage(checkpoint_path(run, step))
    with pytest.raises(GantkError) as info:
        Trainer(tiny_config(steps=6, **CHECKPOINTED), run, resume=True, show_progress=False)
    assert "Cannot resume" in str(info.value) and "none of its 2 checkpoint(s)" in str(info.value)
    assert len(capsys.readouterr().err.strip().splitlines()) == 2
    assert not (run / ".lock").exists()  # a failed resume lets go of the run


def test_export_of_a_run_uses_the_newest_checkpoint_that_verifies(run, tmp_path, capsys):
    expected = load_latest_checkpoint(run)
    assert expected.step == 4
    finite_garbage(checkpoint_path(run, 4))
    out = export_run(run, tmp_path / "g.safetensors")
    assert "step_000004.safetensors" in capsys.readouterr().err
    assert json.loads(read_metadata(out)["gantk.config"])["step"] == 2


def test_a_damaged_export_is_refused_and_a_file_without_a_hash_still_loads(checkpointed_run, tmp_path):
    damaged = tmp_path / "damaged.safetensors"
    shutil.copy(checkpointed_run / "generator.safetensors", damaged)
    finite_garbage(damaged)
    with pytest.raises(GantkError, match="is damaged: its tensors no longer match the SHA-256"):
        read_safetensors(damaged)
    tensors, metadata = contents(checkpointed_run / "generator.safetensors")
    plain = tmp_path / "plain.safetensors"
    save_file(tensors, str(plain), metadata={k: v for k, v in metadata.items() if k != HASH_KEY})
    assert read_safetensors(plain)[0].keys() == tensors.keys()


def test_pickles_symlink_loops_and_directories_get_their_own_message(tmp_path):
    zipped, raw = tmp_path / "model.pt", tmp_path / "model.pkl"
    torch.save({"weight": torch.zeros(2)}, zipped)  # written, never loaded
    raw.write_bytes(pickle.dumps({"weight": [0.0]}, protocol=4))
    for path in (zipped, raw):
        for read in (read_metadata, read_safetensors):
            with pytest.raises(GantkError, match="this is a pickle \\(PyTorch .pt/.pth\\) file; gantk never loads "
                                                 "pickles; convert it to safetensors with safetensors.torch.save_file"):
                read(path)
    loop = tmp_path / "loop.safetensors"
    loop.symlink_to(tmp_path / "other.safetensors")
    (tmp_path / "other.safetensors").symlink_to(loop)
    with pytest.raises(GantkError, match="symbolic link loop"):
        read_metadata(loop)
    with pytest.raises(GantkError, match="is a directory, not a safetensors file"):
        read_safetensors(tmp_path)
