"""-D pack=M (PacGAN, Lin et al. 2018) and -D mbstd=G (Karras et al. 2018) for every discriminator."""

from __future__ import annotations

import re

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

from gantk.engine.build import build_discriminator
from gantk.engine.config import TrainConfig
from gantk.engine.discriminator_input import InputOptionsDiscriminator, minibatch_stddev
from gantk.engine.trainer import Trainer
from gantk.errors import UsageError
from gantk.plugins.losses.gp import build_gp
from gantk.plugins.losses.r1 import build_r1
from gantk.protocols import DataSpec, DiscriminatorOutput, DiscriminatorPhase
from gantk.registry import get_registry

from engine_helpers import tiny_config

RING8 = {"gen": "mlp", "dataset": "ring8", "gen_options": {"z_dim": 2, "hidden": (16,)}, "batch_size": 32,
         "steps": 2, "precision": "fp32", "ema": None, "log_every": 1, "sample_every": 1000,
         "checkpoint_every": 1000, "num_samples": 16}


def ring8_config(disc_options: dict, **overrides) -> TrainConfig:
    return TrainConfig.from_options({**RING8, "disc_options": {"hidden": (16,), **disc_options}, **overrides})


class QuadraticD(nn.Module):
    """D(x) = ½‖x‖² per input: its input gradient is x itself."""

    feature_dim, options = 1, {}

    def forward(self, x, y=None):
        flat = x.flatten(1)
        return DiscriminatorOutput(0.5 * flat.pow(2).sum(1), flat[:, :1])


def d_step(discriminator, real, fake, real_grad=False):
    real = real.detach().requires_grad_(real_grad)
    return DiscriminatorPhase(real, fake, None, None, discriminator(real), discriminator(fake), discriminator, 0)


# ------------------------------------------------------------------ M = 1 is no packing
@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**16), image=st.booleans())
def test_pack_1_builds_the_plugins_own_module_with_the_same_outputs(seed, image):
    config = tiny_config() if image else ring8_config({})
    spec = DataSpec((1, 8, 8)) if image else DataSpec((2,))
    registry = get_registry()
    torch.manual_seed(seed)
    plain, plain_record = build_discriminator(config, registry, spec)
    packed_config = (tiny_config(disc_options={"width": 8, "pack": 1}) if image
                     else ring8_config({"pack": 1}))
    torch.manual_seed(seed)
    same, same_record = build_discriminator(packed_config, registry, spec)
    assert type(same) is type(plain) and same_record == plain_record  # no wrapper, no 'pack' in the record
    x = torch.randn(6, *spec.shape, generator=torch.Generator().manual_seed(seed))
    plain.eval(), same.eval()
    assert torch.equal(plain(x).logits, same(x).logits)


