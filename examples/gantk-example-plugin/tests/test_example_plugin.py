"""Tests of gantk-example-plugin: registration, generator shapes and options, RSGAN loss properties.

Run from this folder with gantk's test environment: ``python -m pytest`` (the package is imported
from ``src/`` whether or not it is installed).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import gantk
from gantk.protocols import DiscriminatorPhase, GeneratorPhase
from gantk_example_plugin import commands, relativistic, resmlp
from gantk_example_plugin.relativistic import rsgan_discriminator_loss, rsgan_generator_loss


@pytest.fixture
def registry():
    """A registry holding only this package's plugin modules (tier 1: no entry points involved)."""
    registry = gantk.Registry()
    for module in (resmlp, relativistic, commands):
        registry.add_plugin(module)
    return registry


# ---------------------------------------------------------------------------------- registration
def test_registers_resmlp_and_rsgan(registry):
    generator = registry.get("generator", "resmlp")
    loss = registry.get("loss", "rsgan")
    assert generator.source.package == loss.source.package == "gantk-example-plugin"
    assert registry.get("loss", "relativistic") is loss  # the alias
    assert registry.get("loss", "gantk-example-plugin:rsgan") is loss
    assert loss.summary.startswith("Relativistic standard GAN loss")
    assert registry.failures == []


def test_example_info_command(registry, monkeypatch):
    from typer.testing import CliRunner

    from gantk.cli.app import build_app

    monkeypatch.setattr(gantk, "get_registry", lambda **_: registry)
    result = CliRunner().invoke(build_app(registry), ["example-info"])
    assert result.exit_code == 0, result.output
    assert "generator  resmlp" in result.output and "loss       rsgan (aliases: relativistic)" in result.output


# ------------------------------------------------------------------------------------ generator
@pytest.mark.parametrize("shape, classes", [((3, 8, 8), 0), ((1, 7, 5), 10), ((2,), 0), ((5,), 3)])
def test_resmlp_builds_any_shape(registry, shape, classes):
    spec = gantk.DataSpec(shape, classes, "test")
    generator = registry.create("generator", "resmlp", spec, z_dim=8, width=32, blocks=2)
    z = torch.randn(6, generator.z_dim)
    y = torch.randint(classes, (6,)) if classes else None
    samples = generator(z, y)
    assert samples.shape == (6, *shape)
    if spec.is_image:
        assert samples.abs().max() <= 1  # tanh output
    assert generator.options["conditioning"] == ("concat" if classes else "none")


def test_resmlp_vector_output_is_linear():
    generator = resmlp.build_resmlp(gantk.DataSpec((2,)), z_dim=4, width=16, blocks=1)
    with torch.no_grad():
        generator.head[-1].bias.fill_(5.0)  # far outside tanh's range
        assert generator(torch.zeros(3, 4)).min() > 1


def test_resmlp_options_rebuild_the_same_module():
    spec = gantk.DataSpec((1, 8, 8), 10)
    generator = resmlp.build_resmlp(spec, z_dim="16", width=24, blocks=3, norm="batch", conditioning="mul")
    assert generator.options == {"z_dim": 16, "width": 24, "blocks": 3, "norm": "batch", "conditioning": "mul"}
    rebuilt = resmlp.build_resmlp(spec, **generator.options)
    rebuilt.load_state_dict(generator.state_dict(), strict=True)
    generator.eval(), rebuilt.eval()
    z, y = torch.randn(4, 16), torch.arange(4)
    assert torch.equal(generator(z, y), rebuilt(z, y))


def test_resmlp_reads_none_from_the_command_line_as_no_norm_and_no_conditioning():
    # gantk's CLI parses "--gen-option norm=none" to None.
    generator = resmlp.build_resmlp(gantk.DataSpec((3,), 4), norm=None, conditioning=None)
    assert (generator.options["norm"], generator.options["conditioning"]) == ("none", "none")
    assert generator(torch.randn(2, generator.z_dim)).shape == (2, 3)


@pytest.mark.parametrize("options, message", [
    ({"norm": "group"}, "supports layer, batch, none"),
    ({"width": 0}, "at least 1"),
    ({"blocks": 1.5}, "whole number"),
    ({"conditioning": "concat"}, "has no labels"),
])
def test_resmlp_bad_options_are_usage_errors(options, message):
    with pytest.raises(gantk.UsageError, match=message):
        resmlp.build_resmlp(gantk.DataSpec((2,), 0, "ring8"), **options)


def test_resmlp_conditional_needs_labels_and_uses_them():
    generator = resmlp.build_resmlp(gantk.DataSpec((4,), 3), z_dim=8, width=16)
    z = torch.randn(2, 8)
    with pytest.raises(ValueError, match="pass the labels"):
        generator(z)
    assert not torch.equal(generator(z, torch.tensor([0, 0])), generator(z, torch.tensor([1, 1])))


# ----------------------------------------------------------------------------------- loss maths
logits = st.lists(st.floats(-30, 30, allow_nan=False), min_size=1, max_size=16)


@settings(max_examples=50, deadline=None)
@given(logits, logits)
def test_rsgan_matches_the_log_sigmoid_form(real, fake):
    n = min(len(real), len(fake))
    r, f = torch.tensor(real[:n], dtype=torch.float64), torch.tensor(fake[:n], dtype=torch.float64)
    d_expected = -F.logsigmoid(r - f).mean().item()  # −E log σ(D(x) − D(x~))
    g_expected = -F.logsigmoid(f - r).mean().item()  # −E log σ(D(x~) − D(x))
    assert math.isclose(rsgan_discriminator_loss(r, f).item(), d_expected, rel_tol=1e-5, abs_tol=1e-5)
    assert math.isclose(rsgan_generator_loss(r, f).item(), g_expected, rel_tol=1e-5, abs_tol=1e-5)
    # G's loss is D's loss with the roles of real and fake swapped.
    assert math.isclose(rsgan_generator_loss(f, r).item(), d_expected, rel_tol=1e-5, abs_tol=1e-5)


