"""Augmentations (--augment): what each built-in does to D's inputs, ADA's adaptive p, and how a run uses them."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gantk
import gantk.distributed
from engine_helpers import loss_records, tiny_cli_args, tiny_config
from gantk.engine.trainer import Trainer
from gantk.errors import UsageError
from gantk.plugins.augmentations import _draws
from gantk.plugins.augmentations.ada import rotation_inverse, scaling_inverse, translation_inverse, warp
from gantk.plugins.augmentations.diffaugment import cut_out, translate
from gantk.protocols import Augmentation, DataSpec

RGB = DataSpec((3, 16, 16), name="test")
#: every built-in, with options that make it change its input
CHANGING = [("diffaugment", {}), ("ada", {"p": 0.5}), ("flip", {})]


def augmentation(name: str, spec: DataSpec = RGB, **options) -> Augmentation:
    return gantk.get_registry().get("augmentation", name).create(spec, **options)


def images(batch: int = 8, spec: DataSpec = RGB, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, *spec.shape, generator=torch.Generator().manual_seed(seed)).clamp(-1, 1)


# --------------------------------------------------------------------------- the transforms
@pytest.mark.parametrize("name, options", CHANGING)
def test_gradients_flow_through_each_builtin_to_its_input(name, options):
    x = images().requires_grad_(True)
    out = augmentation(name, **options)(x, real=True)
    (out * torch.randn_like(out)).sum().backward()
    assert out.shape == x.shape and not torch.equal(out, x)  # it did something
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name, options", [("diffaugment", {}), ("ada", {"p": 0.5})])
def test_real_and_fake_get_the_same_transforms_from_the_same_draws(name, options):
    augment, x = augmentation(name, **options), images()
    torch.manual_seed(3)
    real = augment(x, real=True)
    torch.manual_seed(3)
    fake = augment(x.clone(), real=False)
    assert torch.equal(real, fake)


@pytest.mark.parametrize("name, options", [("diffaugment", {}), ("ada", {"p": 0.8})])
def test_samples_get_independent_draws(name, options):
    x = images(1).expand(16, -1, -1, -1).contiguous()  # one image, sixteen times
    out = augmentation(name, **options)(x, real=False)
    assert len({tuple(sample.flatten()[:64].tolist()) for sample in out}) > 8


def test_flip_mirrors_about_half_the_real_images_and_no_fake():
    augment, x = augmentation("flip"), images(400, DataSpec((1, 4, 4)))
    assert torch.equal(augment(x, real=False), x)
    out = augment(x, real=True)
    mirrored = (out == x.flip(-1)).flatten(1).all(dim=1)
    assert ((out == x).flatten(1).all(dim=1) | mirrored).all()  # each image as it was, or its mirror image
    assert 150 < int(mirrored.sum()) < 250  # Binomial(400, 0.5): mean 200, sd 10


@settings(max_examples=20, deadline=None)
@given(height=st.integers(4, 12), width=st.integers(4, 12), channels=st.sampled_from([1, 3]), seed=st.integers(0, 99))
def test_probability_zero_is_the_identity(height, width, channels, seed):
    spec = DataSpec((channels, height, width))
    x = images(4, spec, seed)
    for name, options in [("ada", {}), ("ada", {"fixed": True}), ("diffaugment", {"p": 0}),
                          ("diffaugment", {"policy": "none"}), ("flip", {"p": 0})]:
        augment = augmentation(name, spec, **options)
        assert torch.equal(augment(x, real=True), x), (name, options)  # ada's p starts at 0


@settings(max_examples=20, deadline=None)
@given(level=st.floats(-1, 1), seed=st.integers(0, 99))
def test_diffaugment_color_moves_a_flat_grey_image_by_at_most_half(level, seed):
    torch.manual_seed(seed)
    x = torch.full((64, 3, 4, 4), level)  # saturation and contrast leave a flat grey image as it is
    out = augmentation("diffaugment", policy="color")(x, real=True)
    shift = (out - x)[:, 0, 0, 0]
    assert torch.allclose(out, x + shift.view(-1, 1, 1, 1), atol=1e-5)  # one brightness step per image
    assert shift.abs().max() <= 0.5 + 1e-5 and shift.max() - shift.min() > 0.5  # U(−0.5, 0.5)


def test_diffaugment_translation_shifts_whole_pixels_with_zero_fill():
    x = torch.arange(1.0, 65.0).view(1, 1, 8, 8)
    moved = translate(x, torch.tensor([1]), torch.tensor([-2]))  # output (i, j) reads input (i + 1, j − 2)
    assert torch.equal(moved[0, 0, :7, 2:], x[0, 0, 1:, :6])
    assert (moved[0, 0, 7] == 0).all() and (moved[0, 0, :, :2] == 0).all()
    out = augmentation("diffaugment", policy="translation")(torch.ones(200, 1, 16, 16), real=True)
    empty_rows = (out[:, 0] == 0).all(dim=2).sum(dim=1)
    assert empty_rows.max() == 2 and empty_rows.min() == 0  # up to 16/8 = 2 pixels


def test_diffaugment_cutout_zeroes_a_square_of_half_the_side():
    cut = cut_out(torch.ones(1, 1, 8, 8), torch.tensor([2]), torch.tensor([3]), (4, 4))
    assert torch.equal(cut[0, 0, 2:6, 3:7], torch.zeros(4, 4)) and cut.sum() == 64 - 16
    out = augmentation("diffaugment", policy="cutout")(torch.ones(200, 1, 16, 16), real=True)
    zeros = (out == 0).flatten(1).sum(dim=1)
    assert zeros.max() == 64 and (zeros > 0).all()  # an 8×8 square, cut by the border when it overhangs


def test_ada_blits_move_whole_pixels():
    x, one = images(2), torch.ones(2)
    assert torch.allclose(warp(x, scaling_inverse(-one, one)), x.flip(-1), atol=1e-6)  # x-flip
    turned = warp(x, rotation_inverse(0 * one, one))
    assert any(torch.allclose(turned, torch.rot90(x, k, (2, 3)), atol=1e-6) for k in (1, 3))  # a 90° turn
    shifted = warp(x, translation_inverse(2 * one, 0 * one))
    assert torch.allclose(shifted[..., 2:], x[..., :-2], atol=1e-6)  # two whole pixels to the right


def test_ada_colour_turns_about_the_luma_axis():
    grey = images(64, DataSpec((1, 8, 8))).expand(-1, 3, -1, -1)  # colourless: on the luma axis
    out = augmentation("ada", p=0.9, pipeline="c")(grey, real=True)
    assert not torch.allclose(out, grey)
    torch.testing.assert_close(out, out[:, :1].expand_as(out), rtol=0, atol=1e-5)  # hue and saturation keep it grey
    colour = images(64)
    saturated = augmentation("ada", p=0.9, pipeline="c")(colour, real=True)
    assert (saturated.std(dim=1) > colour.std(dim=1) + 1e-3).any()  # colourful images change their chroma


def test_augmentations_keep_the_input_dtype_and_layout():
    x = images().to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    for name, options in CHANGING:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = augmentation(name, **options)(x, real=True)
        assert out.dtype == torch.bfloat16 and out.is_contiguous(memory_format=torch.channels_last), name


@pytest.mark.parametrize("name, options", [("diffaugment", {}), ("ada", {"p": 0.7})])
def test_two_processes_augment_their_rows_as_one_process_augments_the_batch(monkeypatch, name, options):
    augment, x = augmentation(name, **options), images(8)
    torch.manual_seed(5)
    whole = augment(x, real=True)
    for module in (gantk.distributed, _draws):
        monkeypatch.setattr(module, "world_size", lambda: 2)
    monkeypatch.setattr(gantk.distributed, "rank", lambda: 1)
    torch.manual_seed(5)
    second_half = augment(x[4:], real=True)  # rank 1 of 2 holds rows 4..7
    torch.testing.assert_close(second_half, whole[4:], rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- ADA's adaptive probability
def test_ada_adjusts_p_by_the_papers_step_every_interval():
    ada = augmentation("ada", kimg=1)  # 16 images × 4 updates / 1000 = 0.064 per adjustment
    for update in range(1, 9):
        ada.observe(torch.ones(16))  # D is sure every real image is real: r_t = 1 > 0.6
        assert float(ada.p) == pytest.approx(0.064 * (update // 4), abs=1e-6)
    for _ in range(4):
        ada.observe(-torch.ones(16))  # r_t = −1 < 0.6: p falls again
    assert float(ada.p) == pytest.approx(0.064, abs=1e-6)
    logged = ada.logged()
    assert set(logged) == {"p", "rt"} and float(logged["rt"]) == -1.0


def test_ada_p_stays_in_its_range_and_fixed_keeps_it():
    ada = augmentation("ada", kimg=0.01, interval=1)  # one update moves p by 1.6
    ada.observe(-torch.ones(16))
    assert float(ada.p) == 0.0
    ada.observe(torch.ones(16))
    assert 0.99 < float(ada.p) < 1.0
    fixed = augmentation("ada", p=0.3, fixed=True, interval=1)
    fixed.observe(torch.ones(16))
    assert float(fixed.p) == pytest.approx(0.3)


def test_ada_p_rises_when_the_discriminator_overfits_a_tiny_set(tmp_path):
    # a fast D and an almost frozen G on 16-image batches of the 8×8 digits: D soon calls every real image real
    trainer = Trainer(tiny_config(augment="ada:kimg=1", steps=24, d_lr=2e-3, g_lr=1e-6, ema=None, log_every=4),
                      tmp_path / "run", show_progress=False)
    trainer.train()
    records = loss_records(trainer.run_dir)
    assert records[-1]["aug/rt"] > 0.6 and records[-1]["aug/p"] > 0.1
    assert [r["aug/p"] for r in records] == sorted(r["aug/p"] for r in records)


def test_ada_state_survives_a_checkpoint_and_resume_exactly(tmp_path):
    options = dict(augment="ada:kimg=0.5,interval=3", d_lr=2e-3, checkpoint_every=4, keep_checkpoints=3)
    straight = Trainer(tiny_config(steps=8, **options), tmp_path / "straight", show_progress=False)
    straight.train()
    Trainer(tiny_config(steps=4, **options), tmp_path / "resumed", show_progress=False).train()
    resumed = Trainer(tiny_config(steps=8, **options), tmp_path / "resumed", resume=True, show_progress=False)
    resumed.train()  # resumed after 4 D updates: mid-way through an adjustment window of 3
    expected, got = straight.procedure.modules(), resumed.procedure.modules()
    assert float(expected["augment"].p) > 0
    for name in expected:
        for key, value in expected[name].state_dict().items():
            assert torch.equal(got[name].state_dict()[key], value), f"{name}.{key}"


# --------------------------------------------------------------------------- the option
def test_the_builtins_are_an_augmentation_kind():
    assert "augmentation" in gantk.KINDS
    assert {"ada", "diffaugment", "flip"} <= set(gantk.get_registry().names("augmentation"))


def test_a_training_run_with_diffaugment(cli, tmp_path):
    result = cli(*tiny_cli_args("--steps", "3", "--augment", "diffaugment:policy=color+cutout", "--runs-dir",
                                str(tmp_path), "--name", "run"))
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["augment"] == "gantk:diffaugment:policy=color+cutout"  # recorded with its package
    assert all(math.isfinite(record["d/total"]) for record in loss_records(tmp_path / "run"))


def test_resume_keeps_the_augmentation(cli, tmp_path):
    first = cli(*tiny_cli_args("--steps", "2", "--augment", "ada", "--runs-dir", str(tmp_path), "--name", "run"))
    assert first.exit_code == 0, first.output
    run = str(tmp_path / "run")
    changed = cli("train", "--resume", run, "--steps", "3", "--augment", "flip", "--quiet")
    assert changed.exit_code == 2 and "--augment" in changed.output and "Traceback" not in changed.output
    same = cli("train", "--resume", run, "--steps", "3", "--augment", "ada", "--quiet")
    assert same.exit_code == 0, same.output
    assert "aug/p" in loss_records(run)[-1]


@pytest.mark.parametrize("value, message", [
    ("diffaugmnt", "Unknown augmentation 'diffaugmnt'. Did you mean: diffaugment?"),
    ("ada:target=2", "The augmentation 'ada' option 'target' must be a number in (-1, 1)"),
    ("ada:speed=100", "The augmentation 'ada' has no option 'speed'. Its options are: p=0.0, target=0.6"),
    ("ada:kimg=100,fixed", "--augment takes a name and optional KEY=VALUE options"),
    ("diffaugment:policy=color+flip", "must be one of color, translation, cutout"),
])
def test_a_bad_augment_value_is_one_paragraph(cli, tmp_path, value, message):
    result = cli(*tiny_cli_args("--steps", "1", "--augment", value, "--runs-dir", str(tmp_path)))
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) <= 4  # one paragraph (wrapped by the terminal width at most)


def test_vector_data_is_refused():
    with pytest.raises(UsageError, match="transforms images, but the data set 'ring8' holds vectors"):
        augmentation("flip", DataSpec((2,), name="ring8"))


def test_a_preset_may_set_the_augmentation_and_none_turns_it_off():
    from gantk.engine.config import TrainConfig, apply_overrides

    preset = {"augment": "ada:target=0.7"}
    assert TrainConfig.from_options(apply_overrides(preset, {})).augment == "ada:target=0.7"
    assert TrainConfig.from_options(apply_overrides(preset, {"augment": None})).augment is None
