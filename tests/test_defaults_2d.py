"""Defaults for 2-D data (issue 18, part 5): a bare --dataset trains its own preset, auto precision is fp32 for
vectors, the EMA warms up (and old runs keep training without it), and a collapsed EMA generator is warned about."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import gantk
from engine_helpers import tiny_cli_args, tiny_config
from gantk.cli.train import new_run_config
from gantk.engine import precision as precision_module
from gantk.engine.checkpoint import load_latest_checkpoint
from gantk.engine.config import TrainConfig
from gantk.engine.config_file import read_config_file
from gantk.engine.ema import EMA, SpreadCheck
from gantk.engine.precision import PrecisionPolicy
from gantk.engine.trainer import Trainer

NOTE = "gantk: note: --dataset ring8 alone trains the 'ring8' preset"
QUICK = ["--steps", "2", "--num-samples", "64", "--threads", "1", "--quiet"]


def in_runs(tmp_path, name: str) -> list[str]:
    return ["--runs-dir", str(tmp_path), "--name", name]


def saved(run) -> dict:
    return json.loads((run / "config.json").read_text())


# --------------------------------------------------------------------------- the bare data-set rule
def test_a_bare_dataset_trains_its_preset_and_says_so_once(cli, tmp_path):
    result = cli("train", "--dataset", "ring8", "--seed", "3", *QUICK, *in_runs(tmp_path, "bare"))
    assert result.exit_code == 0, result.output
    entry = gantk.get_registry().get("preset", "ring8")
    notes = [line for line in result.stderr.splitlines() if line.startswith("gantk: note: --dataset")]
    assert len(notes) == 1 and notes[0].startswith(NOTE)
    assert entry.summary.rstrip(".") in notes[0] and "for 2 steps" in notes[0]  # the registry's words, the run's steps
    config = saved(tmp_path / "bare")
    preset = entry.create()
    assert config["preset"] == "gantk:ring8" and config["gen"] == "gantk:mlp"
    # the preset's networks (PacGAN's: a 2-d latent, four hidden layers), the flags given over it
    assert config["gen_options"] == json.loads(json.dumps(preset["gen_options"]))
    assert config["gen_options"]["z_dim"] == 2 and len(config["gen_options"]["hidden"]) == 4
    assert config["disc_options"] == json.loads(json.dumps(preset["disc_options"]))
    assert (config["steps"], config["seed"], config["batch_size"]) == (2, 3, preset["batch_size"])
    components = json.loads((tmp_path / "bare" / "components.json").read_text())
    assert components["generator"]["options"]["z_dim"] == 2


def test_naming_what_to_train_turns_the_rule_off(cli, tmp_path):
    result = cli("train", "--dataset", "ring8", "--gen", "mlp", *QUICK, *in_runs(tmp_path, "mlp"))
    assert result.exit_code == 0, result.output
    assert "gantk: note: --dataset" not in result.stderr
    config = saved(tmp_path / "mlp")
    assert config["preset"] is None and config["gen_options"] == {}


@pytest.mark.parametrize("given", [{"loss": "ns"}, {"disc": "mlp"}, {"gen": "mlp"}])
def test_gen_disc_or_loss_keep_the_defaults(given, capsys):
    config = new_run_config(None, None, {"dataset": "ring8", **given})
    assert config.preset is None and config.steps == TrainConfig().steps
    assert "gantk: note" not in capsys.readouterr().err


def test_a_preset_or_a_config_file_is_used_instead(tmp_path, capsys):
    assert new_run_config("gan1d", None, {"dataset": "ring8"}).preset == "gan1d"
    config_file = tmp_path / "mine.json"
    config_file.write_text(json.dumps({"steps": 7}))
    from_file = new_run_config(None, config_file, {"dataset": "ring8"})
    assert from_file.preset is None and from_file.steps == 7 and from_file.gen == "dcgan"
    assert "gantk: note" not in capsys.readouterr().err


def test_a_dataset_without_a_preset_of_its_name_is_unchanged(capsys):
    assert "digits" not in gantk.get_registry().names("preset")
    config = new_run_config(None, None, {"dataset": "digits"})
    assert (config.preset, config.gen, config.dataset) == (None, "dcgan", "digits")
    assert "gantk: note" not in capsys.readouterr().err


THIRD_PARTY_PRESETS = """
import gantk

def same_data():
    \"\"\"Digits with a narrow DCGAN.\"\"\"
    return {"dataset": "digits", "gen_options": {"width": 8}, "steps": 11}

def other_data():
    \"\"\"Named like a data set, trains another.\"\"\"
    return {"dataset": "mnist5k", "steps": 12}

@gantk.hookimpl
def register_presets(register):
    register("digits", same_data)
    register("fashion-mnist", other_data)
