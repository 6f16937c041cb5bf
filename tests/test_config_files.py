"""gantk train --config FILE: a run's config.json reruns it bit for bit; JSON and TOML; flags > file > preset."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gantk.cli.train import new_run_config
from gantk.engine.config import TrainConfig
from gantk.engine.config_file import read_config_file
from gantk.errors import UsageError

from engine_helpers import tiny_cli_args


def trained(cli, *args: str) -> None:
    result = cli(*args)
    assert result.exit_code == 0, result.output


def in_runs(tmp_path: Path, name: str) -> list[str]:
    return ["--runs-dir", str(tmp_path), "--name", name]


def saved_config(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())


def differing_tensors(first: Path, second: Path) -> list[str]:
    """The names of the tensors that differ between two exported generators (every tensor compared)."""
    expected, actual = load_file(first), load_file(second)
    assert expected.keys() == actual.keys() and len(expected) >= 4
    return [name for name in expected if not torch.equal(expected[name], actual[name])]


def written(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_runs_config_json_reproduces_its_generator_bit_for_bit(cli, tmp_path):
    # a preset with options of its own, flags over it (-D adds to its norm=none), an EMA: CPU, fp32, one thread
    trained(cli, *tiny_cli_args("--preset", "wgan-gp", "--steps", "3", "--ema", "0.9", "--device", "cpu",
                                "--threads", "1", *in_runs(tmp_path, "x")))
    original = tmp_path / "x"
    assert saved_config(original)["preset"] == "gantk:wgan-gp"
    assert saved_config(original)["disc_options"] == {"norm": "none", "width": 8}
    trained(cli, "train", "--config", str(original / "config.json"), "--quiet", *in_runs(tmp_path, "y"))
    again = tmp_path / "y"
    assert saved_config(again) == saved_config(original)  # its preset, applied again, changed nothing
    assert differing_tensors(original / "generator.safetensors", again / "generator.safetensors") == []
    # so does the config.json of the model directory 'gantk export --out DIR/' writes (the run's, under "training")
    trained(cli, "export", str(original), "--out", f"{tmp_path / 'shared'}/")
    trained(cli, "train", "--config", str(tmp_path / "shared" / "config.json"), "--quiet",
            *in_runs(tmp_path, "from-model-dir"))
    assert differing_tensors(original / "generator.safetensors",
                             tmp_path / "from-model-dir" / "generator.safetensors") == []
    # the comparison can fail: another seed, given as a flag over the file, trains other weights
    trained(cli, "train", "--config", str(original / "config.json"), "--seed", "1", "--quiet",
            *in_runs(tmp_path, "z"))
    assert saved_config(tmp_path / "z") == {**saved_config(original), "seed": 1}
    assert differing_tensors(original / "generator.safetensors", tmp_path / "z" / "generator.safetensors")


def test_an_exported_preset_trains_what_the_preset_trains(cli, tmp_path):
    exported = cli("presets", "--export", "gan1d")
    assert exported.exit_code == 0, exported.output
    as_file = json.loads(exported.stdout)
    assert set(as_file) == {field.name for field in dataclasses.fields(TrainConfig)}  # every key, to edit
    assert (as_file["preset"], as_file["gen"], as_file["steps"]) == ("gantk:gan1d", "gantk:mlp", 5000)
    config_file = written(tmp_path / "gan1d.json", exported.stdout)
    quick = ["--steps", "3", "--threads", "1", "--quiet"]
    trained(cli, "train", "--preset", "gan1d", *quick, *in_runs(tmp_path, "preset"))
    trained(cli, "train", "--config", str(config_file), *quick, *in_runs(tmp_path, "file"))
    assert saved_config(tmp_path / "file") == saved_config(tmp_path / "preset")
    assert differing_tensors(tmp_path / "preset" / "generator.safetensors",
                             tmp_path / "file" / "generator.safetensors") == []


JSON_FILE = """{
  "gen": "dcgan", "dataset": "digits", "loss": "hinge+0.5*r1", "steps": 20, "ema": null, "image_size": null,
  "gen_options": {"width": 8, "z_dim": 16}, "disc_options": {"width": 8}, "loss_options": {"r1": {"every": 4}},
  "g_optimizer": {"lr": 0.001, "betas": [0.0, 0.9]}, "d_lr": 0.0004, "augment": "diffaugment:policy=color"
}"""
TOML_FILE = """
gen = "dcgan"
dataset = "digits"
loss = "hinge+0.5*r1"
steps = 20
ema = "off"           # TOML has no null
image_size = "none"
d_lr = 0.0004
augment = "diffaugment:policy=color"

