"""CycleGAN's networks: the ``resnet-translator`` generator (image to image) and the ``patchgan`` discriminator (one
logit per patch); the loss terms on patch logits; registration."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import gantk
from gantk.logit_losses import LogitLoss
from gantk.plugins.architectures.patchgan import build_patchgan_discriminator
from gantk.plugins.architectures.resnet_translator import ResidualBlock, build_resnet_translator
from gantk.protocols import DataSpec, DiscriminatorOutput, DiscriminatorPhase, GeneratorPhase

from engine_helpers import loss_records, tiny_config

SMALL_G = {"width": 8, "blocks": 2}
SMALL_D = {"width": 8}
ADVERSARIAL_LOSSES = ["bce", "ns", "lsgan", "hinge", "wgan", "ragan", "rahinge"]
NORMS = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm, nn.GroupNorm, nn.LayerNorm)


def image(channels: int, side: int, height: int | None = None) -> DataSpec:
    return DataSpec((channels, height or side, side), name="pictures")


def images(batch: int, spec: DataSpec) -> torch.Tensor:
    return torch.rand(batch, *spec.shape) * 2 - 1


def of_type(module: nn.Module, kind) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, kind)]


# ------------------------------------------------------------------------------------------ resnet-translator
@pytest.mark.parametrize("channels", [1, 3])
def test_translator_maps_images_to_images_of_the_same_shape_in_the_tanh_range(channels):
    torch.manual_seed(0)
    spec = image(channels, 64)
    generator = build_resnet_translator(spec, **SMALL_G)
    assert isinstance(generator, gantk.Generator)
    assert (generator.z_dim, generator.conditional, generator.num_classes) == (0, False, 0)
    x = images(2, spec)
    translated = generator(x)
    assert translated.shape == x.shape
    assert translated.abs().max() <= 1 and translated.std() > 0
    generator.eval()
    torch.testing.assert_close(generator(x, torch.tensor([0, 1])), generator(x))  # labels are ignored


def test_translator_builds_non_square_images_whose_sides_are_multiples_of_4():
    spec = image(3, 24, height=12)
    assert build_resnet_translator(spec, **SMALL_G)(images(1, spec)).shape == (1, 3, 12, 24)


@pytest.mark.parametrize("blocks", [6, 9])
def test_blocks_sets_the_number_of_residual_blocks(blocks):
    generator = build_resnet_translator(image(3, 32), blocks=blocks, width=4)
    assert len(of_type(generator, ResidualBlock)) == blocks
    assert generator.options == {"blocks": blocks, "width": 4, "norm": "instance"}


def test_residual_blocks_add_their_input():
    torch.manual_seed(0)
    block = ResidualBlock(4, "instance")
    x = torch.randn(2, 4, 8, 8)
    torch.testing.assert_close(block(x), x + block.body(x))
    nn.init.zeros_(block.body[-2].weight)  # the last conv outputs 0, so does its instance norm: the block is x
    torch.testing.assert_close(block(x), x)


def test_translator_uses_reflection_padding_and_instance_norm_without_affine_by_default():
    generator = build_resnet_translator(image(3, 32), **SMALL_G)
    # c7s1 in and out, and two per residual block
    assert len(of_type(generator, nn.ReflectionPad2d)) == 2 + 2 * SMALL_G["blocks"]
    assert all(conv.padding == (0, 0) for conv in of_type(generator, nn.Conv2d) if conv.stride == (1, 1))
    norms = of_type(generator, NORMS)
    assert norms and all(isinstance(n, nn.InstanceNorm2d) and not n.affine for n in norms)
    assert len(of_type(generator, nn.ConvTranspose2d)) == 2
    assert isinstance(generator.net[-1], nn.Tanh)


@pytest.mark.parametrize("norm, kind", [("batch", nn.BatchNorm2d), ("none", None)])
def test_translator_norm_option(norm, kind):
    generator = build_resnet_translator(image(3, 16), norm=norm, **SMALL_G)
    norms = of_type(generator, NORMS)
    assert all(isinstance(n, kind) for n in norms) and bool(norms) == (kind is not None)
    convs = of_type(generator, (nn.Conv2d, nn.ConvTranspose2d))
    # a conv has a bias only where no norm follows it: the output conv, and every conv without norms
    assert sum(conv.bias is not None for conv in convs) == (1 if kind else len(convs))


def test_translator_weights_are_drawn_from_n_0_0_02():
    torch.manual_seed(0)
    generator = build_resnet_translator(image(3, 16), width=16, blocks=2)
    weights = torch.cat([m.weight.flatten() for m in of_type(generator, (nn.Conv2d, nn.ConvTranspose2d))])
    assert weights.mean().item() == pytest.approx(0.0, abs=1e-3)
    assert weights.std().item() == pytest.approx(0.02, rel=0.05)


def test_translator_and_patchgan_have_the_papers_sizes():
    """At width 64, 9 blocks, RGB: the authors' code counts 11,378,179 (G) and 2,764,737 (D) parameters, with a
    bias before each instance norm, where it does nothing; gantk leaves those out (5,248 in G, 896 in D)."""
    spec = image(3, 256)
    with torch.device("meta"):
        generator, discriminator = build_resnet_translator(spec), build_patchgan_discriminator(spec)
    assert sum(p.numel() for p in generator.parameters()) == 11_378_179 - 5_248
    assert sum(p.numel() for p in discriminator.parameters()) == 2_764_737 - 896


@pytest.mark.parametrize("shape, sizes", [((3, 30, 30), ["--image-size 32", "28"]), ((1, 32, 30), ["32", "28"]),
                                          ((3, 4, 4), ["--image-size 8"])])
def test_translator_refuses_sides_that_are_not_multiples_of_4_naming_sides_that_work(shape, sizes):
    with pytest.raises(gantk.UsageError, match="multiples of 4") as error:
        build_resnet_translator(DataSpec(shape, name="pictures"))
    assert all(size in str(error.value) for size in sizes), str(error.value)


def test_translator_option_errors_are_usage_errors():
    with pytest.raises(gantk.UsageError, match="blocks"):
        build_resnet_translator(image(3, 16), blocks=0)
    with pytest.raises(gantk.UsageError, match="norm"):
        build_resnet_translator(image(3, 16), norm="layer")


# ------------------------------------------------------------------------------------------ patchgan
def test_patchgan_gives_one_logit_per_patch_and_the_hidden_maps_mean_as_features():
    torch.manual_seed(0)
    spec = image(3, 64)
    discriminator = build_patchgan_discriminator(spec, **SMALL_D)
    assert isinstance(discriminator, gantk.Discriminator)
    x = images(2, spec)
    out = discriminator(x)
    assert out.logits.shape == (2, 6, 6)  # 64 → 32 → 16 → 8 → 7 → 6
    assert discriminator.feature_dim == 8 * SMALL_D["width"]
    assert out.features.shape == (2, discriminator.feature_dim)
    torch.testing.assert_close(out.features, discriminator.body(x).mean(dim=(2, 3)))
    discriminator.eval()
    torch.testing.assert_close(discriminator(x, torch.tensor([0, 1])).logits, discriminator(x).logits)


def test_patchgan_has_no_norm_after_its_first_conv_and_instance_norm_after_the_others():
    discriminator = build_patchgan_discriminator(image(3, 32), **SMALL_D)
    layers = list(discriminator.body)
    assert isinstance(layers[0], nn.Conv2d) and isinstance(layers[1], nn.LeakyReLU)
    assert layers[1].negative_slope == 0.2
    norms = of_type(discriminator, NORMS)
    assert len(norms) == 3 and all(isinstance(n, nn.InstanceNorm2d) and not n.affine for n in norms)
    strides = [conv.stride[0] for conv in of_type(discriminator, nn.Conv2d)]
    assert strides == [2, 2, 2, 1, 1]
    assert all(conv.kernel_size == (4, 4) for conv in of_type(discriminator, nn.Conv2d))


@pytest.mark.parametrize("layers, field", [(3, 70), (2, 34)])
def test_patchgan_receptive_field(layers, field):
    """One central logit depends on exactly a field×field window of the input (70×70 by default). Without norms:
    instance norm's statistics would spread every logit's gradient over the whole image."""
    torch.manual_seed(0)
    discriminator = build_patchgan_discriminator(image(3, 128), width=4, layers=layers, norm="none").double()
    x = torch.randn(1, 3, 128, 128, dtype=torch.double, requires_grad=True)
    logits = discriminator(x).logits
    centre = logits.shape[-1] // 2
    logits[0, centre, centre].backward()
    touched = x.grad[0].abs().sum(0) != 0
    rows, cols = touched.any(1).nonzero().flatten(), touched.any(0).nonzero().flatten()
    assert len(rows) == len(cols) == field
    assert rows.max() - rows.min() + 1 == field and cols.max() - cols.min() + 1 == field
    assert touched.sum() == field * field  # every pixel of the window, none outside it


def test_patchgan_takes_non_square_images():
    spec = image(1, 48, height=24)
    assert build_patchgan_discriminator(spec, **SMALL_D)(images(2, spec)).logits.shape == (2, 1, 4)


@pytest.mark.parametrize("side, fix", [(16, "layers=2"), (8, "layers=1"), (5, "--disc mlp")])
def test_patchgan_refuses_images_too_small_for_one_patch(side, fix):
    with pytest.raises(gantk.UsageError, match="at least 24") as error:
        build_patchgan_discriminator(image(3, side))
    assert "--image-size 24" in str(error.value) and fix in str(error.value), str(error.value)
    build_patchgan_discriminator(image(3, 24), **SMALL_D)  # the smallest side that works: a 1×1 map
    assert build_patchgan_discriminator(image(3, 24), **SMALL_D)(images(1, image(3, 24))).logits.shape == (1, 1, 1)


def test_patchgan_options():
    spec = image(3, 32)
    assert build_patchgan_discriminator(spec).options == {"width": 64, "layers": 3, "norm": "instance", "sn": False}
    assert of_type(build_patchgan_discriminator(spec, norm="batch", **SMALL_D), nn.BatchNorm2d)
    assert not of_type(build_patchgan_discriminator(spec, norm="none", **SMALL_D), NORMS)
    with pytest.raises(gantk.UsageError, match="layers"):
        build_patchgan_discriminator(spec, layers=0)


# ------------------------------------------------------------------------------------------ losses on patch logits
def term(name: str):
    return gantk.get_registry().create("loss", name, image(3, 32))


def patch_logits():
    """(real, fake) logit maps (B, h, w) of one shape."""
    def maps(shape):
        floats = st.floats(-20, 20, allow_nan=False, allow_infinity=False, width=32)
        size = shape[0] * shape[1] * shape[2]
        values = st.lists(floats, min_size=size, max_size=size)
        return st.tuples(values, values).map(lambda pair: tuple(torch.tensor(v).reshape(shape) for v in pair))
    shapes = st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4))
    return shapes.flatmap(maps)


def phase_losses(loss, real: torch.Tensor, fake: torch.Tensor) -> tuple[float, float]:
    """(D's, G's) loss of a term given D's logits on real and fake data."""
    def out(logits):
        return DiscriminatorOutput(logits, torch.zeros(logits.shape[0], 1))

    def discriminator(x, y=None):
        raise AssertionError("a logit loss does not run D again")

    d = loss.discriminator_loss(DiscriminatorPhase(real, fake, None, None, out(real), out(fake), discriminator))
    g = loss.generator_loss(GeneratorPhase(fake, None, out(fake), discriminator, 0, real, None, out(real)))
    return d.item(), g.item()