"""


def test_a_third_party_data_set_opts_in_with_a_preset_of_its_name_that_trains_on_it(fake_package, capsys):
    fake_package("gantk-digit-presets", {"digit_presets": THIRD_PARTY_PRESETS}, {"presets": "digit_presets"})
    config = new_run_config(None, None, {"dataset": "digits"})
    assert (config.preset, config.steps, config.gen_options) == ("digits", 11, {"width": 8})
    assert "'digits' preset (Digits with a narrow DCGAN) for 11 steps" in capsys.readouterr().err
    other = new_run_config(None, None, {"dataset": "fashion-mnist"})  # its preset trains on mnist5k: not applied
    assert other.preset is None and other.dataset == "fashion-mnist"


# --------------------------------------------------------------------------- precision
@pytest.mark.parametrize("fast_bf16", [True, False])
def test_auto_precision_is_fp32_for_vectors_and_bf16_for_images_where_fast(monkeypatch, fast_bf16):
    monkeypatch.setattr(precision_module, "cpu_has_fast_bf16", lambda: fast_bf16)
    cpu = torch.device("cpu")
    assert PrecisionPolicy.resolve("auto", cpu, is_image=False).name == "fp32"
    assert PrecisionPolicy.resolve("auto", cpu, is_image=True).name == ("bf16" if fast_bf16 else "fp32")
    assert PrecisionPolicy.resolve("bf16", cpu, is_image=False).name == "bf16"  # asked for: given


# --------------------------------------------------------------------------- EMA warm-up
def test_warmup_decay_follows_tensorflows_num_updates_rule():
    ema = EMA(nn.Linear(1, 1), 0.999)
    decays = {}
    for t in (0, 1, 10, 1_000_000):
        ema.updates = t
        decays[t] = ema.decay()
    assert decays[0] == pytest.approx(0.1) and decays[1] == pytest.approx(2 / 11)
    assert decays[10] == pytest.approx(11 / 20) and decays[1_000_000] == 0.999
    assert EMA(nn.Linear(1, 1), 0.999, warmup=False).decay() == 0.999


def test_an_update_uses_the_warmed_up_decay_and_counts():
    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)
    ema, plain = EMA(model, 0.999), EMA(model, 0.999, warmup=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update()
    plain.update()
    assert ema.model.weight.item() == pytest.approx(0.9)  # 0.1·0 + 0.9·1: the initial weight is nearly gone
    assert plain.model.weight.item() == pytest.approx(0.001)  # β = 0.999 keeps 99.9 % of it
    assert (ema.updates, plain.updates) == (1, 1)


def test_resume_keeps_the_update_count(tmp_path):
    config = dict(ema=0.99, checkpoint_every=3)
    straight = Trainer(tiny_config(steps=6, **config), tmp_path / "straight", show_progress=False)
    straight.train()
    Trainer(tiny_config(steps=3, **config), tmp_path / "split", show_progress=False).train()
    assert load_latest_checkpoint(tmp_path / "split").extra()["ema_updates"] == 3
    resumed = Trainer(tiny_config(steps=6, **config), tmp_path / "split", resume=True, show_progress=False)
    assert resumed.ema.updates == 3 and resumed.ema.warmup
    resumed.train()
    assert resumed.ema.updates == 6
    for key, value in straight.ema.model.state_dict().items():
        assert torch.equal(resumed.ema.model.state_dict()[key], value), key


# --------------------------------------------------------------------------- old configurations
def test_a_config_json_without_ema_warmup_loads_as_false(tmp_path):
    assert TrainConfig().ema_warmup is True and TrainConfig.from_options({}).ema_warmup is True
    old = TrainConfig().to_json_dict()
    del old["ema_warmup"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(old))
    assert TrainConfig.load(path).ema_warmup is False
    assert read_config_file(path)["ema_warmup"] is False
    assert new_run_config(None, path, {}).ema_warmup is False
    assert new_run_config(None, path, {"ema_warmup": True}).ema_warmup is True  # a flag still overrides it
    partial = tmp_path / "few.json"  # a hand-written file of a few keys: today's defaults for the rest
    partial.write_text(json.dumps({"steps": 5, "ema": 0.99}))
    assert new_run_config(None, partial, {}).ema_warmup is True


def test_an_old_runs_config_json_retrains_it_bit_for_bit(cli, tmp_path):
    args = ["--steps", "3", "--ema", "0.9", "--device", "cpu", "--threads", "1"]
    first = cli(*tiny_cli_args(*args, "--no-ema-warmup", *in_runs(tmp_path, "old")))
    assert first.exit_code == 0, first.output
    config = saved(tmp_path / "old")
    assert config.pop("ema_warmup") is False
    old_file = tmp_path / "old-config.json"  # as a run saved before the warm-up existed wrote it
    old_file.write_text(json.dumps(config))
    again = cli("train", "--config", str(old_file), "--quiet", *in_runs(tmp_path, "again"))
    assert again.exit_code == 0, again.output
    assert saved(tmp_path / "again")["ema_warmup"] is False
    from safetensors.torch import load_file

    original, rerun = (load_file(tmp_path / name / "generator.safetensors") for name in ("old", "again"))
    assert all(torch.equal(original[key], rerun[key]) for key in original)
    warmed = cli(*tiny_cli_args(*args, *in_runs(tmp_path, "new")))  # the warm-up changes the EMA weights
    assert warmed.exit_code == 0, warmed.output
    new = load_file(tmp_path / "new" / "generator.safetensors")
    assert not all(torch.equal(original[key], new[key]) for key in original)


# --------------------------------------------------------------------------- the spread check
RING = {"gen": "mlp", "dataset": "ring8", "gen_options": {"z_dim": 2, "hidden": (16, 16), "batchnorm": False},
        "disc_options": {"hidden": (8,)}, "batch_size": 16, "precision": "fp32", "ema": 0.9, "log_every": 1,
        "sample_every": 5, "checkpoint_every": 1000, "num_samples": 64}


def run_with_weights(tmp_path, flip: bool, capsys) -> tuple[list[float], str]:
    """20 steps whose 'update' sets G's weights to θ and −θ in turn (flip) or leaves them alone (constant)."""
    trainer = Trainer(TrainConfig.from_options({**RING, "steps": 20}), tmp_path / "run", show_progress=False)
    generator = trainer.generator
    settings = [{k: v.clone() for k, v in generator.state_dict().items()}]
    settings.append({k: -v for k, v in settings[0].items()})

    def update(step: int) -> dict[str, torch.Tensor]:
        if flip:
            generator.load_state_dict(settings[step % 2])
        return {"g/ns": torch.zeros(())}

    trainer.procedure.run = update
    trainer.train()
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    ratios = [r["ema/spread_ratio"] for r in records if "ema/spread_ratio" in r]
    return ratios, capsys.readouterr().err


