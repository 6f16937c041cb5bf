"""Model directories: ``gantk export RUN --out DIR/`` (config.json, model.safetensors, README.md, samples.png),
read back by gantk.load_generator and gantk sample, and by huggingface_hub's own tools, offline."""

from __future__ import annotations

import importlib
import json
import shlex
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import gantk
from gantk.engine.model_dir import names_a_directory
from gantk.engine.safetensors_io import read_safetensors
from gantk.engine.sampling import draw

from engine_helpers import tiny_config

#: What `gantk eval` writes (plugins/tools/eval_result.py), as the card must report it.
EVAL_PROTOCOL = {"metric": "fid", "extractor": "classifier", "feature_dim": 128, "weights_sha256": "ab" * 32,
                 "real_samples": 1797, "generated_samples": 1797, "seed": 0, "dataset": "digits",
                 "data_sha256": "cd" * 32, "gantk_version": gantk.__version__}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run with an EMA, a `gantk eval` result of its generator.safetensors and a --keep-best record."""
    from gantk.engine.trainer import Trainer

    run = tmp_path_factory.mktemp("hub") / "run"
    Trainer(tiny_config(steps=4, ema=0.9), run, show_progress=False).train()
    result = {"generator": str(run / "generator.safetensors"), "run": str(run), "dataset": "digits",
              "values": {"fid": 123.25}, "protocol": {"fid": EVAL_PROTOCOL}, "device": "cpu", "seconds": 1.0,
              "gantk_version": gantk.__version__}
    (run / "eval").mkdir()
    (run / "eval" / "20261130-101500.json").write_text(json.dumps(result))
    (run / "best.json").write_text(json.dumps({"step": 2, "metric": "fid", "value": 99.5, "lower_is_better": True}))
    return run


@pytest.fixture
def exported(trained, tmp_path, cli):
    """The run exported both ways: (model directory, single file)."""
    directory, single = tmp_path / "digits-dcgan", tmp_path / "g.safetensors"
    result = cli("export", str(trained), "--out", f"{directory}/")
    assert result.exit_code == 0, result.output
    assert cli("export", str(trained), "--out", str(single)).exit_code == 0
    return directory, single


def test_the_directory_round_trip_gives_the_single_files_tensors_and_samples(exported):
    directory, single = exported
    assert sorted(path.name for path in directory.iterdir()) == ["README.md", "config.json", "model.safetensors",
                                                                 "samples.png"]
    # model.safetensors is the single-file export: same tensors, same metadata header
    (dir_tensors, dir_metadata), (file_tensors, file_metadata) = map(read_safetensors, (directory / "model.safetensors",
                                                                                          single))
    assert dir_metadata == file_metadata and dir_tensors.keys() == file_tensors.keys()
    assert all(torch.equal(dir_tensors[name], file_tensors[name]) for name in file_tensors)
    from_directory, from_file = gantk.load_generator(directory), gantk.load_generator(single)
    assert from_directory.spec == from_file.spec and from_directory.z_dim == from_file.z_dim == 16
    assert torch.equal(draw(from_directory, 9, seed=3), draw(from_file, 9, seed=3))


def test_config_json_describes_the_generator_and_holds_the_run_config(exported, trained):
    config = json.loads((exported[0] / "config.json").read_text())
    assert config["library_name"] == "gantk" and config["architecture"] == "dcgan"
    assert config["plugin"] == f"gantk=={gantk.__version__}" and config["gantk_version"] == gantk.__version__
    assert config["spec"] == {"shape": [1, 8, 8], "num_classes": 10, "name": "digits"} and config["z_dim"] == 16
    assert config["options"]["width"] == 8 and config["ema"] is True and config["step"] == 4
    assert config["conditional"] is False  # digits has 10 classes, but this DCGAN ignores them
    assert config["training"] == json.loads((trained / "config.json").read_text())


def test_the_card_reports_the_run_and_its_metrics_with_their_protocol(exported):
    card = (exported[0] / "README.md").read_text()
    front, body = card.split("---\n")[1], card.split("---\n", 2)[2]
    assert "library_name: gantk" in front and '- "digits"' in front and '- "fid"' in front
    assert "pipeline_tag: unconditional-image-generation" in front and "license" not in front
    assert "step 4 of 4" in body and "gantk train --config config.json" in body
    assert "![64 samples, seed 0](samples.png)" in body
    assert 'gantk.load_generator("digits-dcgan")' in body
    # the gantk eval result: its value, that it scored these very weights, and its protocol as recorded
    assert "| fid | 123.25 |" in body and "(these weights)" in body
    assert "features: classifier, 128-d" in body and "1797 real / 1797 generated samples" in body
    assert "seed 0" in body and "Best `fid` during training: 99.5 at step 2" in body


def test_the_cards_flags_rebuild_the_runs_configuration(exported):
    import typer.main

    from gantk.cli.app import build_app
    from gantk.cli.train import explicit_options
    from gantk.engine.config import TrainConfig

    card = (exported[0] / "README.md").read_text()
    command = next(line for line in card.splitlines() if line.startswith("gantk train --") and "--config" not in line)
    train = typer.main.get_command(build_app()).commands["train"]
    with train.make_context("train", shlex.split(command)[2:]) as context:
        rebuilt = TrainConfig.from_options(explicit_options(context.params)).to_json_dict()
    recorded = json.loads((exported[0] / "config.json").read_text())["training"]
    assert rebuilt == {**recorded, "preset": None}


def test_the_cards_train_command_trains_the_same_weights_again(exported, cli, tmp_path):
    directory = exported[0]
    result = cli("train", "--config", str(directory / "config.json"), "--name", "again", "--runs-dir",
                 str(tmp_path / "runs"), "--quiet")
    assert result.exit_code == 0, result.output
    again, _ = read_safetensors(tmp_path / "runs" / "again" / "generator.safetensors")
    original, _ = read_safetensors(directory / "model.safetensors")
    assert again.keys() == original.keys() and all(torch.equal(again[k], original[k]) for k in original)


def test_the_sample_grid_is_what_gantk_sample_draws(exported, cli, tmp_path):
    directory = exported[0]
    result = cli("sample", str(directory), "--n", "64", "--seed", "0", "--out", str(tmp_path / "again.png"))
    assert result.exit_code == 0, result.output
    grid = np.asarray(Image.open(directory / "samples.png"))
    assert grid.shape[:2] == (8 * 8 + 9 * 2,) * 2  # 8×8 images of 8 pixels, 2-pixel padding
    assert np.array_equal(grid, np.asarray(Image.open(tmp_path / "again.png")))


def test_a_non_empty_directory_is_replaced_only_with_overwrite(trained, exported, cli):
    directory = exported[0]
    (directory / ".gitattributes").write_text("*.safetensors filter=lfs\n")
    before = (directory / "model.safetensors").read_bytes()
    refused = cli("export", str(trained), "--out", str(directory))
    assert refused.exit_code == 2 and "--overwrite" in refused.stderr and "\n" not in refused.stderr.strip()
    replaced = cli("export", str(trained), "--no-ema", "--out", str(directory), "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert (directory / "model.safetensors").read_bytes() != before  # the trained weights now, not the EMA's
    assert (directory / ".gitattributes").is_file()  # the user's own files stay
    assert not [path for path in directory.parent.iterdir() if path.name.startswith(".digits-dcgan")]


def test_overwrite_never_replaces_a_directory_gantk_did_not_write(trained, tmp_path, cli):
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("keep me")
    result = cli("export", str(trained), "--out", str(foreign), "--overwrite")
    assert result.exit_code == 2 and "not a model directory written by gantk" in result.stderr
    assert [path.name for path in foreign.iterdir()] == ["todo.txt"]


def test_a_directory_without_weights_is_one_paragraph(exported, cli):
    directory = exported[0]
    (directory / "model.safetensors").unlink()
    with pytest.raises(gantk.GantkError, match="has no model.safetensors"):
        gantk.load_generator(directory)
    result = cli("sample", str(directory), "--out", str(directory.parent / "s.png"))
    assert result.exit_code == 1 and result.stderr.startswith("Error: ")
    assert "model.safetensors" in result.stderr and "\n" not in result.stderr.strip()


def test_a_config_json_that_describes_another_generator_is_refused(exported):
    directory = exported[0]
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, "z_dim": 32}))
    with pytest.raises(gantk.GantkError, match="differ in z_dim"):
        gantk.load_generator(directory)


@pytest.mark.parametrize("out, is_directory", [("exports/model/", True), ("exports/model", True),
                                               ("g.safetensors", False), ("exports/g.st", False)])
def test_what_out_names(out, is_directory):
    assert names_a_directory(out) is is_directory


# ----------------------------------------------------------------------------- huggingface_hub, offline
@pytest.fixture
def offline_hub(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub = pytest.importorskip("huggingface_hub")
    constants = importlib.import_module("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True, raising=False)  # read at import: set it here too
    return hub


def test_huggingface_hub_loads_the_directory_and_parses_the_card_offline(offline_hub, exported):
    from gantk.engine.hub import PretrainedGenerator

    directory, single = exported
    generator = PretrainedGenerator.from_pretrained(str(directory))
    expected = gantk.load_generator(single)
    assert isinstance(generator, torch.nn.Module) and not generator.training
    assert all(torch.equal(value, expected.state_dict()[key]) for key, value in generator.state_dict().items())
    card = offline_hub.ModelCard.load(directory / "README.md")
    assert card.data.library_name == "gantk" and card.data.datasets == ["digits"]
    assert {"gantk", "gan", "dcgan"} <= set(card.data.tags) and card.data.metrics == ["fid"]


def test_save_pretrained_writes_the_same_directory(offline_hub, exported, trained, tmp_path):
    from gantk.engine.hub import PretrainedGenerator

    saved = tmp_path / "saved"
    PretrainedGenerator(trained).save_pretrained(saved)
    assert sorted(path.name for path in saved.iterdir()) == sorted(path.name for path in exported[0].iterdir())
    for name in ("config.json", "samples.png"):
        assert (saved / name).read_bytes() == (exported[0] / name).read_bytes(), name
    (saved_tensors, saved_metadata), (tensors, metadata) = map(read_safetensors, (saved / "model.safetensors",
                                                                           exported[0] / "model.safetensors"))
    assert saved_metadata == metadata and all(torch.equal(saved_tensors[k], tensors[k]) for k in tensors)
    copied = tmp_path / "copied"
    PretrainedGenerator(exported[0]).save_pretrained(copied)  # a model directory is saved as it is
    assert (copied / "README.md").read_text() == (exported[0] / "README.md").read_text()


def test_without_huggingface_hub_the_hub_module_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import huggingface_hub now raises ImportError
    monkeypatch.delitem(sys.modules, "gantk.engine.hub", raising=False)
    with pytest.raises(gantk.UsageError, match=r"pip install 'gantk\[hub\]'"):
        importlib.import_module("gantk.engine.hub")