@pytest.mark.parametrize("name", ADVERSARIAL_LOSSES)
def test_adversarial_losses_are_logit_losses(name):
    assert isinstance(term(name), LogitLoss)  # so that the property below covers their whole computation


@settings(max_examples=40, deadline=None)
@given(logits=patch_logits(), name=st.sampled_from(ADVERSARIAL_LOSSES))
def test_every_adversarial_loss_averages_over_every_patch_logit(logits, name):
    """A loss on (B, h, w) patch logits equals the same loss on the B·h·w logits as one flat batch."""
    real, fake = logits
    loss = term(name)
    on_maps = phase_losses(loss, real, fake)
    flat = phase_losses(loss, real.flatten(), fake.flatten())
    assert on_maps == pytest.approx(flat, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("name", ["r1", "gp"])
def test_gradient_penalties_run_with_the_patchgan(name):
    torch.manual_seed(0)
    spec = image(3, 32)
    discriminator = build_patchgan_discriminator(spec, **SMALL_D)
    penalty = term(name)
    real = images(4, spec).requires_grad_(name == "r1")
    fake = images(4, spec)
    phase = DiscriminatorPhase(real, fake, None, None, discriminator(real), discriminator(fake), discriminator)
    value = penalty.discriminator_loss(phase)
    assert value.ndim == 0 and torch.isfinite(value) and value > 0
    value.backward()
    for conv in of_type(discriminator.body, nn.Conv2d):  # double back-propagation reaches every hidden conv
        assert torch.isfinite(conv.weight.grad).all() and conv.weight.grad.abs().sum() > 0


def test_the_default_procedure_trains_with_a_patchgan(tmp_path):
    """D's patch logits (2×2 on the 8×8 digits with layers=1) go through the gan procedure's losses and steps."""
    from gantk.engine.trainer import Trainer

    config = tiny_config(steps=2, disc="patchgan", disc_options={"width": 8, "layers": 1}, loss="lsgan")
    Trainer(config, tmp_path / "run", show_progress=False).train()
    records = loss_records(tmp_path / "run")
    assert len(records) == 2 and all(math.isfinite(r["d/lsgan"]) and math.isfinite(r["g/lsgan"]) for r in records)


# ------------------------------------------------------------------------------------------ registration
def test_both_are_listed_by_the_cli(cli):
    generators = cli("list", "generator")
    assert generators.exit_code == 0 and "resnet-translator" in generators.stdout
    discriminators = cli("list", "discriminator")
    assert discriminators.exit_code == 0 and "patchgan" in discriminators.stdout