def test_an_ema_of_a_generator_flipping_between_two_settings_is_warned_about_once(tmp_path, capsys):
    ratios, err = run_with_weights(tmp_path, flip=True, capsys=capsys)
    assert len(ratios) == 4 and max(ratios) < 0.5  # the average of θ and −θ: next to nothing
    assert err.count("the EMA generator (--ema 0.9) averages a generator that is still moving") == 1
    assert "--ema off" in err and "gantk export RUN --no-ema" in err


def test_an_ema_of_a_constant_generator_is_not_warned_about(tmp_path, capsys):
    ratios, err = run_with_weights(tmp_path, flip=False, capsys=capsys)
    assert ratios == [pytest.approx(1.0)] * 4
    assert "EMA generator" not in err


def test_the_spread_check_draws_with_labels_for_a_conditional_generator(tmp_path):
    config = tiny_config(steps=2, loss="ns+ac", ema=0.9, sample_every=2, num_samples=600)  # a grid of 10 × 60
    trainer = Trainer(config, tmp_path / "run", show_progress=False)
    seen = []
    forward = trainer.ema.model.forward
    trainer.ema.model.forward = lambda z, y=None: seen.append(y) or forward(z, y)
    trainer.train()
    checked = seen[-1]  # the pictures drew all 600; the check every third of them, 20 of each class
    assert len(checked) == 200 and torch.bincount(checked).tolist() == [20] * trainer.spec.num_classes
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("ema/spread_ratio" in record for record in records)


def test_the_check_compares_spreads_of_the_same_samples():
    check = SpreadCheck(0.999)
    points = torch.randn(100, 2)
    assert check(points * 0.25, points, step=1)["ema/spread_ratio"] == pytest.approx(0.25)
    assert check.warned


def test_an_ema_that_draws_between_the_modes_of_a_collapsed_generator_is_warned_about(capsys):
    """A trained G collapsed onto one mode of the ring, whose EMA sits between modes: spreads agree, means do not."""
    blob = torch.randn(200, 2) * 0.05
    trained, averaged = blob + torch.tensor([1.0, 0.0]), blob + torch.tensor([0.3, 0.0])
    check = SpreadCheck(0.999)
    logged = check(averaged, trained, step=500)
    assert logged["ema/spread_ratio"] == pytest.approx(1.0) and logged["ema/mean_shift"] > 5
    assert "its mean sample is" in capsys.readouterr().err
    healthy = SpreadCheck(0.999)  # the same spread and a small shift: no warning
    assert healthy(trained + 0.01, trained, step=500)["ema/mean_shift"] < 0.2 and not healthy.warned