[gen_options]
width = 8
z_dim = 16

[disc_options]
width = 8

[loss_options.r1]
every = 4

[g_optimizer]
lr = 0.001
betas = [0.0, 0.9]
"""


def test_toml_and_json_files_give_the_same_configuration(tmp_path):
    from_json = new_run_config(None, written(tmp_path / "c.json", JSON_FILE), {})
    from_toml = new_run_config(None, written(tmp_path / "c.toml", TOML_FILE), {})
    assert from_toml.to_dict() == from_json.to_dict()
    assert (from_json.ema, from_json.image_size, from_json.steps, from_json.disc) == (None, None, 20, "dcgan")
    assert (from_json.g_optimizer.lr, from_json.g_optimizer.betas) == (0.001, (0.0, 0.9))
    assert (from_json.d_optimizer.lr, from_json.d_optimizer.betas) == (0.0004, (0.5, 0.999))  # betas: the default
    assert from_json.loss_options == {"r1": {"every": 4}} and from_json.gen_options == {"width": 8, "z_dim": 16}


#: a run's config.json as a new run of the tiny DCGAN writes it (names qualified), less the keys left at defaults
SAVED = {"gen": "gantk:dcgan", "disc": "gantk:dcgan", "dataset": "gantk:digits", "loss": "gantk:ns", "steps": 5,
         "gen_options": {"width": 8, "z_dim": 16}, "disc_options": {"width": 8, "norm": "none"},
         "g_optimizer": {"name": "adam", "lr": 1e-4, "betas": [0.0, 0.9]},
         "d_optimizer": {"name": "adam", "lr": 3e-4, "betas": [0.0, 0.9]}}


def test_flags_override_the_file_by_the_preset_rules(tmp_path):
    saved = written(tmp_path / "config.json", json.dumps(SAVED))
    plain = new_run_config(None, saved, {})
    assert (plain.steps, plain.disc_options, plain.d_optimizer.lr) == (5, {"width": 8, "norm": "none"}, 3e-4)
    assert new_run_config(None, saved, {"steps": 9}).to_dict() == {**plain.to_dict(), "steps": 9}
    same_gen = new_run_config(None, saved, {"gen": "dcgan"})  # the file's gantk:dcgan: nothing replaced
    assert same_gen.to_dict() == plain.to_dict()
    other_gen = new_run_config(None, saved, {"gen": "mlp"})  # a new G drops the file's G options and D
    assert (other_gen.disc, other_gen.gen_options, other_gen.disc_options) == ("mlp", {}, {})
    wider = new_run_config(None, saved, {"gen_options": {"width": 16}})  # -G adds to the file's options
    assert wider.gen_options == {"width": 16, "z_dim": 16}
    both = new_run_config(None, saved, {"lr": 1e-3})  # --lr sets both networks, over the file's own rates
    assert (both.g_optimizer.lr, both.d_optimizer.lr, both.g_optimizer.betas) == (1e-3, 1e-3, (0.0, 0.9))


def test_a_model_directorys_config_json_trains_the_run_under_its_training_key(tmp_path):
    # gantk export RUN --out DIR/ writes the generator's description and, under "training", the run's config.json
    described = {"library_name": "gantk", "gantk_version": "0.1.0", "kind": "generator", "architecture": "dcgan",
                 "z_dim": 16, "training": SAVED}
    model_config = written(tmp_path / "config.json", json.dumps(described))
    run_config = written(tmp_path / "run.json", json.dumps(SAVED))
    assert new_run_config(None, model_config, {}).to_dict() == new_run_config(None, run_config, {}).to_dict()


def test_the_file_overrides_the_preset_and_may_name_it(tmp_path):
    steps_and_loss = written(tmp_path / "a.json", json.dumps({"steps": 7, "loss": "hinge"}))
    over_preset = new_run_config("wgan-gp", steps_and_loss, {})
    assert (over_preset.steps, over_preset.loss, over_preset.n_critic, over_preset.preset) == (7, "hinge", 5,
                                                                                             "wgan-gp")
    assert over_preset.disc_options == {"norm": "none"} and over_preset.d_optimizer.lr == 1e-4  # the preset's
    named = written(tmp_path / "b.json", json.dumps({"preset": "wgan-gp", "steps": 7, "loss": "hinge"}))
    assert new_run_config(None, named, {}).to_dict() == over_preset.to_dict()
    replaced = new_run_config("lsgan", named, {})  # --preset on the command line replaces the file's preset
    assert (replaced.preset, replaced.n_critic, replaced.steps) == ("lsgan", 1, 7)
    own_options = written(tmp_path / "c.json", json.dumps({"preset": "wgan-gp", "disc_options": {"width": 8}}))
    assert new_run_config(None, own_options, {}).disc_options == {"width": 8}  # a file's object replaces the preset's
    other_gen = written(tmp_path / "d.json", json.dumps({"preset": "wgan-gp", "gen": "mlp"}))
    assert (new_run_config(None, other_gen, {}).disc, new_run_config(None, other_gen, {}).disc_options) == ("mlp", {})


@pytest.mark.parametrize("name, text, words", [
    ("c.json", '{"stesp": 10}', "sets 'stesp', which is not a training option. Did you mean: steps"),
    ("c.json", '{"batch-size": 8}', "Did you mean: batch_size?"),
    ("c.json", '{"steps": "10"}', "The key 'steps' in"),
    ("c.toml", 'steps = "ten"', "must be an integer"),
    ("c.toml", 'image_size = true', 'TOML has no null: write "none"'),
    ("c.json", '{"g_optimizer": {"lr": "fast"}}', "'g_optimizer.lr' in"),
    ("c.json", '{"g_optimizer": {"momentum": 0.9}}', "'g_optimizer.momentum', which is not a training option"),
    ("c.json", '{"g_optimizer": {"lr": 0.001}, "g_lr": 0.002}', "g_optimizer.lr and g_lr, which are the same option"),
    ("c.json", '{"name": "mine"}', "give --name on the command line"),
    ("c.json", '{"steps": 10,}', "is not valid JSON"),
    ("c.toml", "steps = ", "is not valid TOML"),
    ("c.json", "[1, 2]", "holds a list, not a set of training options"),
    ("c.yaml", "steps: 3", "Name it .json or .toml"),
    ("c.json", '{"preset": "wgan-pg"}', "Unknown preset 'wgan-pg'. Did you mean: wgan-gp"),
])
def test_a_bad_config_file_is_one_paragraph_naming_the_key(cli, tmp_path, name, text, words):
    path = written(tmp_path / name, text)
    result = cli("train", "--config", str(path), "--quiet", "--runs-dir", str(tmp_path))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ") and words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert str(path) in result.stderr  # the message names the file
    assert not (tmp_path / "latest").exists()


def test_a_missing_file_a_folder_and_resume_are_refused(cli, tmp_path):
    missing = cli("train", "--config", str(tmp_path / "nope.json"), "--quiet")
    assert missing.exit_code == 2 and "Cannot read the config file" in missing.stderr
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    folder = cli("train", "--config", str(tmp_path / "run"), "--quiet")
    assert folder.exit_code == 2 and "is a folder" in folder.stderr and "run/config.json" in folder.stderr
    resumed = cli("train", "--resume", str(tmp_path / "run"), "--config", str(tmp_path / "run" / "config.json"))
    assert resumed.exit_code == 2 and "--config" in resumed.stderr and "--resume" in resumed.stderr


def test_reading_toml_without_tomllib_or_tomli_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tomllib", None)  # as on Python 3.10 without tomli
    monkeypatch.setitem(sys.modules, "tomli", None)
    with pytest.raises(UsageError, match="pip install tomli"):
        read_config_file(written(tmp_path / "c.toml", "steps = 3"))
    assert read_config_file(written(tmp_path / "c.json", '{"steps": 3}')) == {"steps": 3}  # JSON needs nothing


def test_presets_export_needs_a_preset_name(cli):
    result = cli("presets", "--export")
    assert result.exit_code == 2 and "gantk presets --export wgan-gp" in result.stderr