# ------------------------------------------------------------------ a packed D sees M samples of one kind
@pytest.mark.parametrize("pack", [2, 4])
def test_a_packed_discriminator_sees_m_samples_of_one_kind_per_input(tmp_path, pack):
    trainer = Trainer(tiny_config(steps=1, disc_options={"width": 8, "pack": pack}), tmp_path / "run",
                      show_progress=False)
    procedure = trainer.procedure
    packed = procedure.discriminator
    assert isinstance(packed, InputOptionsDiscriminator) and packed.options["pack"] == pack
    FAKE = 7.0  # real digits lie in [-1, 1]: a fake is told apart by its value
    procedure.generator.register_forward_hook(lambda module, args, output: output * 0 + FAKE)  # keeps the graph
    inputs = []
    packed.inner.register_forward_pre_hook(lambda module, args: inputs.append(args[0].detach().clone()))
    procedure.run(0)
    assert inputs and all(x.shape == (16 // pack, pack, 8, 8) for x in inputs)  # (B/M, M·C, H, W)
    kinds = [bool((group == FAKE).all()) or bool((group <= 1).all()) for x in inputs for group in x]
    assert all(kinds)  # every packed input: M fakes or M reals, never a mix
    fake_inputs = sum(int((x == FAKE).flatten(1).all(1).sum()) for x in inputs)
    assert fake_inputs == 2 * 16 // pack  # D's phase and G's phase each pack the 16 fakes into 16/M inputs


def test_packing_concatenates_consecutive_samples_along_channels_and_features():
    seen = []

    class Probe(QuadraticD):
        def forward(self, x, y=None):
            seen.append((x.clone(), y))
            return super().forward(x)

    images = torch.arange(6.0).reshape(6, 1, 1, 1).expand(6, 3, 2, 2)
    out = InputOptionsDiscriminator(Probe(), 3, 0)(images, torch.arange(6))
    assert out.logits.shape == (2,) and seen[0][0].shape == (2, 9, 2, 2) and seen[0][1] is None
    assert seen[0][0][1, :, 0, 0].tolist() == [3.0] * 3 + [4.0] * 3 + [5.0] * 3  # samples 3, 4, 5 of group 1
    vectors = torch.arange(8.0).reshape(4, 2)
    InputOptionsDiscriminator(Probe(), 2, 0)(vectors)
    assert seen[1][0].tolist() == [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]]


# ------------------------------------------------------------------ GP and R1 per packed group
def test_gp_with_packing_penalises_each_group_by_its_own_gradient_norm():
    x = torch.tensor([[0.2, 0.0], [0.0, 0.1], [3.0, 4.0], [0.0, 12.0]])
    packed = InputOptionsDiscriminator(QuadraticD(), 2, 0)
    # real = fake = x, so x̂ = x whatever a is; D(group) = ½‖group‖², ∇ = the group's samples: GP = E(‖group‖ − 1)²
    value = build_gp(DataSpec((2,))).discriminator_loss(d_step(packed, x, x.clone()))
    by_hand = ((0.05 ** 0.5 - 1) ** 2 + (169 ** 0.5 - 1) ** 2) / 2
    assert value.item() == pytest.approx(by_hand, rel=1e-6)
    per_sample = ((0.2 - 1) ** 2 + (0.1 - 1) ** 2 + (5 - 1) ** 2 + (12 - 1) ** 2) / 4
    assert value.item() != pytest.approx(per_sample, rel=1e-3)


def test_gp_with_packing_draws_one_interpolation_weight_per_group():
    seen = []

    class Probe(QuadraticD):
        def forward(self, x, y=None):
            seen.append(x.detach().clone())
            return super().forward(x)

    torch.manual_seed(0)
    real, fake = torch.ones(64, 3), torch.zeros(64, 3)
    build_gp(DataSpec((3,))).discriminator_loss(d_step(InputOptionsDiscriminator(Probe(), 4, 0), real, fake))
    x_hat = seen[-1]  # the interpolates, packed: (16, 4·3)
    assert x_hat.shape == (16, 12)
    assert torch.equal(x_hat, x_hat[:, :1].expand(-1, 12))  # one a for the 4 samples of a group
    assert x_hat[:, 0].unique().numel() == 16  # and a fresh one per group


def test_r1_with_packing_takes_the_squared_norm_per_group():
    x = torch.tensor([[1.0, 2.0], [3.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    packed = InputOptionsDiscriminator(QuadraticD(), 2, 0)
    value = build_r1(DataSpec((2,))).discriminator_loss(d_step(packed, x, x.clone(), real_grad=True))
    assert value.item() == pytest.approx(0.5 * (14 + 3) / 2)  # ½ E_groups ‖group‖²


# ------------------------------------------------------------------ bad input
def test_a_batch_that_pack_does_not_divide_is_refused_with_the_sizes_that_work(tmp_path):
    with pytest.raises(UsageError, match=r"multiple of 3") as error:
        Trainer(tiny_config(steps=1, disc_options={"width": 8, "pack": 3}), tmp_path / "run", show_progress=False)
    assert "--batch-size 16" in str(error.value)
    with pytest.raises(UsageError, match="multiple of 4"):
        Trainer(tiny_config(steps=1, batch_size=16, accumulate=8, disc_options={"width": 8, "pack": 4}),
                tmp_path / "accumulated", show_progress=False)


@pytest.mark.parametrize("overrides, named", [({"loss": "ns+ac"}, "loss term(s) ac"),
                                              ({"disc_options": {"width": 8, "pack": 2, "conditioning": "projection"}},
                                               "conditioning=projection")])
def test_packing_refuses_conditional_terms_and_conditional_discriminators(tmp_path, overrides, named):
    config = tiny_config(steps=1, **{"disc_options": {"width": 8, "pack": 2}, **overrides})
    with pytest.raises(UsageError, match=re.escape(named) + ".*PacGAN"):
        Trainer(config, tmp_path / "run", show_progress=False)


def test_pack_and_mbstd_are_validated():
    for options in ({"pack": 0}, {"pack": 1.5}, {"mbstd": -1}):
        with pytest.raises(UsageError, match="pack|mbstd"):
            build_discriminator(ring8_config(options), get_registry(), DataSpec((2,)))


# ------------------------------------------------------------------ every loss family, dcgan and mlp, end to end
@pytest.mark.parametrize("loss", ["ns", "hinge", "lsgan", "ragan", "wgan+gp", "ns+r1"])
def test_packed_dcgan_trains_with_every_loss_family(tmp_path, loss):
    disc = {"width": 8, "pack": 2, **({"norm": "none"} if "gp" in loss else {})}
    result = Trainer(tiny_config(steps=2, loss=loss, disc_options=disc), tmp_path / "run", show_progress=False).train()
    assert result.exported.exists()


@pytest.mark.parametrize("disc_options", [{"pack": 4}, {"mbstd": 4}, {"pack": 2, "mbstd": 2}])
def test_packed_mlp_and_minibatch_stddev_train_on_vectors(tmp_path, disc_options):
    trainer = Trainer(ring8_config(disc_options, loss="ns+r1"), tmp_path / "run", show_progress=False)
    trainer.train()
    assert trainer.records["discriminator"].options == {**trainer.procedure.discriminator.inner.options,
                                                        **disc_options}


def test_minibatch_stddev_on_images_trains_and_on_vectors_appends_the_spread(tmp_path):
    Trainer(tiny_config(steps=2, disc_options={"width": 8, "mbstd": 4}), tmp_path / "run", show_progress=False).train()
    vectors = torch.tensor([[0.0, 0.0], [2.0, 4.0]])
    # groups of 2: per feature σ = 1 and 2 (population), averaged: 1.5, appended to both samples
    assert minibatch_stddev(vectors, 2)[:, 2].tolist() == pytest.approx([1.5, 1.5], rel=1e-6)


# ------------------------------------------------------------------ export and sampling: only D is packed
def test_a_packed_runs_export_samples_like_any_other(tmp_path, cli):
    trainer = Trainer(tiny_config(steps=2, ema=None, disc_options={"width": 8, "pack": 4}), tmp_path / "run",
                      show_progress=False)
    result = trainer.train()
    assert trainer.records["discriminator"].options["pack"] == 4
    out = tmp_path / "samples.safetensors"
    sampled = cli("sample", str(result.exported), "--n", "5", "--seed", "1", "--out", str(out))
    assert sampled.exit_code == 0, sampled.output
    from safetensors.torch import load_file

    assert load_file(out)["samples"].shape == (5, 1, 8, 8)  # G is not packed: 5 samples, not a multiple of 4


def test_a_packed_run_resumes_with_the_packed_discriminators_weights(tmp_path):
    def config(steps):
        return tiny_config(steps=steps, checkpoint_every=2, disc_options={"width": 8, "pack": 2, "mbstd": 2})

    first = Trainer(config(2), tmp_path / "run", show_progress=False)
    first.train()
    resumed = Trainer(config(4), tmp_path / "run", resume=True, show_progress=False)
    assert resumed.step == 2
    saved, loaded = first.procedure.discriminator.state_dict(), resumed.procedure.discriminator.state_dict()
    assert saved.keys() == loaded.keys() and all(torch.equal(saved[k], loaded[k]) for k in saved)
    resumed.train()


# ------------------------------------------------------------------ the conditional presets use mbstd
@pytest.mark.parametrize("preset", ["cgan", "contragan"])
def test_the_conditional_presets_train_with_minibatch_stddev_on_their_conditional_discriminators(tmp_path, preset):
    image_size = 16  # small, for speed: both architectures build at 16×16
    options = {**get_registry().create("preset", preset), "dataset": "digits", "image_size": image_size,
               "steps": 2, "batch_size": 8, "precision": "fp32", "log_every": 1, "sample_every": 1000,
               "checkpoint_every": 1000, "num_samples": 10}
    trainer = Trainer(TrainConfig.from_options(options), tmp_path / "run", show_progress=False)
    assert trainer.generator.conditional and trainer.procedure.discriminator.mbstd == 4
    labels = torch.arange(8) % 10
    assert trainer.procedure.discriminator(torch.randn(8, 1, image_size, image_size), labels).logits.shape == (8,)
    assert trainer.train().exported.exists()
    assert trainer.records["discriminator"].options["mbstd"] == 4  # recorded: the run rebuilds its D