@settings(max_examples=50, deadline=None)
@given(logits, st.floats(-1e3, 1e3))
def test_rsgan_is_invariant_to_shifting_every_logit(real, shift):
    r = torch.tensor(real)
    f = r.flip(0) - 1.0
    before = rsgan_discriminator_loss(r, f).item()
    after = rsgan_discriminator_loss(r + shift, f + shift).item()
    assert math.isclose(before, after, rel_tol=1e-3, abs_tol=1e-3)


def test_rsgan_is_finite_at_extreme_logits():
    # gantk hands loss functions float32 logits, whatever the run's precision
    r = torch.tensor([1e4, -1e4, 1e4], requires_grad=True)
    f = torch.tensor([-1e4, 1e4, 1e4], requires_grad=True)
    d_loss, g_loss = rsgan_discriminator_loss(r, f), rsgan_generator_loss(r, f)
    assert math.isclose(d_loss.item(), (0 + 2e4 + math.log(2)) / 3, rel_tol=1e-6)  # sp(t) → max(t, 0)
    (d_loss + g_loss).backward()
    assert torch.isfinite(r.grad).all() and torch.isfinite(f.grad).all()


def test_rsgan_d_loss_vanishes_when_reals_clearly_beat_fakes():
    assert rsgan_discriminator_loss(torch.full((8,), 20.0), torch.full((8,), -20.0)).item() < 1e-15
    assert rsgan_generator_loss(torch.full((8,), 20.0), torch.full((8,), -20.0)).item() == pytest.approx(40.0)


def test_rsgan_is_invariant_to_permuting_the_pairs():
    r, f = torch.randn(16), torch.randn(16)
    order = torch.randperm(16)
    assert torch.allclose(rsgan_discriminator_loss(r, f), rsgan_discriminator_loss(r[order], f[order]))


# ------------------------------------------------------------------------------ the loss term
def _linear_discriminator(x, y=None):
    logits = x.sum(dim=1)
    return gantk.DiscriminatorOutput(logits, x)


def test_rsgan_term_pairs_the_fakes_with_the_real_logits_of_the_generator_phase(registry):
    term = registry.create("loss", "rsgan", gantk.DataSpec((2,)))
    assert isinstance(term, gantk.LossTerm) and term.needs == frozenset({"real_in_generator_phase"})
    real, fake = torch.randn(4, 2) + 3, torch.randn(4, 2)
    d_phase = DiscriminatorPhase(real, fake, None, None, _linear_discriminator(real), _linear_discriminator(fake),
                                 _linear_discriminator)
    assert torch.allclose(term.discriminator_loss(d_phase), F.softplus(-(real.sum(1) - fake.sum(1))).mean())
    # gantk's training step gives G's phase D's output on the latest real batch, computed afresh
    g_phase = GeneratorPhase(fake, None, _linear_discriminator(fake), _linear_discriminator, 0, real, None,
                             _linear_discriminator(real))
    assert torch.allclose(term.generator_loss(g_phase), F.softplus(-(fake.sum(1) - real.sum(1))).mean())
    assert dict(term.state_dict()) == {}  # no state: nothing carried from one phase to the next


@pytest.fixture
def one_thread():
    """Tiny networks run fastest on one thread; with several, a busy machine makes them crawl."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_resmlp_and_rsgan_train_a_2d_gaussian(one_thread):
    """A few hundred steps of the real thing: G's samples move onto a Gaussian far from the start."""
    torch.manual_seed(0)
    spec = gantk.DataSpec((2,), 0, "gaussian")
    target = torch.tensor([2.0, -1.0])
    generator = resmlp.build_resmlp(spec, z_dim=4, width=32, blocks=2)
    body = nn.Sequential(nn.Linear(2, 32), nn.LeakyReLU(0.2), nn.Linear(32, 32), nn.LeakyReLU(0.2))
    head = nn.Linear(32, 1)

    def discriminator(x, y=None):
        features = body(x)
        return gantk.DiscriminatorOutput(head(features).squeeze(1), features)

    loss = relativistic.build_rsgan(spec)
    g_opt = torch.optim.Adam(generator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam([*body.parameters(), *head.parameters()], lr=2e-3, betas=(0.5, 0.999))
    for step in range(400):
        real = target + 0.1 * torch.randn(64, 2)
        fake = generator(torch.randn(64, 4)).detach()
        d_loss = loss.discriminator_loss(DiscriminatorPhase(real, fake, None, None, discriminator(real),
                                                            discriminator(fake), discriminator, step))
        d_opt.zero_grad(), d_loss.backward(), d_opt.step()
        fake = generator(torch.randn(64, 4))
        with torch.no_grad():  # as gantk's training step: D(x) afresh, after D's update, no gradient to D
            real_out = discriminator(real)
        g_loss = loss.generator_loss(GeneratorPhase(fake, None, discriminator(fake), discriminator, step, real,
                                                    None, real_out))
        g_opt.zero_grad(), g_loss.backward(), g_opt.step()
    with torch.no_grad():
        samples = generator(torch.randn(1000, 4))
    assert (samples.mean(0) - target).norm() < 0.5, samples.mean(0)
